"""`/golive retry <step>`: run a blocked step's check again after a fix."""

from __future__ import annotations

from bot.domain.errors import UsageError
from bot.domain.events import Retry
from commands.base import Command, Invocation, Reply


def run(inv: Invocation) -> Reply:
    """Re-run the check of a blocked step."""
    if len(inv.args) != 1:
        raise UsageError("name one step to retry")
    return Reply(inv.service.retry(inv.channel, inv.user, inv.args[0]))


COMMAND = Command(
    "retry",
    "/golive retry <step>",
    "run a blocked step's check again (the commander or the step's owner)",
    Retry,
    run,
)
