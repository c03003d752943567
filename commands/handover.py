"""`/golive handover @user`: make someone else the release commander."""

from __future__ import annotations

from bot.domain.errors import UsageError
from bot.domain.events import Handover
from commands.base import Command, Invocation, Reply, parse_user


def _to(inv: Invocation) -> str:
    if len(inv.args) != 1:
        raise UsageError("name one person to hand over to")
    return parse_user(inv.args[0], inv.directory)


async def ask(inv: Invocation) -> None:
    """Ask the directory whether the new commander is a real, active person of this workspace."""
    await inv.service.vet_handover(inv.channel, inv.user, _to(inv))


def run(inv: Invocation) -> Reply:
    """Hand the commander role over."""
    return Reply(inv.service.hand_over(inv.channel, inv.user, _to(inv)))


COMMAND = Command(
    "handover",
    "/golive handover @user",
    "make someone else the commander",
    Handover,
    run,
    ask=ask,
)
