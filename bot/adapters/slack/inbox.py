"""The inbox: Slack events and clicks are written to SQLite before Slack hears they arrived.

Slack sends a reaction once (and retries only when it got no 2xx), so an event acknowledged but
held only in memory is lost by a crash. Here the listener writes the event to the `inbox` table
and only then lets Bolt answer 200; if the database cannot take it within the acknowledgment
budget, Slack gets a 5xx and sends it again later. A worker processes the inbox in arrival order,
each event in one transaction with what it changes, marking it done in that same transaction:
an event is processed once however often Slack sends it (the key is Slack's `event_id`, or the
click's `trigger_id`), and a restart processes whatever was accepted and not yet done.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from functools import partial
from typing import Any

from bot.engine.runtime import Runtime
from bot.engine.worker import Backoff, Worker
from bot.store import InboxEntry, Store
from bot.store.writer import SHORT_WAIT, reason, unwritable

log = logging.getLogger(__name__)

# Seconds an event may wait for the database before Slack is told to send it again (Slack
# resends after 3 s without an answer, so the answer must come first).
ACCEPT_BUDGET = 2.0
BACKOFF: Sequence[float] = (1, 2, 5, 10, 30, 60)

# What processing an entry says: what happened (for the record), and a reply for the person who
# clicked, if any, to be sent after the commit.
Handled = tuple[str | None, str | None]
Handler = Callable[[Runtime, Mapping[str, Any]], Handled]
Reply = Callable[[Mapping[str, Any], str], Coroutine[Any, Any, None]]


class InboxUnavailable(Exception):
    """The database did not take an incoming event in time; Slack should send it again."""


class Inbox(Worker):
    """Accepts events into SQLite before the ack and processes them, in order, afterwards."""

    what = "Slack inbox pass"

    def __init__(
        self,
        runtime: Runtime,
        handlers: Mapping[str, Handler],
        reply: Reply,
        *,
        delay: float = 0.0,
        backoff: Sequence[float] = BACKOFF,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """`delay`: seconds to hold each entry before processing it (crash tests use it to
        kill golive between the acknowledgment and the work; 0 in production)."""
        super().__init__()
        self.runtime = runtime
        self.handlers = handlers
        self.reply = reply
        self.delay = delay
        self._monotonic = monotonic
        self._pauses = Backoff(backoff)
        self._idle = asyncio.Event()
        self._idle.set()
        self._replies: set[asyncio.Task[None]] = set()

    @property
    def store(self) -> Store:
        """The runtime's store."""
        return self.runtime.store

    async def accept(self, key: str, kind: str, payload: Mapping[str, Any]) -> bool:
        """Write one incoming event; True when it is new, False when its key was seen before.

        Retries briefly while the database is locked; raises InboxUnavailable when it cannot be
        written within ACCEPT_BUDGET, so that the caller answers Slack with an error.
        """
        store = self.store
        started = self._monotonic()
        pause = 0.05
        while True:
            now = self.runtime.clock.now()
            try:
                fresh = await store.writes.run(
                    partial(store.inbox_add, key, kind, payload, now),
                    wait=SHORT_WAIT,
                    urgent=True,
                )
                break
            except Exception as exc:
                if not unwritable(exc) or self._monotonic() - started + pause > ACCEPT_BUDGET:
                    log.error("could not keep Slack event %s: %s", key, reason(exc))
                    raise InboxUnavailable(reason(exc)) from exc
                await asyncio.sleep(pause)
                pause = min(pause * 2, 0.4)
        if fresh:
            self._idle.clear()
            self.wake()
        return fresh

    def _process(self, entry: InboxEntry) -> Handled:
        """One entry and its effects in one transaction (on the database's writer)."""
        store = self.store
        with store.transaction():
            current = store.inbox_entry(entry.key)
            if current is None or current.status != "pending":
                return None, None  # processed already
            handler = self.handlers.get(entry.kind)
            if handler is None:
                raise LookupError(f"no handler for inbox entries of kind {entry.kind!r}")
            outcome, answer = handler(self.runtime, entry.payload)
            store.inbox_done(entry.id, outcome, self.runtime.clock.now())
        return outcome, answer

    def _pause(self, exc: BaseException) -> None:
        delay = self._pauses.fail(self.runtime.clock.now())
        log.warning("inbox paused for %s s: the database refused (%s)", delay, reason(exc))

    async def work(self) -> None:
        """Process every pending entry in arrival order."""
        if self._pauses.holding(self.runtime.clock.now()):
            return
        store = self.store
        try:
            entries = store.inbox_pending()
        except Exception as exc:
            self._pause(exc)
            return
        if entries:
            self._idle.clear()
        for entry in entries:
            if self.delay:
                await asyncio.sleep(self.delay)
            try:
                _, answer = await store.writes.run(partial(self._process, entry))
            except Exception as exc:
                if unwritable(exc):
                    self._pause(exc)
                    return
                log.exception("processing Slack event %s failed; it is set aside", entry.key)
                failed_at = self.runtime.clock.now()
                try:
                    await store.writes.run(
                        partial(store.inbox_failed, entry.id, reason(exc), failed_at)
                    )
                except Exception as again:
                    self._pause(again)
                    return
                continue
            if answer is not None:
                self._send(entry.payload, answer)
        try:
            if not store.inbox_pending(limit=1):
                self._idle.set()
        except Exception as exc:
            self._pause(exc)
            return
        self._pauses.reset()  # a whole pass went through

    def _send(self, payload: Mapping[str, Any], text: str) -> None:
        task = asyncio.get_running_loop().create_task(self.reply(payload, text))
        self._replies.add(task)
        task.add_done_callback(self._replies.discard)

    def next_wait(self) -> float | None:
        """Only when woken, or when a pause ends."""
        return self._pauses.wait(self.runtime.clock.now())

    async def join(self) -> None:
        """Wait until every accepted entry has been processed (tests, shutdown)."""
        await self._idle.wait()
        if self._replies:
            await asyncio.gather(*list(self._replies), return_exceptions=True)

    async def close(self, task: asyncio.Task[None] | None, timeout: float = 5.0) -> None:
        """Stop the worker; entries not processed yet stay in the inbox for the next start."""
        self.stop()
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self._replies:
            await asyncio.wait(set(self._replies), timeout=timeout)
