"""`/golive waive <check> <reason>`: the commander accepts a failing check, on the record."""

from __future__ import annotations

from bot.domain.errors import UsageError
from bot.domain.events import Waive
from bot.render.fmt import code
from commands.base import Command, Invocation, Reply


def run(inv: Invocation) -> Reply:
    """Waive a failing check (by step or check name) with a reason."""
    if not inv.args:
        raise UsageError("which check?")
    name = inv.args[0]
    reason = inv.rest.strip()[len(name) :].strip()
    if not reason:
        raise UsageError(f"say why {code(name)} may be waived: a waiver needs a reason")
    return Reply(inv.service.waive(inv.channel, inv.user, name, reason))


COMMAND = Command(
    "waive",
    "/golive waive <check> <reason>",
    "accept a failing check with a reason (recorded and shown in every summary)",
    Waive,
    run,
)
