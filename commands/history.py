"""`/golive history [n]`: the latest releases."""

from __future__ import annotations

from bot.domain.errors import UsageError
from commands.base import Command, Invocation, Reply


def run(inv: Invocation) -> Reply:
    """List recent releases."""
    if len(inv.args) > 1 or (inv.args and not inv.args[0].isdigit()):
        raise UsageError("give at most a number of releases to list")
    limit = int(inv.args[0]) if inv.args else 10
    return Reply(inv.service.history(max(1, min(limit, 100))))


COMMAND = Command(
    "history", "/golive history [n]", "list the latest releases", None, run, reads_only=True
)
