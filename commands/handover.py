"""`/golive handover [role] @user`: hand a role of the release to someone else (the commander
when no role is named)."""

from __future__ import annotations

from bot.domain.errors import UsageError
from bot.domain.events import Handover
from bot.domain.model import Role
from bot.render.fmt import code
from commands.base import Command, Invocation, Reply, parse_user
from commands.start import ROLE_KEYS


def _target(inv: Invocation) -> tuple[Role, str]:
    """The role (the commander unless named) and the person it goes to."""
    args = inv.args
    if len(args) == 1:
        return Role.COMMANDER, parse_user(args[0], inv.directory)
    if len(args) != 2:
        raise UsageError("name one person to hand over to (and, before them, which role)")
    key = ROLE_KEYS.get(args[0].lower())
    if key is None:
        roles = ", ".join(r.value for r in Role)
        raise UsageError(f"{code(args[0])} is not a role; hand over one of {roles}")
    return Role(key), parse_user(args[1], inv.directory)


async def ask(inv: Invocation) -> None:
    """Ask whether the handover is allowed, and the directory whether the new holder is a real,
    active person of this workspace (in the role's group, where one is configured)."""
    role, to = _target(inv)
    await inv.service.vet_handover(inv.channel, inv.user, to, role)


def run(inv: Invocation) -> Reply:
    """Hand the role over."""
    role, to = _target(inv)
    return Reply(inv.service.hand_over(inv.channel, inv.user, to, role))


COMMAND = Command(
    "handover",
    "/golive handover [commander|on_call|backend|frontend] @user",
    "hand a role to someone else: the commander unless you name another role (its holder or "
    "the commander may; on-call also by the incoming on-call)",
    Handover,
    run,
    ask=ask,
)
