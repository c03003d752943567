"""`/golive retry <step>`: run a blocked step's check again after a fix."""

from __future__ import annotations

from bot.domain.events import Retry
from commands.base import Command, Invocation, Reply, one_step


def run(inv: Invocation) -> Reply:
    """Re-run the check of a blocked step."""
    return Reply(inv.service.retry(inv.channel, inv.user, one_step(inv, "name one step to retry")))


COMMAND = Command(
    "retry",
    "/golive retry <step>",
    "run a blocked step's check again (the commander or the step's owner)",
    Retry,
    run,
)
