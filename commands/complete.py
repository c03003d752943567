"""`/golive complete`: the commander's go — announce completion and lift the freeze."""

from __future__ import annotations

from bot.domain.events import Complete
from commands.base import Command, Invocation, Reply, no_arguments


def run(inv: Invocation) -> Reply:
    """Complete the release once every step is done."""
    no_arguments(inv)
    return Reply(inv.service.complete(inv.channel, inv.user))


COMMAND = Command(
    "complete",
    "/golive complete",
    "declare the release complete: announcement, freeze lifted, heightened monitoring",
    Complete,
    run,
)
