"""Delivery of queued messages: in order per channel, retrying what fails for a passing reason."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol

from bot.clock import Clock
from bot.store import OutboxRow, Store

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


BACKOFF: Sequence[float] = (1, 2, 5, 10, 30, 60)


class Outbox:
    """Delivers the outbox: a crash or an outage delays messages, never loses them."""

    def __init__(
        self, store: Store, transport: Transport, clock: Clock, backoff: Sequence[float] = BACKOFF
    ) -> None:
        self.store = store
        self.transport = transport
        self.clock = clock
        self.backoff = backoff
        self._wake = asyncio.Event()
        self._stopped = False

    def wake(self) -> None:
        """Something was queued: deliver soon."""
        self._wake.set()

    def _retry_at(self, now: datetime, attempts: int, after: float | None) -> datetime:
        delay = after if after is not None else self.backoff[min(attempts, len(self.backoff)) - 1]
        return now + timedelta(seconds=max(delay, 0.0))

    async def flush(self) -> int:
        """One pass over pending messages; returns how many were delivered."""
        delivered = 0
        held: set[str] = set()  # channels whose earlier message must go first
        for row in self.store.pending_messages(limit=500):
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
                    self.store.mark_failed(row.id, "the message to update was never delivered", now)
                    continue
                target_ts = target.ts
            try:
                ts = await self.transport.deliver(row, thread_ts, target_ts)
            except RetryLater as exc:
                attempts = row.attempts + 1
                when = self._retry_at(self.clock.now(), attempts, exc.after)
                self.store.mark_retry(row.id, attempts, when, exc.reason)
                log.warning(
                    "message %s to %s: %s; retry at %s",
                    row.id,
                    row.channel,
                    exc.reason,
                    when.isoformat(),
                )
                held.add(row.channel)
                continue
            except Undeliverable as exc:
                self.store.mark_failed(row.id, str(exc), self.clock.now())
                log.error("message %s to %s cannot be delivered: %s", row.id, row.channel, exc)
                continue
            self.store.mark_delivered(row.id, ts, self.clock.now())
            delivered += 1
        return delivered

    def next_retry(self) -> datetime | None:
        """When the earliest held-back message may be tried again."""
        times = [r.next_attempt_at for r in self.store.pending_messages(limit=500)]
        known = [t for t in times if t is not None]
        return min(known) if known else None

    def pending(self) -> int:
        """How many messages wait for delivery."""
        return len(self.store.pending_messages(limit=10_000))

    async def run(self) -> None:
        """Deliver until stopped, waking on new messages and at retry times."""
        while not self._stopped:
            self._wake.clear()
            try:
                await self.flush()
            except Exception:
                log.exception("outbox delivery pass failed; retrying")
            timeout = 5.0
            retry = self.next_retry()
            if retry is not None:
                timeout = min(max((retry - self.clock.now()).total_seconds(), 0.05), timeout)
            elif self.pending():
                timeout = 0.2
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=timeout)

    def stop(self) -> None:
        """End the delivery loop after the current pass."""
        self._stopped = True
        self._wake.set()
