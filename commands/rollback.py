"""`/golive rollback <reason>`: on-call rolls the release back."""

from __future__ import annotations

from bot.domain.events import Rollback
from commands.base import Command, Invocation, Reply, reason_of


def run(inv: Invocation) -> Reply:
    """Post the rollback plan and mark the release rolled back (or, with rollback actions, ask
    on-call to confirm the plan first); keep the freeze."""
    return Reply(inv.service.rollback(inv.channel, inv.user, reason_of(inv, "a rollback")))


COMMAND = Command(
    "rollback",
    "/golive rollback <reason>",
    "roll back: posts each service's rollback target, keeps the freeze; with rollback actions "
    "configured, runs them once on-call confirms the plan (on-call only)",
    Rollback,
    run,
)
