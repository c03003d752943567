"""The merge gate: GitHub's `golive/merge-freeze` status agrees with the freezes in SQLite.

Every open pull request into `freeze_branch` carries the status on its head commit, always, so
that the context can be a required check: `failure` while a release holds a freeze (naming the
release and why), `success` otherwise — or when the commander of the freeze let that very head
through. golive hears of new pull requests and pushes two ways: GitHub's webhook
(`pull_changed`, judged at once) and a sweep at start-up and every `gate_sweep` that lists every
open pull request, so a delivery that never arrived is caught soon after.

What golive set on each commit is remembered in SQLite, so a status GitHub already shows is not
posted again; each sweep also reads a few commits' statuses back from GitHub and sets right any
that changed behind golive's back. GitHub's rate limits are waited out — its `retry-after` or
reset time, or a minute doubling each time when it says neither — and nothing is asked of GitHub
until then; status posts are paced a second apart, as GitHub asks of content-creating requests.
GitHub being down delays the gate (the next pass retries); it never changes a release.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from bot.domain.config import CIConfig
from bot.domain.records import MergeAllowance, ReleaseRow
from bot.engine.service import ReleaseService
from bot.engine.worker import Worker
from bot.render import messages
from checks.freeze import PullHead, gate_state, open_pull_heads, set_freeze_status
from checks.http import ProviderError, RateLimited

log = logging.getLogger(__name__)

PACE = 1.0  # seconds between two status posts (GitHub: a second between content-creating calls)
VERIFY_PER_SWEEP = 20  # commits whose status is read back from GitHub in one sweep
ERROR_RETRY = 30.0  # seconds before asking a GitHub that failed again (at most one sweep)
RATE_LIMIT_WAIT = 60.0  # GitHub: without retry-after or a reset time, wait at least a minute
MAX_RATE_LIMIT_WAIT = 900.0  # ... doubling each time, up to a quarter of an hour

SUCCESS, FAILURE = "success", "failure"
NEVER = datetime.min.replace(tzinfo=UTC)  # a status never read back sorts before every other


@dataclass(frozen=True)
class Wanted:
    """The status the gate wants on one head, and the release whose freeze decides it."""

    state: str
    description: str
    release_id: int | None


class GatePlan:
    """What the gate says of any head, from one reading of the database."""

    def __init__(self, holders: Sequence[ReleaseRow], allowances: Sequence[MergeAllowance]):
        self.holders = list(holders)  # newest first: each holds a freeze of its own
        ids = {h.id for h in self.holders}
        mine = [a for a in allowances if a.release_id in ids]
        self.reasons = {(a.release_id, a.pr_number, a.sha): a.reason for a in mine}
        self.allowed_pulls = {(a.release_id, a.pr_number) for a in mine}
        self.key = (
            tuple((h.id, h.status, h.reason, h.version) for h in self.holders),
            max((a.id for a in mine), default=0),
        )

    @property
    def holder_id(self) -> int | None:
        """The newest release holding a freeze, if any."""
        return self.holders[0].id if self.holders else None

    def wanted(self, head: PullHead) -> Wanted:
        """`failure` while any freeze holds that head; `success` when none does."""
        for holder in self.holders:
            if (holder.id, head.number, head.sha) not in self.reasons:
                text = messages.gate_frozen(holder.version, holder.status, holder.reason)
                return Wanted(FAILURE, text, holder.id)
        if not self.holders:
            return Wanted(SUCCESS, messages.gate_open(), None)
        newest = self.holders[0]
        reason = self.reasons[(newest.id, head.number, head.sha)]
        return Wanted(SUCCESS, messages.gate_allowed(newest.version, reason), newest.id)

    def refrozen(self, head: PullHead, wanted: Wanted) -> bool:
        """True when a head is frozen although the same freeze let an earlier head through."""
        return wanted.state == FAILURE and (wanted.release_id, head.number) in self.allowed_pulls


class FreezeEnforcer(Worker):
    """Sets the merge gate on GitHub from the database; `sync()` is safe to call any time."""

    what = "merge gate"

    def __init__(
        self,
        service: ReleaseService,
        client: httpx.AsyncClient,
        *,
        pace: float = PACE,
        verify: int = VERIFY_PER_SWEEP,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.service = service
        self.config = service.config
        self.store = service.store
        self.clock = service.clock
        self.secrets = service.secrets
        self.client = client
        self.pace = pace
        self.verify = verify
        self._monotonic = monotonic
        self._sleep = sleep
        super().__init__()
        self.last_error: str | None = None
        self.blocked_until: datetime | None = None  # GitHub is rate-limiting golive until then
        self._backoff = RATE_LIMIT_WAIT
        self._retry_at: datetime | None = None  # GitHub failed; ask again then
        self._queued: dict[int, PullHead] = {}  # heads a webhook delivered, by pull number
        self._swept: object = None  # the plan's key when the last sweep finished
        self._next_sweep: datetime | None = None
        self._last_post = float("-inf")
        self._lock = asyncio.Lock()  # one pass at a time: webhooks, pump() and the loop race

    @property
    def ci(self) -> CIConfig | None:
        """The GitHub section, when a freeze branch is configured."""
        ci = self.config.preconditions.ci
        return ci if ci is not None and ci.freeze_branch else None

    @property
    def enabled(self) -> bool:
        """True when a GitHub freeze branch is configured."""
        return self.ci is not None

    def pull_changed(self, head: PullHead) -> None:
        """A webhook says a pull request into the branch was opened or got a new head."""
        self._queued[head.number] = head
        self.wake()

    def queued(self) -> list[PullHead]:
        """Heads a webhook delivered that the gate has not judged yet."""
        return list(self._queued.values())

    async def work(self) -> None:
        """One pass of the background loop: queued heads, and a sweep when one is due."""
        await self._pass(periodic=True)

    async def settle(self) -> None:
        """Judge queued heads, and sweep if the freezes changed since the last sweep."""
        await self._pass(periodic=False)

    async def sync(self) -> None:
        """Sweep now: every open pull request gets the status the database says it should."""
        await self._pass(periodic=False, force=True)

    def next_wait(self) -> float | None:
        """Until the rate limit lifts, GitHub may be asked again, or the next sweep is due."""
        if not self.enabled:
            return None
        now = self.clock.now()
        if self.blocked_until is not None and now < self.blocked_until:
            return max((self.blocked_until - now).total_seconds(), 0.05)
        moments = [m for m in (self._retry_at, self._next_sweep) if m is not None]
        if not moments:
            return 0.05
        return max((min(moments) - now).total_seconds(), 0.05)

    # -- one pass --------------------------------------------------------------------------

    async def _pass(self, *, periodic: bool, force: bool = False) -> None:
        ci = self.ci
        if ci is None:
            return
        async with self._lock:
            now = self.clock.now()
            if self.blocked_until is not None and now < self.blocked_until:
                return  # rate-limited: GitHub hears nothing from golive until the limit lifts
            if not force and self._retry_at is not None and now < self._retry_at:
                return
            token = self.secrets.get(ci.token_env)
            plan = self._plan()
            if token is None:
                message = f"{ci.token_env} is not set, so pull requests cannot be marked"
                await self._failed(plan.holder_id, message)
                self._retry_at = now + ci.gate_sweep
                return
            due = (
                force
                or plan.key != self._swept
                or (periodic and (self._next_sweep is None or now >= self._next_sweep))
            )
            try:
                await self._judge_queued(ci, token, plan)
                if due:
                    await self._sweep(ci, token, plan)
            except RateLimited as exc:
                await self._rate_limited(exc, plan)
                return
            except ProviderError as exc:
                await self._failed(plan.holder_id, exc.message)
                wait = min(ERROR_RETRY, ci.gate_sweep.total_seconds())
                self._retry_at = self.clock.now() + timedelta(seconds=wait)
                return
            self.last_error = None
            self._retry_at = None
            self._backoff = RATE_LIMIT_WAIT

    def _plan(self) -> GatePlan:
        return GatePlan(self.store.frozen_releases(), self.store.merge_allowances())

    async def _judge_queued(self, ci: CIConfig, token: str, plan: GatePlan) -> None:
        for number, head in list(self._queued.items()):
            await self._judge(ci, token, plan, head)
            if self._queued.get(number) == head:  # a newer push may have arrived meanwhile
                del self._queued[number]

    async def _sweep(self, ci: CIConfig, token: str, plan: GatePlan) -> None:
        assert ci.freeze_branch is not None
        heads = await open_pull_heads(
            self.client, ci.github_url, ci.repository, ci.freeze_branch, token
        )
        remembered = self.store.gate_statuses(ci.repository)
        posted: set[str] = set()
        for head in heads:
            await self._judge_queued(ci, token, plan)  # a webhook's head does not wait a sweep
            if await self._judge(ci, token, plan, head):
                posted.add(head.sha)
        # Read back the statuses checked longest ago: one changed behind golive's back is set
        # right, so GitHub ends up saying what the database says.
        known = [h for h in heads if h.sha not in posted and h.sha in remembered]
        known.sort(key=lambda h: remembered[h.sha].verified_at or NEVER)
        for head in known[: self.verify]:
            shown = await gate_state(self.client, ci.github_url, ci.repository, head.sha, token)
            wanted = plan.wanted(head)
            if shown == wanted.state:
                await self._verified(ci.repository, head.sha)
                continue
            log.warning(
                "merge gate: GitHub shows %s on #%d (%s), golive set %s; setting it again",
                shown,
                head.number,
                head.sha[:7],
                wanted.state,
            )
            seen = {"pr": head.number, "sha": head.sha, "github": shown, "wanted": wanted.state}
            await self._record(wanted.release_id, "freeze_gate_corrected", seen)
            await self._post(ci, token, plan, head, wanted, first=False)
        self._swept = plan.key
        self._next_sweep = self.clock.now() + ci.gate_sweep

    async def _verified(self, repository: str, sha: str) -> None:
        now = self.clock.now()
        await self.store.writes.run(lambda: self.store.gate_verified(repository, sha, now))

    async def _judge(self, ci: CIConfig, token: str, plan: GatePlan, head: PullHead) -> bool:
        """Post the wanted status on a head unless golive already set exactly that; True when
        it posted."""
        wanted = plan.wanted(head)
        have = self.store.gate_status(ci.repository, head.sha)
        if have is not None and (have.state, have.description) == (
            wanted.state,
            wanted.description,
        ):
            return False
        await self._post(ci, token, plan, head, wanted, first=have is None)
        return True

    async def _post(
        self,
        ci: CIConfig,
        token: str,
        plan: GatePlan,
        head: PullHead,
        wanted: Wanted,
        *,
        first: bool,
    ) -> None:
        wait = self._last_post + self.pace - self._monotonic()
        if wait > 0:
            await self._sleep(wait)
        self._last_post = self._monotonic()
        await set_freeze_status(
            self.client,
            ci.github_url,
            ci.repository,
            head.sha,
            token,
            state=wanted.state,
            description=wanted.description,
        )
        now = self.clock.now()

        def remember() -> None:
            with self.store.transaction():
                self.store.remember_gate_status(
                    ci.repository,
                    head.sha,
                    head.number,
                    wanted.state,
                    wanted.description,
                    wanted.release_id,
                    now,
                )
                if first and plan.refrozen(head, wanted):
                    self._tell_refrozen(head, wanted, now)
                    self.service.changed()

        await self.store.writes.run(remember)

    def _tell_refrozen(self, head: PullHead, wanted: Wanted, now: datetime) -> None:
        """The thread hears that a pull request let through the freeze was pushed to again."""
        assert wanted.release_id is not None
        record = self.store.load(wanted.release_id)
        data = {"pr": head.number, "sha": head.sha}
        self.store.add_event(wanted.release_id, now, "merge_refrozen", None, data)
        rendered = messages.render_refrozen(head.number, head.sha, record.release.version)
        self.service.effects.thread(record, rendered, now)

    # -- when GitHub says no ---------------------------------------------------------------

    async def _rate_limited(self, exc: RateLimited, plan: GatePlan) -> None:
        now = self.clock.now()
        wait = exc.wait_from(now.timestamp(), self._backoff)
        if exc.retry_after is None and exc.reset_at is None:
            self._backoff = min(self._backoff * 2, MAX_RATE_LIMIT_WAIT)
        self.blocked_until = now + timedelta(seconds=max(wait, 1.0))
        await self._failed(plan.holder_id, f"{exc.message}; the merge gate waits {wait:.0f}s")

    async def _failed(self, release_id: int | None, message: str) -> None:
        if message != self.last_error:
            log.warning("merge gate on GitHub: %s", message)
            await self._record(release_id, "freeze_gate_failed", {"error": message})
        self.last_error = message

    async def _record(self, release_id: int | None, kind: str, data: dict[str, Any]) -> None:
        """One event on the record, written by the database's writer."""
        now = self.clock.now()
        await self.store.writes.run(
            lambda: self.store.add_event(release_id, now, kind, None, data)
        )
