"""`/golive handover @user`: make someone else the release commander."""

from __future__ import annotations

from bot.domain.errors import UsageError
from bot.domain.events import Handover
from commands.base import Command, Invocation, Reply, parse_user


async def run(inv: Invocation) -> Reply:
    """Hand the commander role over (to a real, active person of this workspace)."""
    if len(inv.args) != 1:
        raise UsageError("name one person to hand over to")
    to = parse_user(inv.args[0], inv.directory)
    return Reply(await inv.service.handover(inv.channel, inv.user, to))


COMMAND = Command(
    "handover", "/golive handover @user", "make someone else the commander", Handover, run
)
