"""`/golive rollback <reason>`: on-call rolls the release back."""

from __future__ import annotations

from bot.domain.events import Rollback
from commands.base import Command, Invocation, Reply, reason_of


def run(inv: Invocation) -> Reply:
    """Post the rollback plan, mark the release rolled back, keep the freeze."""
    return Reply(inv.service.rollback(inv.channel, inv.user, reason_of(inv, "a rollback")))


COMMAND = Command(
    "rollback",
    "/golive rollback <reason>",
    "roll back: posts each service's rollback target, keeps the freeze (on-call only)",
    Rollback,
    run,
)
