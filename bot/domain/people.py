"""Who may hold a role: the people behind user ids, and the rules a role holder must meet.

Anyone in a release channel can type `on_call=@mallory`; the rules here decide whether the
person named may be on-call at all. The engine gathers the facts through a `People` directory
(Slack's users.info and usergroups.users.list in Slack; the config in the console) and these
pure functions judge them, so the rules are the same whichever adapter asks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

SLACKBOT = "USLACKBOT"  # Slack's own bot: users.info says is_bot false, but it is no person


@dataclass(frozen=True)
class Person:
    """What a directory knows of one user id."""

    id: str
    teams: frozenset[str] = frozenset()  # the workspaces the user belongs to
    deleted: bool = False  # deactivated
    bot: bool = False  # a bot user, an app user or a workflow


class LookupFailed(Exception):
    """The directory could not answer (outage, timeout, missing scope): never a yes."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class People(Protocol):
    """The directory the engine asks before someone may hold a role."""

    async def person(self, user_id: str) -> Person | None:
        """The user behind an id; None when there is no such user; LookupFailed otherwise."""
        ...

    async def members(self, group_id: str) -> frozenset[str]:
        """The user ids in a user group; LookupFailed when that cannot be learned."""
        ...

    async def workspace(self) -> frozenset[str] | None:
        """The team ids whose people belong here; None where there are no workspaces (the
        console); LookupFailed when golive cannot tell which workspace it serves."""
        ...


class Unfit(StrEnum):
    """Why someone may not hold a role."""

    UNKNOWN = "unknown"  # no such user in the workspace
    DEACTIVATED = "deactivated"
    BOT = "bot"
    OTHER_WORKSPACE = "other_workspace"
    NOT_IN_GROUP = "not_in_group"


class Holding(StrEnum):
    """How someone comes to hold a role."""

    NAMED = "named"  # a command names them: on_call=@x, commander=@x, a handover
    STARTER = "starter"  # they start the release and command it
    DEFAULT = "default"  # the config's default owner, chosen by whoever wrote golive.yml

    @property
    def looked_up(self) -> bool:
        """Whether the directory must vouch for them: everyone but the config's defaults (a
        Slack Connect guest can run a slash command, so even the person starting is asked)."""
        return self is not Holding.DEFAULT


@dataclass(frozen=True)
class Facts:
    """What golive learned about someone who is to hold a role.

    `looked_up` is true for everyone a command brings in (`Holding.looked_up`): they are
    checked against the directory. Everyone who holds a role, the config's defaults included,
    must be in the role's user group when the config names one (`group`, with its `members`).
    """

    looked_up: bool = False
    person: Person | None = None
    workspace: frozenset[str] | None = None
    group: str | None = None
    members: frozenset[str] = frozenset()


def unfit(user: str, facts: Facts) -> Unfit | None:
    """Why `user` may not hold the role these facts were gathered for; None when they may."""
    if facts.looked_up:
        person = facts.person
        if person is None:
            return Unfit.UNKNOWN
        if person.deleted:
            return Unfit.DEACTIVATED
        if person.bot or person.id == SLACKBOT:
            return Unfit.BOT
        if facts.workspace is not None and not person.teams & facts.workspace:
            return Unfit.OTHER_WORKSPACE
    if facts.group is not None and user not in facts.members:
        return Unfit.NOT_IN_GROUP
    return None


def from_workspace(team: str | None, workspace: frozenset[str]) -> bool:
    """True when a request made in `team` may talk to golive (a request without a team may not)."""
    return team is not None and team in workspace


class KnownPeople:
    """People from the config alone (the console): everyone in `users:` and the default role
    holders. There are no workspaces and no user groups in a terminal, so every known person
    counts as a member of any group; Slack checks the real ones."""

    def __init__(self, users: Mapping[str, str], defaults: Iterable[str | None] = ()) -> None:
        self._known = frozenset(users.values()) | {d for d in defaults if d}

    async def person(self, user_id: str) -> Person | None:
        """A known id is a person; anyone else is unknown."""
        return Person(user_id) if user_id in self._known else None

    async def members(self, group_id: str) -> frozenset[str]:
        """Every known person."""
        return self._known

    async def workspace(self) -> frozenset[str] | None:
        """No workspaces here."""
        return None
