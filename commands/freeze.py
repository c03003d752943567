"""`/golive freeze allow <pr-number> <reason>`: let one pull request through the merge freeze."""

from __future__ import annotations

from typing import Any

from bot.domain.errors import UsageError
from bot.domain.events import AllowMerge
from commands.base import Command, Invocation, Reply


def _parsed(inv: Invocation) -> tuple[int, str]:
    """The pull request's number and the reason."""
    if not inv.args or inv.args[0].lower() != "allow":
        raise UsageError("say what to do with the freeze: `allow <pr-number> <reason>`")
    if len(inv.args) < 2:
        raise UsageError("which pull request? give its number, like `allow 123 <reason>`")
    number = inv.args[1].removeprefix("#")
    if not (number.isascii() and number.isdigit()) or int(number) == 0 or len(number) > 9:
        raise UsageError(f"`{inv.args[1]}` is not a pull request number")
    reason = inv.rest.strip().split(None, 2)[2:]
    if not reason:
        raise UsageError(f"say why #{number} may merge during the freeze: a reason is required")
    return int(number), reason[0]


async def ask(inv: Invocation) -> Any:
    """Ask GitHub for the pull request (open, into the frozen branch) before anything changes."""
    number, reason = _parsed(inv)
    return await inv.service.open_pull(inv.channel, inv.user, number, reason)


def run(inv: Invocation) -> Reply:
    """Mark the pull request's current head `success` during the freeze (the hotfix path)."""
    number, reason = _parsed(inv)
    pull = inv.asked
    if pull is None or pull.number != number:
        raise RuntimeError("`/golive freeze allow` ran without asking GitHub first")
    return Reply(inv.service.allow_merge(inv.channel, inv.user, pull, reason))


COMMAND = Command(
    "freeze",
    "/golive freeze allow <pr-number> <reason>",
    "let one pull request merge during the freeze (its current head; a new push freezes it again)",
    AllowMerge,
    run,
    ask=ask,
)
