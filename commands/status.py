"""`/golive status`: where the release stands and what waits on whom."""

from __future__ import annotations

from commands.base import Command, Invocation, Reply, no_arguments


def run(inv: Invocation) -> Reply:
    """Show every phase and step with its mark and owner."""
    no_arguments(inv)
    return Reply(inv.service.status(inv.channel))


COMMAND = Command(
    "status",
    "/golive status",
    "where are we, and what is waiting on whom",
    None,
    run,
    reads_only=True,
)
