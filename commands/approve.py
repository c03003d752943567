"""`/golive approve [step] [note]`: approve a step you own (the reaction and button do the same)."""

from __future__ import annotations

from bot.domain.events import Approve
from commands.base import Command, Invocation, Reply


def run(inv: Invocation) -> Reply:
    """Approve the named step, or the single step waiting on you."""
    step = inv.args[0] if inv.args else None
    note = " ".join(inv.args[1:]) or None
    return Reply(inv.service.approve(inv.channel, inv.user, step, note, sent_at=inv.sent_at))


COMMAND = Command(
    "approve",
    "/golive approve [step] [note, e.g. a restore-point id]",
    "approve a step you own (same as reacting to its message)",
    Approve,
    run,
)
