"""`/golive snooze <step>`: hold a waiting step's reminders off for 30 minutes (the Snooze button
on a reminder does the same)."""

from __future__ import annotations

from bot.domain.errors import UsageError
from bot.domain.events import Snooze
from commands.base import Command, Invocation, Reply


def run(inv: Invocation) -> Reply:
    """Snooze the reminders of the named step."""
    if len(inv.args) != 1:
        raise UsageError("name one step whose reminders to snooze")
    return Reply(inv.service.snooze(inv.channel, inv.user, inv.args[0]))


COMMAND = Command(
    "snooze",
    "/golive snooze <step>",
    "hold a waiting step's reminders off for 30 minutes",
    Snooze,
    run,
)
