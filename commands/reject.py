"""`/golive reject <step> <reason>`: stop a step that is under way (the Stop button does the
same)."""

from __future__ import annotations

from bot.domain.errors import UsageError
from bot.domain.events import Stop
from bot.render.fmt import code
from commands.base import Command, Invocation, Reply


def run(inv: Invocation) -> Reply:
    """Stop the named step with a reason: it is blocked until retried or waived."""
    if not inv.args:
        raise UsageError("which step?")
    step = inv.args[0]
    reason = inv.rest.strip()[len(step) :].strip()
    if not reason:
        raise UsageError(f"say why {code(step)} must stop: a reason is required")
    return Reply(inv.service.reject(inv.channel, inv.user, step, reason))


COMMAND = Command(
    "reject",
    "/golive reject <step> <reason>",
    "stop a step that is under way, with a reason: it stays blocked until retried or waived, "
    "and the commander is told",
    Stop,
    run,
)
