"""The one writer: a thread that owns the writing connection and runs units of work in turn.

SQLite lets one connection write at a time, and another process holding the write lock (a backup,
an operator's `sqlite3` shell) makes a writer wait. Waiting on the event loop would stall every
acknowledgment, so in a server every write runs here instead: one thread, one connection, one
unit (usually one transaction) after another, in the order they were submitted. The event loop
awaits the unit and keeps answering meanwhile; it reads through its own read-only connection,
which WAL never makes wait for a writer.

Each unit says how long it may wait for another process's lock (`wait`, SQLite's busy timeout):
a short time for background work, which retries later with its own backoff, and a little longer
for a person's command, which must be answered within Slack's three seconds. Without a thread
(the console, an in-memory database in tests) a unit runs inline, with the same rules.
"""

from __future__ import annotations

import asyncio
import itertools
import queue
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from sqlite_utils import Database

T = TypeVar("T")

# How long background writes wait for another process's lock before failing (and retrying later).
SHORT_WAIT = 0.1
# How long a person's command waits for the lock: inside Slack's 3 s with room for the work.
COMMAND_WAIT = 1.5


def unwritable(exc: BaseException) -> bool:
    """True for errors that say the database cannot be written now (locked, read-only, full,
    I/O, corrupt) rather than that golive asked for something wrong (a constraint, bad SQL)."""
    return isinstance(exc, sqlite3.OperationalError) or type(exc) is sqlite3.DatabaseError


def reason(exc: BaseException) -> str:
    """A short, secret-free description of a database failure."""
    return f"{type(exc).__name__}: {str(exc)[:200]}"


class Writer:
    """Runs units of work against the writing connection, on its own thread when `threaded`.

    Units run one at a time in the order they were submitted, except that urgent ones (what a
    person or Slack is waiting for: an event to keep before its ack, a command, the health
    probe) go before background work already waiting.
    """

    def __init__(self, connect: Callable[[], Database], *, threaded: bool) -> None:
        self._wait_ms: int | None = None
        self._queued = 0  # units submitted from the loop and not finished (for /healthz)
        self._order = itertools.count()
        self._jobs: queue.PriorityQueue[tuple[int, int, _Job | None]] = queue.PriorityQueue()
        self._worker: threading.Thread | None = None
        self._thread: int | None = None
        if not threaded:
            self.db = connect()
            return
        opened: Future[tuple[Database, int]] = Future()
        self._worker = threading.Thread(
            target=self._serve, args=(connect, opened), name="golive-db", daemon=True
        )
        self._worker.start()
        self.db, self._thread = opened.result()

    @property
    def queued(self) -> int:
        """Units of work submitted and not finished yet."""
        return self._queued

    @property
    def threaded(self) -> bool:
        """True when writes run on their own thread."""
        return self._worker is not None

    def here(self) -> bool:
        """True on the thread that may write (any thread when there is no writer thread)."""
        return self._thread is None or threading.get_ident() == self._thread

    def _serve(self, connect: Callable[[], Database], opened: Future[tuple[Database, int]]) -> None:
        try:
            db = connect()
        except BaseException as exc:
            opened.set_exception(exc)
            return
        opened.set_result((db, threading.get_ident()))
        while True:
            _, _, job = self._jobs.get()
            if job is None:
                db.close()
                return
            fn, wait, future = job
            if not future.set_running_or_notify_cancel():
                continue  # its caller stopped waiting before it started
            try:
                future.set_result(self._unit(fn, wait))
            except BaseException as exc:
                future.set_exception(exc)

    def _unit(self, fn: Callable[[], T], wait: float) -> T:
        wait_ms = max(int(wait * 1000), 0)
        if wait_ms != self._wait_ms:
            self.db.execute(f"PRAGMA busy_timeout = {wait_ms}")
            self._wait_ms = wait_ms
        return fn()

    def _submit(self, fn: Callable[[], T], wait: float, urgent: bool) -> Future[T]:
        future: Future[T] = Future()
        job: _Job = (fn, wait, future)
        self._jobs.put((0 if urgent else 1, next(self._order), job))
        return future

    async def run(
        self, fn: Callable[[], T], *, wait: float = SHORT_WAIT, urgent: bool = False
    ) -> T:
        """Run one unit of work on the writer and await its result (or its exception)."""
        if self._worker is None or self.here():
            return self._unit(fn, wait)
        self._queued += 1
        try:
            return await asyncio.wrap_future(self._submit(fn, wait, urgent))
        finally:
            self._queued -= 1

    def call(self, fn: Callable[[], T], *, wait: float = SHORT_WAIT) -> T:
        """Run one unit and block until it is done (start-up, shutdown and the command line)."""
        if self._worker is None or self.here():
            return self._unit(fn, wait)
        return self._submit(fn, wait, False).result()

    def close(self) -> None:
        """Close the connection and stop the thread, after the units already queued."""
        if self._worker is None:
            self.db.close()
            return
        self._jobs.put((2, next(self._order), None))
        self._worker.join()


_Job = tuple[Callable[[], Any], float, "Future[Any]"]
