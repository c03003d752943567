"""`/golive freeze allow <pr-number> <reason>`: let one pull request through the merge freeze."""

from __future__ import annotations

from bot.domain.errors import UsageError
from bot.domain.events import AllowMerge
from commands.base import Command, Invocation, Reply


async def run(inv: Invocation) -> Reply:
    """Mark a pull request's current head `success` during the freeze (the hotfix path)."""
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
    return Reply(await inv.service.allow_merge(inv.channel, inv.user, int(number), reason[0]))


COMMAND = Command(
    "freeze",
    "/golive freeze allow <pr-number> <reason>",
    "let one pull request merge during the freeze (its current head; a new push freezes it again)",
    AllowMerge,
    run,
)
