"""`/golive reject <step> <reason>`: stop a step that is under way (the Stop button does the
same)."""

from __future__ import annotations

from bot.domain.events import Stop
from commands.base import Command, Invocation, Reply, subject_and_reason


def run(inv: Invocation) -> Reply:
    """Stop the named step with a reason: it is blocked until retried or waived."""
    step, reason = subject_and_reason(
        inv, "which step?", "say why {name} must stop: a reason is required"
    )
    return Reply(inv.service.reject(inv.channel, inv.user, step, reason))


COMMAND = Command(
    "reject",
    "/golive reject <step> <reason>",
    "stop a step that is under way, with a reason: it stays blocked until retried or waived, "
    "and the commander is told",
    Stop,
    run,
)
