"""`/golive unfreeze`: lift the merge freeze a rolled-back release of the channel kept."""

from __future__ import annotations

from bot.domain.events import Unfreeze
from commands.base import Command, Invocation, Reply, no_arguments


def run(inv: Invocation) -> Reply:
    """Lift the freeze."""
    no_arguments(inv)
    return Reply(inv.service.unfreeze(inv.channel, inv.user))


COMMAND = Command(
    "unfreeze",
    "/golive unfreeze",
    "lift the merge freeze a rolled-back release kept (whatever release is newest)",
    Unfreeze,
    run,
)
