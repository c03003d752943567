"""Release state in SQLite through sqlite-utils: versioned schema, WAL, event log and outbox."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from sqlite_utils import Database
from sqlite_utils.db import Table

from bot.domain.clock import parse_iso, utc_iso
from bot.domain.config import Shortened
from bot.domain.model import Outcome, Phase, Release, ReleaseStatus, Roles, Stage, Step, StepStatus
from bot.domain.records import ActionRun, OutboxRow, ReleaseRecord, Wait
from bot.domain.redact import Redactor
from bot.store.schema import migrations
from bot.store.writer import SHORT_WAIT, Writer

__all__ = ["ActionRun", "OutboxRow", "ReleaseRecord", "Store", "Wait", "migrations"]

def _j(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _unj(text: str | None, default: Any) -> Any:
    return json.loads(text) if text else default


def _pending_where(only: frozenset[str] | None, skip: frozenset[str]) -> tuple[str, list[str]]:
    """The outbox filter for pending rows of some kinds (`only`) and not others (`skip`)."""
    where = "status = 'pending'"
    args: list[str] = []
    if only is not None:
        where += " and kind in (" + ",".join("?" * len(only)) + ")"
        args += sorted(only)
    if skip:
        where += " and kind not in (" + ",".join("?" * len(skip)) + ")"
        args += sorted(skip)
    return where, args


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


def _pk(value: object) -> int:
    if not isinstance(value, int):
        raise RuntimeError(f"insert returned no integer key: {value!r}")
    return value


def _when(text: str | None) -> datetime | None:
    return parse_iso(text) if text else None


def _moment(when: datetime) -> str:
    """A stored time to the millisecond: reminder times are compared with each other, and a
    demo's timers are shorter than a second."""
    return when.astimezone(UTC).isoformat(timespec="milliseconds")


def _owner_changed(before: Release, after: Release, step: Step) -> bool:
    return before.roles.user(step.owner) != after.roles.user(step.owner)


class Store:
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
    def transaction(self) -> Iterator[Store]:
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

    # -- releases ------------------------------------------------------------------------

    def insert_release(
        self,
        release: Release,
        *,
        created_at: datetime,
        created_by: str,
        activate_at: datetime | None,
        shortened: Shortened | None = None,
    ) -> int:
        """Store a new release and its steps; returns its id. `shortened` says which of the
        runbook's minimum periods its config runs below, and why (kept for its record)."""
        row = self._release_row(release)
        row.update(
            created_at=utc_iso(created_at),
            created_by=created_by,
            activate_at=utc_iso(activate_at) if activate_at else None,
            shortened=_j(shortened.to_dict()) if shortened else None,
        )
        if release.frozen:  # a freeze taken over from an earlier release holds from the start
            row["frozen_at"] = utc_iso(created_at)
        row.pop("id")
        release_id = _pk(self._t("releases").insert(row).last_pk)
        self._records.pop(release_id, None)
        self._t("steps").insert_all(
            [
                {
                    **self._step_row(release_id, seq, step),
                    "awaiting_since": utc_iso(created_at)
                    if step.status is StepStatus.AWAITING
                    else None,
                    "waiting_since": _moment(created_at) if step.waits_on_people else None,
                }
                for seq, step in enumerate(release.steps)
            ]
        )
        return release_id

    def _release_row(self, release: Release) -> dict[str, Any]:
        return {
            "id": release.id,
            "channel": release.channel,
            "version": release.version,
            "status": release.status.value,
            "major": int(release.major),
            "services": _j(list(release.services)),
            "commander": release.roles.commander,
            "on_call": release.roles.on_call,
            "backend": release.roles.backend,
            "frontend": release.roles.frontend,
            "waivers": _j(sorted(release.waivers)),
            "frozen": int(release.frozen),
            "kickoff_at": utc_iso(release.kickoff_at) if release.kickoff_at else None,
            "reason": release.reason,
            "proposed_rollback": release.proposed_rollback,
        }

    @staticmethod
    def _step_row(release_id: int, seq: int, step: Step) -> dict[str, Any]:
        return {
            "release_id": release_id,
            "seq": seq,
            "key": step.key,
            "phase": step.phase.value,
            "title": step.title,
            "stages": _j([s.to_dict() for s in step.stages]),
            "services": _j(list(step.services)),
            "status": step.status.value,
            "stage": step.stage,
            "outcomes": _j([o.value for o in step.outcomes]),
            "attempt": step.attempt,
            "deadline": utc_iso(step.deadline) if step.deadline else None,
            "failing": _j(list(step.failing)),
            "variant": step.variant,
            "reason": step.reason,
        }

    def save_release(self, before: Release, after: Release, now: datetime) -> None:
        """Write what changed between two states of the same release."""
        self._records.pop(after.id, None)
        row = self._release_row(after)
        if after.frozen and not before.frozen:
            row["frozen_at"] = utc_iso(now)
        if after.status != before.status and after.status not in (
            ReleaseStatus.SCHEDULED,
            ReleaseStatus.ACTIVE,
        ):
            row["ended_at"] = utc_iso(now)
        self._t("releases").update(after.id, row)
        old = {s.key: s for s in before.steps}
        steps = self._t("steps")
        for seq, step in enumerate(after.steps):
            prior = old.get(step.key)
            if prior == step and step.waits_on_people and _owner_changed(before, after, step):
                # The role moved to someone else: their wait (and its reminders) starts now.
                self.db.execute(
                    "update steps set waiting_since = ? where release_id = ? and key = ?",
                    [_moment(now), after.id, step.key],
                )
                continue
            if prior == step:
                continue
            changes = self._step_row(after.id, seq, step)
            if prior is not None and prior.status is StepStatus.PENDING and step.is_open:
                changes["opened_at"] = utc_iso(now)
            if step.status is StepStatus.DONE and (prior is None or prior.status != step.status):
                changes["done_at"] = utc_iso(now)
            if step.status is StepStatus.AWAITING and (
                prior is None or (prior.status, prior.stage) != (step.status, step.stage)
            ):
                changes["awaiting_since"] = utc_iso(now)
            if step.waits_on_people and (
                prior is None or (prior.status, prior.stage) != (step.status, step.stage)
            ):
                changes["waiting_since"] = _moment(now)
            elif not step.waits_on_people:
                changes["waiting_since"] = None
            (step_id,) = [
                r["id"]
                for r in steps.rows_where("release_id = ? and key = ?", [after.id, step.key])
            ]
            steps.update(step_id, changes)

    def set_release_fields(self, release_id: int, **fields: Any) -> None:
        """Update bookkeeping columns of a release (card message, baseline...)."""
        self._records.pop(release_id, None)
        values = {k: _j(v) if k == "baseline" else v for k, v in fields.items()}
        self._t("releases").update(release_id, values)

    def load(self, release_id: int) -> ReleaseRecord:
        """A release with its steps, as stored."""
        if self._shared():
            return self._read_shared(release_id)
        cached = self._records.get(release_id)
        if cached is not None:
            return cached
        record = self._read(release_id)
        if not self.db.conn.in_transaction:
            self._records[release_id] = record
        return record

    def _read_shared(self, release_id: int) -> ReleaseRecord:
        """A release read beside the writer from one snapshot (never half of a commit), cached
        until the writer commits anything."""
        conn = self.db.conn
        conn.execute("BEGIN")
        try:
            version = conn.execute("PRAGMA data_version").fetchone()[0]
            if version != self._seen_version:
                self._seen.clear()
                self._seen_version = version
            record = self._seen.get(release_id)
            if record is None:
                record = self._seen[release_id] = self._read(release_id)
        finally:
            conn.execute("COMMIT")
        return record

    def _read(self, release_id: int) -> ReleaseRecord:
        row = self._t("releases").get(release_id)
        steps = [
            Step(
                key=r["key"],
                phase=Phase(r["phase"]),
                title=r["title"],
                stages=tuple(Stage.from_dict(s) for s in _unj(r["stages"], [])),
                services=tuple(_unj(r["services"], [])),
                status=StepStatus(r["status"]),
                stage=r["stage"] or 0,
                outcomes=tuple(Outcome(o) for o in _unj(r["outcomes"], [])),
                attempt=r["attempt"] or 0,
                deadline=_when(r["deadline"]),
                failing=tuple(_unj(r["failing"], [])),
                variant=r["variant"],
                reason=r["reason"],
            )
            for r in self._t("steps").rows_where("release_id = ?", [release_id], order_by="seq")
        ]
        release = Release(
            id=row["id"],
            channel=row["channel"],
            version=row["version"],
            status=ReleaseStatus(row["status"]),
            roles=Roles(row["commander"], row["on_call"], row["backend"], row["frontend"]),
            steps=tuple(steps),
            major=bool(row["major"]),
            services=tuple(_unj(row["services"], [])),
            waivers=frozenset(_unj(row["waivers"], [])),
            frozen=bool(row["frozen"]),
            kickoff_at=_when(row["kickoff_at"]),
            reason=row["reason"],
            proposed_rollback=row.get("proposed_rollback"),
        )
        return ReleaseRecord(
            release=release,
            created_at=parse_iso(row["created_at"]),
            created_by=row["created_by"],
            ended_at=_when(row["ended_at"]),
            frozen_at=_when(row["frozen_at"]),
            activate_at=_when(row["activate_at"]),
            card_message=row["card_message"],
            baseline=_unj(row["baseline"], None),
            shortened=Shortened.from_dict(_unj(row["shortened"], {})) if row["shortened"] else None,
            closed_at=_when(row["closed_at"]),
        )

    def latest_in_channel(self, channel: str) -> int | None:
        """Id of the most recent release in a channel."""
        rows = list(
            self._t("releases").rows_where("channel = ?", [channel], order_by="id desc", limit=1)
        )
        return int(rows[0]["id"]) if rows else None

    def find_release(self, name: str) -> int | None:
        """Id of a release by numeric id or version (the newest with that version)."""
        if name.isdigit():
            rows = list(self._t("releases").rows_where("id = ?", [int(name)]))
        else:
            rows = list(
                self._t("releases").rows_where("version = ?", [name], order_by="id desc", limit=1)
            )
        return int(rows[0]["id"]) if rows else None

    def release_ids(self, *, statuses: tuple[str, ...] = (), limit: int | None = None) -> list[int]:
        """Release ids, newest first, optionally only in some statuses."""
        where = None
        args: list[Any] = []
        if statuses:
            where = "status in (" + ",".join("?" for _ in statuses) + ")"
            args = list(statuses)
        return [
            int(r["id"])
            for r in self._t("releases").rows_where(where, args, order_by="id desc", limit=limit)
        ]

    def history_rows(self, limit: int = 20) -> list[dict[str, Any]]:
        """The newest releases as plain rows."""
        return list(self._t("releases").rows_where(order_by="id desc", limit=limit))

    def last_completed_versions(self, before: int | None = None) -> dict[str, str]:
        """service → version of the newest completed release that changed it."""
        where = "status = 'completed'" + (" and id < ?" if before is not None else "")
        args = [before] if before is not None else []
        found: dict[str, str] = {}
        for row in self._t("releases").rows_where(where, args, order_by="id desc"):
            for service in _unj(row["services"], []):
                found.setdefault(service, row["version"])
        return found

    # -- monitoring ------------------------------------------------------------------------

    def add_sample(
        self,
        release_id: int,
        period: str,
        at: datetime,
        values: Mapping[str, Any],
        verdicts: Mapping[str, Any],
    ) -> None:
        """Record one monitoring tick's figures and verdicts."""
        self._t("samples").insert(
            {
                "release_id": release_id,
                "period": period,
                "at": utc_iso(at),
                "requests": values.get("requests"),
                "errors": values.get("errors"),
                "ratio": values.get("ratio"),
                "p95": values.get("p95"),
                "verdicts": _j(dict(verdicts)),
            }
        )

    def samples(self, release_id: int, period: str | None = None) -> list[dict[str, Any]]:
        """Monitoring ticks of a release (optionally of one period), oldest first."""
        where, args = "release_id = ?", [release_id]
        if period is not None:
            where += " and period = ?"
            args.append(period)  # type: ignore[arg-type]
        return [
            {**r, "verdicts": _unj(r["verdicts"], {})}
            for r in self._t("samples").rows_where(where, args, order_by="id")
        ]

    def alert_state(self, release_id: int, signal: str) -> dict[str, Any] | None:
        """The persisted alert tracker state of one signal."""
        rows = list(
            self._t("alert_states").rows_where(
                "release_id = ? and signal = ?", [release_id, signal]
            )
        )
        return _unj(rows[0]["state"], None) if rows else None

    def alert_states(self, release_id: int) -> dict[str, dict[str, Any]]:
        """Every signal's tracker state of a release."""
        return {
            r["signal"]: _unj(r["state"], {})
            for r in self._t("alert_states").rows_where("release_id = ?", [release_id])
        }

    def save_alert_state(
        self, release_id: int, signal: str, state: Mapping[str, Any], at: datetime
    ) -> None:
        """Persist a signal's tracker state (in the tick's transaction)."""
        self._t("alert_states").upsert(
            {
                "release_id": release_id,
                "signal": signal,
                "state": _j(dict(state)),
                "updated_at": utc_iso(at),
            },
            pk=("release_id", "signal"),
        )

    def add_alert(
        self,
        release_id: int,
        signal: str,
        action: str,
        summary: str,
        dedup_key: str | None,
        at: datetime,
    ) -> None:
        """Record an alert action for the release record."""
        self._t("alerts").insert(
            {
                "release_id": release_id,
                "signal": signal,
                "action": action,
                "summary": summary,
                "dedup_key": dedup_key,
                "at": utc_iso(at),
            }
        )

    def alerts(self, release_id: int) -> list[dict[str, Any]]:
        """Alert actions of a release, oldest first."""
        return list(self._t("alerts").rows_where("release_id = ?", [release_id], order_by="id"))

    def set_monitoring(
        self, release_id: int, period: str | None, until: datetime | None, closed: bool = False
    ) -> None:
        """Set (or close) the release's monitoring window after the soak."""
        self._records.pop(release_id, None)
        self._t("releases").update(
            release_id,
            {
                "monitor_period": period,
                "monitor_until": utc_iso(until) if until else None,
                "monitor_closed": int(closed),
            },
        )

    def mark_closed(self, release_id: int, at: datetime) -> None:
        """The release is closed: its monitoring is over and its final record posted."""
        self._records.pop(release_id, None)
        self._t("releases").update(release_id, {"closed_at": utc_iso(at)})

    def monitoring_windows(self) -> list[dict[str, Any]]:
        """Releases with an open heightened (or post-rollback) monitoring window."""
        return list(
            self._t("releases").rows_where(
                "monitor_until is not null and coalesce(monitor_closed, 0) = 0", order_by="id"
            )
        )

    def frozen_release(self) -> dict[str, Any] | None:
        """The release currently holding a merge freeze, if any (the newest when several do)."""
        rows = self.frozen_releases()
        return rows[0] if rows else None

    def frozen_releases(self) -> list[dict[str, Any]]:
        """Every release holding a merge freeze, newest first (each holds its own)."""
        return list(self._t("releases").rows_where("frozen = 1", order_by="id desc"))

    def freeze_holder(self, channel: str) -> int | None:
        """Id of the release of a channel that holds a merge freeze, whatever is newest there."""
        rows = list(
            self._t("releases").rows_where(
                "channel = ? and frozen = 1", [channel], order_by="id desc", limit=1
            )
        )
        return int(rows[0]["id"]) if rows else None

    # -- merge gate ------------------------------------------------------------------------

    def gate_status(self, repository: str, sha: str) -> dict[str, Any] | None:
        """The merge-gate status golive last set on a commit, if any."""
        rows = list(
            self._t("gate_statuses").rows_where(
                "repository = ? and sha = ?", [repository, sha], limit=1
            )
        )
        return rows[0] if rows else None

    def gate_statuses(self, repository: str) -> dict[str, dict[str, Any]]:
        """sha → the merge-gate status golive last set on it, for one repository."""
        return {
            r["sha"]: r
            for r in self._t("gate_statuses").rows_where("repository = ?", [repository])
        }

    def remember_gate_status(
        self,
        repository: str,
        sha: str,
        pr_number: int,
        state: str,
        description: str,
        release_id: int | None,
        at: datetime,
    ) -> None:
        """Record the merge-gate status golive just set on a commit (GitHub has it now)."""
        self._t("gate_statuses").upsert(
            {
                "repository": repository,
                "sha": sha,
                "pr_number": pr_number,
                "state": state,
                "description": description,
                "release_id": release_id,
                "posted_at": utc_iso(at),
                "verified_at": utc_iso(at),
            },
            pk=("repository", "sha"),
        )

    def first_delivery(self, key: str, at: datetime) -> bool:
        """True the first time a delivery key (GitHub's X-GitHub-Delivery) is seen."""
        with self.transaction():
            cursor = self.db.execute(
                "insert or ignore into seen_events (key, at) values (?, ?)", [key, utc_iso(at)]
            )
            return cursor.rowcount == 1

    def gate_verified(self, repository: str, sha: str, at: datetime) -> None:
        """GitHub was seen to carry the status golive remembers for a commit."""
        self._t("gate_statuses").update((repository, sha), {"verified_at": utc_iso(at)})

    def add_merge_allowance(
        self,
        release_id: int,
        pr_number: int,
        sha: str,
        title: str,
        user: str,
        reason: str,
        at: datetime,
    ) -> None:
        """The commander let one pull request's head through this release's freeze."""
        self._t("merge_allowances").insert(
            {
                "release_id": release_id,
                "pr_number": pr_number,
                "sha": sha,
                "title": self.redactor.text(title),
                "user": user,
                "reason": self.redactor.text(reason),
                "at": utc_iso(at),
            }
        )

    def merge_allowances(self, release_id: int | None = None) -> list[dict[str, Any]]:
        """Pull request heads let through a freeze (of one release, or all), oldest first."""
        where, args = (None, []) if release_id is None else ("release_id = ?", [release_id])
        return list(self._t("merge_allowances").rows_where(where, args, order_by="id"))

    def latest_allowance_id(self) -> int:
        """The id of the newest merge allowance (0 when there is none): it changes the gate."""
        row = self.db.execute("select coalesce(max(id), 0) from merge_allowances").fetchone()
        return int(row[0])

    # -- records ---------------------------------------------------------------------------

    def add_event(
        self,
        release_id: int | None,
        at: datetime,
        type_: str,
        actor: str | None,
        data: Mapping[str, Any],
    ) -> None:
        """Append to the timeline (the table refuses updates and deletes)."""
        self._t("events").insert(
            {
                "release_id": release_id,
                "at": utc_iso(at),
                "type": type_,
                "actor": actor,
                "data": _j(self.redactor.scrub(dict(data))),
            }
        )

    def events(self, release_id: int, type_: str | None = None) -> list[dict[str, Any]]:
        """The timeline of a release (or its events of one type), oldest first."""
        where, args = "release_id = ?", [release_id]
        if type_ is not None:
            where += " and type = ?"
            args.append(type_)  # type: ignore[arg-type]
        return [
            {**r, "data": _unj(r["data"], {})}
            for r in self._t("events").rows_where(where, args, order_by="id")
        ]

    def add_approval(
        self,
        release_id: int,
        step_key: str,
        stage: int,
        user: str,
        outcome: str,
        via: str,
        note: str | None,
        at: datetime,
    ) -> None:
        """Record who approved which stage, how and when."""
        self._t("approvals").insert(
            {
                "release_id": release_id,
                "step_key": step_key,
                "stage": stage,
                "user": user,
                "outcome": outcome,
                "via": via,
                "note": note,
                "at": utc_iso(at),
            }
        )

    def approvals(self, release_id: int) -> list[dict[str, Any]]:
        """Every approval of a release, oldest first."""
        return list(self._t("approvals").rows_where("release_id = ?", [release_id], order_by="id"))

    def add_check_result(
        self,
        release_id: int,
        step_key: str,
        attempt: int,
        result: Mapping[str, Any],
        at: datetime,
    ) -> None:
        """Record one check verdict with its evidence."""
        self._t("check_results").insert(
            {
                "release_id": release_id,
                "step_key": step_key,
                "attempt": attempt,
                "name": result["name"],
                "status": result["status"],
                "summary": self.redactor.text(result["summary"]),
                "evidence": _j(self.redactor.scrub(result.get("evidence", {}))),
                "duration": result.get("duration", 0.0),
                "at": utc_iso(at),
            }
        )

    def check_results(self, release_id: int, step_key: str | None = None) -> list[dict[str, Any]]:
        """Check verdicts of a release (optionally of one step), oldest first."""
        where, args = "release_id = ?", [release_id]
        if step_key is not None:
            where += " and step_key = ?"
            args.append(step_key)  # type: ignore[arg-type]
        return [
            {**r, "evidence": _unj(r["evidence"], {})}
            for r in self._t("check_results").rows_where(where, args, order_by="id")
        ]

    def add_waiver(
        self, release_id: int, name: str, step_key: str, user: str, reason: str, at: datetime
    ) -> None:
        """Record a waiver with who and why."""
        self._t("waivers").insert(
            {
                "release_id": release_id,
                "name": name,
                "step_key": step_key,
                "user": user,
                "reason": reason,
                "at": utc_iso(at),
            }
        )

    def waivers(self, release_id: int) -> list[dict[str, Any]]:
        """Waivers of a release, oldest first."""
        return list(self._t("waivers").rows_where("release_id = ?", [release_id], order_by="id"))

    def add_note(
        self, release_id: int, kind: str, user: str, owner: str | None, text: str, at: datetime
    ) -> int:
        """Record a note or follow-up; returns its id."""
        return _pk(
            self._t("notes")
            .insert(
                {
                    "release_id": release_id,
                    "kind": kind,
                    "user": user,
                    "owner": owner,
                    "text": self.redactor.text(text),
                    "at": utc_iso(at),
                }
            )
            .last_pk
        )

    def notes(self, release_id: int) -> list[dict[str, Any]]:
        """Notes and follow-ups of a release, oldest first."""
        return list(self._t("notes").rows_where("release_id = ?", [release_id], order_by="id"))

    # -- outbox ----------------------------------------------------------------------------

    def enqueue(
        self,
        *,
        release_id: int | None,
        channel: str,
        kind: str,
        text: str,
        blocks: list[dict[str, Any]] | None,
        at: datetime,
        thread_of: int | None = None,
        user: str | None = None,
        step_key: str | None = None,
        update_of: int | None = None,
        file: Mapping[str, Any] | None = None,
    ) -> int:
        """Queue a message for delivery; call inside the transaction of the change causing it."""
        return _pk(
            self._t("outbox")
            .insert(
                {
                    "release_id": release_id,
                    "channel": channel,
                    "kind": kind,
                    "text": self.redactor.text(text),
                    "blocks": _j(self.redactor.scrub(blocks)) if blocks is not None else None,
                    "thread_of": thread_of,
                    "user": user,
                    "step_key": step_key,
                    "update_of": update_of,
                    "file": _j(self.redactor.scrub(dict(file))) if file is not None else None,
                    "status": "pending",
                    "attempts": 0,
                    "created_at": utc_iso(at),
                }
            )
            .last_pk
        )

    @staticmethod
    def _outbox_row(r: Mapping[str, Any]) -> OutboxRow:
        return OutboxRow(
            id=r["id"],
            release_id=r["release_id"],
            channel=r["channel"],
            kind=r["kind"],
            text=r["text"],
            blocks=_unj(r["blocks"], None),
            thread_of=r["thread_of"],
            user=r["user"],
            step_key=r["step_key"],
            update_of=r["update_of"],
            file=_unj(r["file"], None),
            status=r["status"],
            attempts=r["attempts"] or 0,
            next_attempt_at=_when(r["next_attempt_at"]),
            ts=r["ts"],
            error=r["error"],
            created_at=parse_iso(r["created_at"]),
        )

    def pending_messages(
        self,
        limit: int = 100,
        only: frozenset[str] | None = None,
        skip: frozenset[str] = frozenset(),
    ) -> list[OutboxRow]:
        """Undelivered messages in the order they were written (optionally of some kinds)."""
        where, args = _pending_where(only, skip)
        return [
            self._outbox_row(r)
            for r in self._t("outbox").rows_where(where, args, order_by="id", limit=limit)
        ]

    def message(self, message_id: int) -> OutboxRow | None:
        """One outbox row by id."""
        rows = list(self._t("outbox").rows_where("id = ?", [message_id]))
        return self._outbox_row(rows[0]) if rows else None

    def message_by_ts(self, channel: str, ts: str) -> OutboxRow | None:
        """The delivered message with that Slack timestamp in that channel."""
        rows = list(
            self._t("outbox").rows_where(
                "channel = ? and ts = ? and update_of is null", [channel, ts], limit=1
            )
        )
        return self._outbox_row(rows[0]) if rows else None

    def messages(self, release_id: int) -> list[OutboxRow]:
        """Every message of a release, in order."""
        return [
            self._outbox_row(r)
            for r in self._t("outbox").rows_where("release_id = ?", [release_id], order_by="id")
        ]

    def mark_delivered(self, message_id: int, ts: str | None, at: datetime) -> None:
        """A message reached its destination."""
        self._t("outbox").update(
            message_id,
            {"status": "delivered", "ts": ts, "delivered_at": utc_iso(at), "error": None},
        )

    def mark_retry(self, message_id: int, attempts: int, when: datetime, error: str) -> None:
        """A delivery failed for a passing reason; try again at `when`."""
        self._t("outbox").update(
            message_id,
            {"attempts": attempts, "next_attempt_at": utc_iso(when), "error": error[:500]},
        )

    def mark_failed(self, message_id: int, error: str, at: datetime) -> None:
        """A delivery failed for good (for example the channel does not exist)."""
        self._t("outbox").update(
            message_id, {"status": "failed", "error": error[:500], "delivered_at": utc_iso(at)}
        )

    def supersede_updates(self, target: int, keep: int) -> None:
        """Older pending updates of the same message are replaced by a newer one."""
        self.db.execute(
            "update outbox set status = 'superseded' where status = 'pending' and "
            "update_of = ? and id < ?",
            [target, keep],
        )

    # -- step actions ----------------------------------------------------------------------

    def add_action_run(
        self,
        release_id: int,
        step_key: str,
        attempt: int,
        seq: int,
        target: str,
        kind: str,
        token: str,
        at: datetime,
    ) -> int:
        """Record a run golive is about to start (state pending); returns its id."""
        return _pk(
            self._t("action_runs")
            .insert(
                {
                    "release_id": release_id,
                    "step_key": step_key,
                    "attempt": attempt,
                    "seq": seq,
                    "target": target,
                    "kind": kind,
                    "state": "pending",
                    "token": token,
                    "evidence": _j({}),
                    "updated_at": utc_iso(at),
                }
            )
            .last_pk
        )

    def update_action_run(self, row_id: int, at: datetime, **fields: Any) -> None:
        """Move a run on: its state, the provider's run id and link, the outcome."""
        values: dict[str, Any] = {"updated_at": utc_iso(at)}
        for key, value in fields.items():
            if key == "evidence":
                values[key] = _j(self.redactor.scrub(value))
            elif key == "detail" and isinstance(value, str):
                values[key] = self.redactor.text(value)
            elif key in ("started_at", "finished_at") and isinstance(value, datetime):
                values[key] = utc_iso(value)
            else:
                values[key] = value
        self._t("action_runs").update(row_id, values)

    @staticmethod
    def _action_run(r: Mapping[str, Any]) -> ActionRun:
        return ActionRun(
            id=r["id"],
            release_id=r["release_id"],
            step_key=r["step_key"],
            attempt=r["attempt"],
            seq=r["seq"] or 0,
            target=r["target"] or "",
            kind=r["kind"],
            state=r["state"],
            run_id=r["run_id"],
            url=r["url"],
            token=r["token"] or "",
            detail=r["detail"],
            evidence=_unj(r["evidence"], {}),
            started_at=_when(r["started_at"]),
            finished_at=_when(r["finished_at"]),
        )

    def action_runs(
        self, release_id: int, step_key: str | None = None, attempt: int | None = None
    ) -> list[ActionRun]:
        """Action runs of a release (optionally of one step and attempt), in order."""
        where, args = "release_id = ?", [release_id]
        if step_key is not None:
            where += " and step_key = ?"
            args.append(step_key)  # type: ignore[arg-type]
        if attempt is not None:
            where += " and attempt = ?"
            args.append(attempt)
        return [
            self._action_run(r)
            for r in self._t("action_runs").rows_where(where, args, order_by="seq, id")
        ]

    def unfinished_rollbacks(self) -> list[int]:
        """Releases whose confirmed rollback still has runs to start or follow."""
        rows = self.db.execute(
            "select distinct release_id from action_runs where step_key = 'rollback' and "
            "state not in ('succeeded', 'failed', 'skipped') order by release_id"
        ).fetchall()
        return [int(r[0]) for r in rows]

    # -- incoming: the inbox, commands already answered, the heartbeat ---------------------

    def inbox_add(self, key: str, kind: str, payload: Mapping[str, Any], at: datetime) -> bool:
        """Keep an incoming event before it is acknowledged; False when its key was seen."""
        with self.transaction():
            cursor = self.db.execute(
                "insert or ignore into inbox (key, kind, payload, received_at, status) "
                "values (?, ?, ?, ?, 'pending')",
                [key, kind, _j(dict(payload)), utc_iso(at)],
            )
            return cursor.rowcount == 1

    def inbox_pending(self, limit: int = 100) -> list[dict[str, Any]]:
        """Events not yet processed, oldest first."""
        return [
            {**r, "payload": _unj(r["payload"], {})}
            for r in self._t("inbox").rows_where("status = 'pending'", order_by="id", limit=limit)
        ]

    def inbox_entry(self, key: str) -> dict[str, Any] | None:
        """One inbox row by its key."""
        rows = list(self._t("inbox").rows_where("key = ?", [key]))
        return {**rows[0], "payload": _unj(rows[0]["payload"], {})} if rows else None

    def inbox_done(self, entry_id: int, outcome: str | None, at: datetime) -> None:
        """An event was processed (call in the transaction of what it changed)."""
        self._t("inbox").update(
            entry_id, {"status": "done", "outcome": outcome, "done_at": utc_iso(at)}
        )

    def inbox_failed(self, entry_id: int, error: str, at: datetime) -> None:
        """An event cannot be processed (a bug, logged); it is kept for inspection."""
        self._t("inbox").update(
            entry_id, {"status": "failed", "error": error[:500], "done_at": utc_iso(at)}
        )

    def answered(self, key: str, trigger_id: str | None) -> tuple[str, bool] | None:
        """The reply (text, public) of a command already run with that body or trigger id."""
        row = self.db.execute(
            "select reply, public from requests where key = ? or "
            "(? is not null and trigger_id = ?) limit 1",
            [key, trigger_id, trigger_id],
        ).fetchone()
        return (str(row[0]), bool(row[1])) if row else None

    def record_answer(
        self,
        key: str,
        trigger_id: str | None,
        user: str,
        channel: str,
        reply: str,
        public: bool,
        at: datetime,
    ) -> None:
        """Remember a command's reply (in the transaction of what the command changed)."""
        self._t("requests").insert(
            {
                "key": key,
                "trigger_id": trigger_id,
                "user": user,
                "channel": channel,
                "reply": self.redactor.text(reply),
                "public": int(public),
                "received_at": utc_iso(at),
            }
        )

    def heartbeat(self, at: datetime) -> None:
        """Write one tiny row: proof that the database can be written now."""
        with self.transaction():
            self.db.execute(
                "insert or replace into heartbeat (id, at) values (1, ?)", [utc_iso(at)]
            )

    def awaiting_since(self, release_id: int, step_key: str) -> datetime | None:
        """Since when a step has been waiting on its owner in its current stage (None: unknown,
        for steps written before this was recorded)."""
        row = self.db.execute(
            "select awaiting_since from steps where release_id = ? and key = ?",
            [release_id, step_key],
        ).fetchone()
        return _when(row[0]) if row else None

    # -- reminders ---------------------------------------------------------------------------

    def waits(self, release_id: int) -> dict[str, Wait]:
        """step key → its current wait on a person (approval or block), with the reminders and
        snoozes of that wait only."""
        rows = self.db.execute(
            """
            select s.key, s.waiting_since,
              (select max(r.at) from reminders r where r.release_id = s.release_id
                 and r.step_key = s.key and r.since = s.waiting_since and r.kind != 'snooze'),
              (select count(*) from reminders r where r.release_id = s.release_id
                 and r.step_key = s.key and r.since = s.waiting_since and r.kind != 'snooze'),
              (select max(r.until) from reminders r where r.release_id = s.release_id
                 and r.step_key = s.key and r.since = s.waiting_since and r.kind = 'snooze')
            from steps s where s.release_id = ? and s.waiting_since is not null
            """,
            [release_id],
        ).fetchall()
        return {
            key: Wait(key, parse_iso(since), _when(last), int(count or 0), _when(until))
            for key, since, last, count, until in rows
        }

    def add_reminder(
        self,
        release_id: int,
        step_key: str,
        kind: str,
        at: datetime,
        *,
        user: str | None = None,
        until: datetime | None = None,
    ) -> None:
        """Record a reminder, an escalation or a snooze of a step's current wait."""
        row = self.db.execute(
            "select waiting_since from steps where release_id = ? and key = ?",
            [release_id, step_key],
        ).fetchone()
        if row is None or row[0] is None:
            return  # the step does not wait on anyone now: nothing to remind of
        self._t("reminders").insert(
            {
                "release_id": release_id,
                "step_key": step_key,
                "since": row[0],
                "kind": kind,
                "user": user,
                "at": _moment(at),
                "until": _moment(until) if until else None,
            }
        )

    def reminders(self, release_id: int) -> list[dict[str, Any]]:
        """Every reminder, escalation and snooze of a release, oldest first."""
        return list(
            self._t("reminders").rows_where("release_id = ?", [release_id], order_by="id")
        )

    # -- read-only queries for the Slack adapter and the outbox --------------------------------

    def latest_request(
        self, release_id: int, step_key: str, kind: str = "approval"
    ) -> OutboxRow | None:
        """The newest approval request posted for a step (older ones are superseded), or the
        newest message of another `kind` about it (its latest reminder)."""
        return self._newest(release_id, "kind = ? and step_key = ?", [kind, step_key])

    def latest_message(self, release_id: int, kind: str) -> OutboxRow | None:
        """The newest message of a kind (not an edit) queued for a release."""
        return self._newest(release_id, "kind = ? and update_of is null", [kind])

    def latest_step_message(self, release_id: int, step_key: str) -> OutboxRow | None:
        """The newest message that asks a person about a step: its approval request, or the
        message saying why it is blocked (not reminders, not edits)."""
        return self._newest(
            release_id,
            "step_key = ? and kind in ('approval', 'thread') and update_of is null",
            [step_key],
        )

    def _newest(self, release_id: int, where: str, args: list[Any]) -> OutboxRow | None:
        rows = list(
            self._t("outbox").rows_where(
                f"release_id = ? and {where}", [release_id, *args], order_by="id desc", limit=1
            )
        )
        return self._outbox_row(rows[0]) if rows else None

    def has_sent(self, kind: str, channel: str) -> bool:
        """True when a row of this kind was ever queued for this destination (for instance,
        a person opened golive's App Home once)."""
        row = self.db.execute(
            "select 1 from outbox where channel = ? and kind = ? limit 1", [channel, kind]
        ).fetchone()
        return row is not None

    def supersede_pending(self, kind: str, channel: str, keep: int) -> None:
        """Pending rows of a kind for one destination, older than `keep`, are replaced by it
        (an App Home view: only the newest one is worth publishing)."""
        self.db.execute(
            "update outbox set status = 'superseded' where status = 'pending' and kind = ? "
            "and channel = ? and id < ?",
            [kind, channel, keep],
        )

    def pending_count(
        self, only: frozenset[str] | None = None, skip: frozenset[str] = frozenset()
    ) -> int:
        """How many messages (optionally of some kinds) wait for delivery."""
        where, args = _pending_where(only, skip)
        row = self.db.execute(f"select count(*) from outbox where {where}", args).fetchone()
        return int(row[0])
