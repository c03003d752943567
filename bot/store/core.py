"""The store's core: the writing connection (on the writer), the read connection beside it,
transactions, callbacks after commit, the cache of parsed releases, and small shared helpers."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self, TypeVar, cast

from sqlite_utils import Database
from sqlite_utils.db import Table

from bot.domain.clock import parse_iso
from bot.domain.records import ReleaseRecord
from bot.domain.redact import Redactor
from bot.domain.serial import load
from bot.store.schema import migrations
from bot.store.writer import SHORT_WAIT, Writer

T = TypeVar("T")


def as_json(value: Any) -> str:
    """The stored JSON text of a value (keys sorted, so equal values store equal text)."""
    return json.dumps(value, sort_keys=True, default=str)


def from_json(text: str | None, default: Any) -> Any:
    """A stored JSON column decoded (`default` when it is empty)."""
    return json.loads(text) if text else default


def _connect(target: str, memory: bool) -> Database:
    """Open the writing connection: foreign keys, WAL for files, the schema migrated."""
    conn = sqlite3.connect(target, check_same_thread=False, timeout=10.0)
    db = Database(conn)
    db.execute("PRAGMA foreign_keys = ON")
    if not memory:
        db.enable_wal()
        db.execute("PRAGMA synchronous = NORMAL")
    migrations.apply(db)
    return db


def key_of(value: object) -> int:
    """The integer primary key an insert returned."""
    if not isinstance(value, int):
        raise RuntimeError(f"insert returned no integer key: {value!r}")
    return value


def time_or_none(text: str | None) -> datetime | None:
    """A stored timestamp, or None."""
    return parse_iso(text) if text else None


def moment(when: datetime) -> str:
    """A stored time to the millisecond: reminder times are compared with each other, and a
    demo's timers are shorter than a second."""
    return when.astimezone(UTC).isoformat(timespec="milliseconds")


class StoreBase:
    """The database. Without `threaded`, one connection used from the event loop's thread; with
    it (a server on a file), writes run on the writer thread (`writes`) and everything else
    reads through a read-only connection of its own, so a lock held by another process never
    stalls the event loop."""

    def __init__(
        self, path: str | Path, redactor: Redactor | None = None, *, threaded: bool = False
    ) -> None:
        """Open (and migrate) the database; `redactor` scrubs every known secret from what is
        stored or queued for Slack."""
        target = str(path)
        memory = target == ":memory:"
        self.path = target
        # Every known secret value, replaced in whatever text is stored or queued for Slack.
        self.redactor = redactor or Redactor()
        # Parsed releases, dropped whenever their rows are written (or a transaction rolls
        # back). Only the writer uses it: this process is the only writer, so the cache cannot
        # go stale behind its back.
        self._records: dict[int, ReleaseRecord] = {}
        # Callbacks to run once the outermost transaction commits (see `after_commit`).
        self._after: list[Callable[[], None]] = []
        self.writes = Writer(lambda: _connect(target, memory), threaded=threaded and not memory)
        self._reader: Database | None = None
        # The reader's own cache, valid while SQLite's data_version says nothing was committed
        # since (any commit by the writer empties it).
        self._seen: dict[int, ReleaseRecord] = {}
        self._seen_version: int | None = None
        if self.writes.threaded:
            conn = sqlite3.connect(target, check_same_thread=False, timeout=SHORT_WAIT)
            self._reader = Database(conn)
            self._reader.execute("PRAGMA query_only = 1")

    @property
    def db(self) -> Database:
        """The connection for this thread: the writer's on the writer thread, else the reader."""
        if self._reader is None or self.writes.here():
            return self.writes.db
        return self._reader

    def _shared(self) -> bool:
        """True when this thread reads beside the writer (and must not use its cache)."""
        return self._reader is not None and not self.writes.here()

    def close(self) -> None:
        """Close the connections."""
        if self._reader is not None:
            self._reader.close()
        self.writes.close()

    def schema_version(self) -> list[str]:
        """Names of the applied migrations, in order."""
        return [m.name for m in migrations.applied(self.db)]

    @contextmanager
    def transaction(self) -> Iterator[Self]:
        """Everything inside commits together or not at all; nested, it is part of the outer one.

        The outermost one takes the write lock at once (BEGIN IMMEDIATE), so waiting for another
        process happens before any work, and a failed COMMIT is raised, never taken for success.
        """
        if not self.writes.here():
            raise RuntimeError("database writes belong on the writer (Store.writes.run)")
        conn = self.db.conn
        if conn.in_transaction:
            try:
                with self.db.atomic():
                    yield self
            except BaseException:
                self._records.clear()  # something cached inside may have been rolled back
                raise
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield self
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            self._records.clear()
            self._after.clear()
            raise
        after, self._after = self._after, []
        for callback in after:
            callback()

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Call `callback` once the current transaction commits (at once outside one)."""
        if self.writes.here() and self.db.conn.in_transaction:
            self._after.append(callback)
        else:
            callback()

    def _t(self, name: str) -> Table:
        return cast(Table, self.db[name])

    def _rows(
        self,
        cls: type[T],
        table: str,
        where: str | None = None,
        args: Sequence[Any] = (),
        *,
        order_by: str | None = "id",
        limit: int | None = None,
        decode: Mapping[str, Any] | None = None,
    ) -> list[T]:
        """Rows of a table as typed records, the JSON columns named in `decode` decoded (to
        the default given there when empty)."""
        return [
            self._row(cls, row, decode)
            for row in self._t(table).rows_where(where, list(args), order_by=order_by, limit=limit)
        ]

    @staticmethod
    def _row(cls: type[T], row: Mapping[str, Any], decode: Mapping[str, Any] | None = None) -> T:
        """One row as a typed record (see `_rows`)."""
        return load(cls, {**row, **StoreBase._decoded(row, decode)} if decode else row)

    @staticmethod
    def _decoded(row: Mapping[str, Any], decode: Mapping[str, Any] | None) -> dict[str, Any]:
        """The JSON columns of a row named in `decode`, decoded (the default given when empty)."""
        return {k: from_json(row[k], default) for k, default in (decode or {}).items()}
