"""`/golive waive <check> <reason>`: the commander accepts a failing check, on the record."""

from __future__ import annotations

from bot.domain.events import Waive
from commands.base import Command, Invocation, Reply, subject_and_reason


def run(inv: Invocation) -> Reply:
    """Waive a failing check (by step or check name) with a reason."""
    name, reason = subject_and_reason(
        inv, "which check?", "say why {name} may be waived: a waiver needs a reason"
    )
    return Reply(inv.service.waive(inv.channel, inv.user, name, reason))


COMMAND = Command(
    "waive",
    "/golive waive <check> <reason>",
    "accept a failing check with a reason (recorded and shown in every summary)",
    Waive,
    run,
)
