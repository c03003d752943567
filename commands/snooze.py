"""`/golive snooze <step>`: hold a waiting step's reminders off for 30 minutes (the Snooze button
on a reminder does the same)."""

from __future__ import annotations

from bot.domain.events import Snooze
from commands.base import Command, Invocation, Reply, one_step


def run(inv: Invocation) -> Reply:
    """Snooze the reminders of the named step."""
    step = one_step(inv, "name one step whose reminders to snooze")
    return Reply(inv.service.snooze(inv.channel, inv.user, step))


COMMAND = Command(
    "snooze",
    "/golive snooze <step>",
    "hold a waiting step's reminders off for 30 minutes",
    Snooze,
    run,
)
