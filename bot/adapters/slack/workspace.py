"""Who belongs to golive's workspace: the gate every Slack request passes, and the directory the
engine asks before someone may hold a role (users.info, usergroups.users.list).

The rules live in `bot.domain.people`; this module only asks Slack. Every answer that is not a
clear yes — an error, a timeout, a missing scope — becomes `LookupFailed`, which the engine
turns into a refusal: nobody is let in because Slack could not be asked.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Protocol

from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.people import LookupFailed, Person, from_workspace
from bot.render.refusals import other_workspace, workspace_unknown

log = logging.getLogger(__name__)

NOT_FOUND = ("user_not_found", "user_not_visible")


def _error(exc: SlackApiError) -> str:
    data = exc.response.data if isinstance(exc.response.data, dict) else {}
    error = str(data.get("error") or f"HTTP {exc.response.status_code}")
    if error == "missing_scope" and data.get("needed"):
        return f"missing_scope {data['needed']}: add it to the app and reinstall"
    return error


class Identity(Protocol):
    """What auth.test told golive about itself (`SlackIdentity`)."""

    team_id: str | None
    status: str

    async def verify(self) -> str:
        """Ask auth.test again; "ok" or the error, never raises."""
        ...


class Workspace:
    """The teams golive serves: the one auth.test names (asked again, at most every `retry`
    seconds, while it is unknown) and `slack.allowed_team_ids` (Enterprise Grid)."""

    def __init__(
        self,
        identity: Identity,
        allowed_team_ids: Iterable[str] = (),
        *,
        retry: float = 5.0,
        budget: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.identity = identity
        self.allowed = frozenset(allowed_team_ids)
        self.retry = retry
        self.budget = budget
        self._monotonic = monotonic
        self._asked_at: float | None = None

    async def teams(self) -> frozenset[str]:
        """Every team id whose requests golive takes (empty while golive cannot tell)."""
        if self.identity.team_id is None and self._may_ask():
            self._asked_at = self._monotonic()
            try:
                await asyncio.wait_for(self.identity.verify(), self.budget)
            except TimeoutError:
                log.warning("auth.test did not answer within %.1f s", self.budget)
        team = self.identity.team_id
        return self.allowed | ({team} if team else set())

    def _may_ask(self) -> bool:
        return self._asked_at is None or self._monotonic() - self._asked_at >= self.retry


class SlackPeople:
    """The engine's `People` in Slack: users.info and usergroups.users.list, cached briefly."""

    def __init__(
        self,
        client: AsyncWebClient,
        workspace: Workspace,
        *,
        ttl: float = 60.0,
        budget: float = 1.5,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self._workspace = workspace
        self.ttl = ttl
        self.budget = budget
        self._monotonic = monotonic
        self._people: dict[str, tuple[float, Person | None]] = {}
        self._groups: dict[str, tuple[float, frozenset[str]]] = {}

    async def person(self, user_id: str) -> Person | None:
        """users.info: the person behind an id; None when Slack knows no such user."""
        cached = self._people.get(user_id)
        if cached is not None and self._monotonic() - cached[0] < self.ttl:
            return cached[1]
        try:
            response = await self._call(self.client.users_info(user=user_id))
        except SlackApiError as exc:
            error = _error(exc)
            if error not in NOT_FOUND:
                raise LookupFailed(f"users.info: {error}") from None
            found: Person | None = None
        else:
            found = _person(user_id, response.get("user"))
        self._people[user_id] = (self._monotonic(), found)
        return found

    async def members(self, group_id: str) -> frozenset[str]:
        """usergroups.users.list: the members of an enabled user group."""
        cached = self._groups.get(group_id)
        if cached is not None and self._monotonic() - cached[0] < self.ttl:
            return cached[1]
        try:
            response = await self._call(self.client.usergroups_users_list(usergroup=group_id))
        except SlackApiError as exc:
            raise LookupFailed(f"usergroups.users.list {group_id}: {_error(exc)}") from None
        users = response.get("users")
        if not isinstance(users, list):
            raise LookupFailed(f"usergroups.users.list {group_id}: no `users` in the answer")
        members = frozenset(u for u in users if isinstance(u, str))
        self._groups[group_id] = (self._monotonic(), members)
        return members

    async def workspace(self) -> frozenset[str] | None:
        """The teams whose people may hold roles; LookupFailed while golive cannot tell."""
        teams = await self._workspace.teams()
        if not teams:
            status = self._workspace.identity.status
            raise LookupFailed(f"golive does not know its workspace yet (auth.test: {status})")
        return teams

    async def _call(self, call: Awaitable[Any]) -> Any:
        """One Web API call within the time budget (the command is waiting for its answer)."""
        try:
            return await asyncio.wait_for(call, self.budget)
        except TimeoutError:
            raise LookupFailed(f"Slack did not answer within {self.budget:g} s") from None
        except (OSError, ValueError) as exc:
            raise LookupFailed(f"Slack unreachable ({type(exc).__name__})") from None


def _person(user_id: str, user: object) -> Person:
    """A users.info `user` object as the domain sees it."""
    if not isinstance(user, Mapping):
        raise LookupFailed("users.info: no `user` in the answer")
    teams = {user["team_id"]} if isinstance(user.get("team_id"), str) else set()
    enterprise = user.get("enterprise_user")
    if isinstance(enterprise, Mapping) and isinstance(enterprise.get("teams"), list):
        teams |= {t for t in enterprise["teams"] if isinstance(t, str)}
    bot = any(user.get(flag) is True for flag in ("is_bot", "is_app_user", "is_workflow_bot"))
    return Person(
        id=str(user.get("id") or user_id),
        teams=frozenset(teams),
        deleted=user.get("deleted") is True,
        bot=bot,
    )


def workspace_gate(
    workspace: Workspace,
) -> Callable[..., Awaitable[BoltResponse | None]]:
    """Bolt middleware (after the signature check): requests from another workspace are refused.

    A slash command gets an ephemeral refusal; events and button clicks are acknowledged with
    an empty 200 and dropped. Answering those with an error would make Slack retry them and, in
    the end, switch off event delivery for the whole app, the right workspace included.
    """

    async def only_this_workspace(
        context: AsyncBoltContext, body: dict[str, Any], next: Callable[[], Awaitable[None]]
    ) -> BoltResponse | None:
        team = context.team_id
        teams = await workspace.teams()
        if from_workspace(team, teams):
            await next()
            return None
        log.warning(
            "refused a Slack request from team %s (golive serves %s)",
            team,
            ", ".join(sorted(teams)) or "an unknown workspace: auth.test has not answered",
        )
        if body.get("command"):
            words = other_workspace(team) if teams else workspace_unknown(workspace.identity.status)
            payload = {"response_type": "ephemeral", "text": words}
            return BoltResponse(
                status=200,
                body=json.dumps(payload),
                headers={"content-type": "application/json;charset=utf-8"},
            )
        return BoltResponse(status=200, body="")

    return only_this_workspace
