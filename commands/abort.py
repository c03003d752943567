"""`/golive abort <reason>`: abandon the release before completion."""

from __future__ import annotations

from bot.domain.events import Abort
from commands.base import Command, Invocation, Reply, reason_of


def run(inv: Invocation) -> Reply:
    """Abort, lift the freeze, announce."""
    return Reply(inv.service.abort(inv.channel, inv.user, reason_of(inv, "an abort")))


COMMAND = Command(
    "abort", "/golive abort <reason>", "abandon the release; lifts the freeze", Abort, run
)
