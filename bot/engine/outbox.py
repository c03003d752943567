"""Delivery of queued messages: in order per channel, retrying what fails for a passing reason.

A message is posted, then marked delivered. When the database refuses that mark (a full disk, a
lock that does not go away), posting again would flood the channel with the same message; so
delivery stops instead: the row's Slack timestamp is kept in memory, nothing else is posted, and
after a backoff golive first tries to record what it already sent, and resumes only once that
worked. The release channel is told once, directly (the outbox itself cannot be written), that
golive is degraded, and once more when it recovers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import Protocol

from bot.domain.clock import Clock
from bot.engine.worker import Backoff, Worker
from bot.render.messages import render_degraded, render_recovered
from bot.store import OutboxRow, Store
from bot.store.writer import reason

log = logging.getLogger(__name__)


class RetryLater(Exception):
    """Delivery failed for a passing reason (rate limit, 5xx, connection); try again."""

    def __init__(self, reason: str, after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.after = after


class Undeliverable(Exception):
    """Delivery can never succeed (no such channel, invalid blocks); give up on this message."""


class Transport(Protocol):
    """Where messages go: Slack's Web API, or the console."""

    async def deliver(
        self, message: OutboxRow, thread_ts: str | None, target_ts: str | None
    ) -> str | None:
        """Send one message; return its timestamp/id. Raise RetryLater or Undeliverable."""
        ...


Prepare = Callable[[OutboxRow], Awaitable[OutboxRow]]


async def as_queued(row: OutboxRow) -> OutboxRow:
    """Deliver a row as it was queued."""
    return row


def chained(*steps: Prepare) -> Prepare:
    """One `prepare` that runs several in turn."""

    async def prepare(row: OutboxRow) -> OutboxRow:
        for step in steps:
            row = await step(row)
        return row

    return prepare


BACKOFF: Sequence[float] = (1, 2, 5, 10, 30, 60)
# Kinds that post a new message into a channel: Slack allows about one per second per channel.
# Edits (`update`) and ephemerals fall under other, per-method limits and are not paced.
PACED_KINDS = frozenset(
    {"card", "thread", "approval", "reminder", "confirm", "channel", "announce", "file"}
)


class Outbox(Worker):
    """Delivers the outbox: a crash or an outage delays messages, never loses them."""

    what = "outbox delivery pass"

    def __init__(
        self,
        store: Store,
        transport: Transport,
        clock: Clock,
        backoff: Sequence[float] = BACKOFF,
        pace: float = 0.0,
        only: frozenset[str] | None = None,
        skip: frozenset[str] = frozenset(),
        prepare: Prepare = as_queued,
        notices: Callable[[], list[str]] | None = None,
    ) -> None:
        """`prepare` completes a row just before delivery (a file drawn only then); `notices()`
        names the channels told when delivery stops because the database cannot be written
        (None: this outbox tells nobody, e.g. PagerDuty's)."""
        self.store = store
        self.prepare = prepare
        # Which kinds of rows this outbox delivers: chat messages and PagerDuty events each
        # have their own outbox, so an outage of one never holds the other back.
        self.only = only
        self.skip = skip
        self.transport = transport
        self.clock = clock
        self.backoff = backoff
        # Minimum seconds between two posts to one channel (0: unpaced, as in the console).
        self.pace = pace
        self._posted: dict[str, datetime] = {}
        self.notices = notices
        # Delivered, but the database refused to record it: row id → (ts, when). Recorded first
        # when delivery resumes, so none of these is ever posted twice by this process.
        self._unmarked: dict[int, tuple[str | None, datetime]] = {}
        self._pauses = Backoff(backoff)
        self._problem: str | None = None  # why delivery is paused (None: it is not)
        self._told: set[str] = set()  # channels that heard golive is degraded
        super().__init__()
        self._lock = asyncio.Lock()  # one delivery pass at a time: pump() may race run()

    def _retry_at(self, now: datetime, attempts: int, after: float | None) -> datetime:
        delay = after if after is not None else self.backoff[min(attempts, len(self.backoff)) - 1]
        return now + timedelta(seconds=max(delay, 0.0))

    def _paced_until(self, row: OutboxRow) -> datetime | None:
        """When `row` may be posted without breaking the channel's pace; None if not held."""
        if self.pace <= 0 or row.kind not in PACED_KINDS:
            return None
        last = self._posted.get(row.channel)
        return last + timedelta(seconds=self.pace) if last is not None else None

    async def flush(self) -> int:
        """One pass over pending messages; returns how many were delivered."""
        async with self._lock:
            return await self._flush()

    async def _write(self, fn: Callable[[], object]) -> bool:
        """Run a write on the database's writer; on failure pause delivery and say False."""
        try:
            await self.store.writes.run(fn)
        except Exception as exc:
            await self._pause(exc)
            return False
        return True

    async def _flush(self) -> int:
        if self._problem is not None and not await self._resume():
            return 0
        try:
            pending = self._pending()
        except Exception as exc:
            await self._pause(exc)
            return 0
        delivered = 0
        held: set[str] = set()  # channels whose earlier message must go first
        for row in pending:
            if row.channel in held:
                continue
            now = self.clock.now()
            if row.next_attempt_at is not None and row.next_attempt_at > now:
                held.add(row.channel)
                continue
            thread_ts = target_ts = None
            if row.thread_of is not None:
                parent = self.store.message(row.thread_of)
                if parent is not None and parent.status == "pending":
                    held.add(row.channel)
                    continue
                thread_ts = (
                    parent.ts if parent is not None and parent.status == "delivered" else None
                )
            if row.update_of is not None:
                target = self.store.message(row.update_of)
                if target is not None and target.status == "pending":
                    held.add(row.channel)
                    continue
                if target is None or target.status != "delivered":
                    if not await self._write(
                        partial(
                            self.store.mark_failed,
                            row.id,
                            "the message to update was never delivered",
                            now,
                        )
                    ):
                        return delivered
                    continue
                target_ts = target.ts
            paced = self._paced_until(row)
            if paced is not None and paced > now:
                held.add(row.channel)
                continue
            try:
                ts = await self.transport.deliver(await self.prepare(row), thread_ts, target_ts)
            except RetryLater as exc:
                attempts = row.attempts + 1
                when = self._retry_at(self.clock.now(), attempts, exc.after)
                log.warning(
                    "message %s to %s: %s; retry at %s",
                    row.id,
                    row.channel,
                    exc.reason,
                    when.isoformat(),
                )
                if not await self._write(
                    partial(self.store.mark_retry, row.id, attempts, when, exc.reason)
                ):
                    return delivered
                held.add(row.channel)
                continue
            except Undeliverable as exc:
                log.error("message %s to %s cannot be delivered: %s", row.id, row.channel, exc)
                if not await self._write(
                    partial(self.store.mark_failed, row.id, str(exc), self.clock.now())
                ):
                    return delivered
                continue
            sent_at = self.clock.now()
            if row.kind in PACED_KINDS:
                self._posted[row.channel] = sent_at
            delivered += 1
            if not await self._write(partial(self.store.mark_delivered, row.id, ts, sent_at)):
                self._unmarked[row.id] = (ts, sent_at)
                return delivered
        return delivered

    # -- when the database cannot be written ------------------------------------------------

    async def _pause(self, exc: Exception) -> None:
        """Stop delivering until a backoff has passed; tell the channels once."""
        delay = self._pauses.fail(self.clock.now())
        first = self._problem is None
        self._problem = reason(exc)
        log.log(
            logging.ERROR if first else logging.WARNING,
            "the database refused a write (%s): delivery paused for %s s",
            self._problem,
            delay,
        )
        await self._tell(render_degraded(self._problem), self._untold)

    def _untold(self) -> list[str]:
        return [c for c in (self.notices() if self.notices else []) if c not in self._told]

    async def _tell(self, text: str, channels: Callable[[], list[str]]) -> None:
        """Post straight to Slack, past the outbox (which cannot be written)."""
        for channel in channels():
            notice = OutboxRow(
                id=0,
                release_id=None,
                channel=channel,
                kind="channel",
                text=text,
                blocks=None,
                thread_of=None,
                user=None,
                step_key=None,
                update_of=None,
                file=None,
                status="pending",
                attempts=0,
                next_attempt_at=None,
                ts=None,
                error=None,
                created_at=self.clock.now(),
            )
            try:
                await self.transport.deliver(notice, None, None)
            except Exception as exc:  # Slack may be unreachable too: try again next pause
                log.warning("could not tell %s that golive is degraded: %s", channel, exc)
                continue
            self._told.add(channel)

    async def _resume(self) -> bool:
        """After the backoff: record what was sent, prove a write, then deliver again."""
        now = self.clock.now()
        if self._pauses.holding(now):
            return False
        unmarked = dict(self._unmarked)

        def settle() -> None:
            with self.store.transaction():
                for message_id, (ts, at) in unmarked.items():
                    self.store.mark_delivered(message_id, ts, at)
                self.store.heartbeat(now)

        if not await self._write(settle):
            return False
        log.info("the database takes writes again (after %s); delivery resumes", self._problem)
        self._unmarked.clear()
        self._pauses.reset()
        self._problem = None
        told, self._told = sorted(self._told), set()
        await self._tell(render_recovered(), lambda: told)
        return True

    def state(self) -> str:
        """Say "delivering", or why and until when delivery is paused (for /healthz)."""
        if self._problem is None:
            return "delivering"
        until = self._pauses.until.isoformat() if self._pauses.until else "now"
        return f"paused: the database refused a write ({self._problem}); next try {until}"

    def next_retry(self) -> datetime | None:
        """When the earliest held-back message may be tried again (retry time or pace)."""
        known: list[datetime] = []
        seen: set[str] = set()
        for row in self._pending():
            if row.channel in seen:
                continue  # only the head of each channel's queue decides when it moves
            seen.add(row.channel)
            times = [t for t in (row.next_attempt_at, self._paced_until(row)) if t is not None]
            if times:
                known.append(max(times))
        return min(known) if known else None

    def _pending(self, limit: int = 500) -> list[OutboxRow]:
        return self.store.pending_messages(limit=limit, only=self.only, skip=self.skip)

    def pending(self) -> int:
        """How many messages wait for delivery."""
        return self.store.pending_count(self.only, self.skip)

    async def work(self) -> None:
        """One delivery pass."""
        await self.flush()

    def next_wait(self) -> float:
        """Wake at the next retry (or pace) time; poll briefly while anything is held back."""
        if self._problem is not None:
            return self._pauses.wait(self.clock.now()) or 0.05
        try:
            retry = self.next_retry()
            if retry is not None:
                return min(max((retry - self.clock.now()).total_seconds(), 0.05), 5.0)
            return 0.2 if self.pending() else 5.0
        except Exception:  # the database does not answer reads: the next pass pauses
            return 1.0
