"""`/golive preflight [full]`: run the preflight script again (full: with the frontend)."""

from __future__ import annotations

from bot.domain.errors import UsageError
from bot.domain.events import Retry
from bot.render.fmt import code
from commands.base import Command, Invocation, Reply


def run(inv: Invocation) -> Reply:
    """Re-run the preflight, quick or full."""
    if inv.args not in ([], ["full"], ["quick"]):
        raise UsageError(f"unexpected {code(' '.join(inv.args))}")
    variant = inv.args[0] if inv.args else None
    return Reply(inv.service.retry(inv.channel, inv.user, "preflight", variant))


COMMAND = Command(
    "preflight",
    "/golive preflight [full]",
    "run the preflight script again (`full` adds the frontend)",
    Retry,
    run,
)
