"""Releases and their steps: written as the runbook moves, read back as typed records; their
monitoring windows and the waits of their steps on people."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from bot.domain.clock import parse_iso, utc_iso
from bot.domain.config import Shortened
from bot.domain.model import Release, ReleaseStatus, Step, StepStatus
from bot.domain.records import MonitoringWindow, ReleaseRecord, ReleaseRow, Wait
from bot.domain.serial import dump
from bot.store.core import StoreBase, as_json, from_json, key_of, moment, time_or_none

# The JSON columns of steps, releases and their records, with what an empty one reads as.
STEP_JSON: Mapping[str, Any] = {"stages": [], "services": [], "outcomes": [], "failing": []}
RELEASE_JSON: Mapping[str, Any] = {"services": [], "waivers": []}
RECORD_JSON: Mapping[str, Any] = {"baseline": None, "shortened": None}


def _owner_changed(before: Release, after: Release, step: Step) -> bool:
    return before.roles.user(step.owner) != after.roles.user(step.owner)


class ReleaseStore(StoreBase):
    """Releases, steps, monitoring windows and waits."""

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
            shortened=as_json(dump(shortened)) if shortened else None,
        )
        if release.frozen:  # a freeze taken over from an earlier release holds from the start
            row["frozen_at"] = utc_iso(created_at)
        row.pop("id")
        release_id = key_of(self._t("releases").insert(row).last_pk)
        self._records.pop(release_id, None)
        self._t("steps").insert_all(
            [
                {
                    **self._step_row(release_id, seq, step),
                    "awaiting_since": utc_iso(created_at)
                    if step.status is StepStatus.AWAITING
                    else None,
                    "waiting_since": moment(created_at) if step.waits_on_people else None,
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
            "services": as_json(list(release.services)),
            "commander": release.roles.commander,
            "on_call": release.roles.on_call,
            "backend": release.roles.backend,
            "frontend": release.roles.frontend,
            "waivers": as_json(sorted(release.waivers)),
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
            "stages": as_json([dump(s) for s in step.stages]),
            "services": as_json(list(step.services)),
            "status": step.status.value,
            "stage": step.stage,
            "outcomes": as_json([o.value for o in step.outcomes]),
            "attempt": step.attempt,
            "deadline": utc_iso(step.deadline) if step.deadline else None,
            "failing": as_json(list(step.failing)),
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
                    [moment(now), after.id, step.key],
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
                changes["waiting_since"] = moment(now)
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
        values = {k: as_json(v) if k == "baseline" else v for k, v in fields.items()}
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
        steps = self._rows(
            Step, "steps", "release_id = ?", [release_id], order_by="seq", decode=STEP_JSON
        )
        roles = {role: row[role] for role in ("commander", "on_call", "backend", "frontend")}
        release = {**row, **self._decoded(row, RELEASE_JSON), "roles": roles, "steps": steps}
        return self._row(
            ReleaseRecord, {**row, **self._decoded(row, RECORD_JSON), "release": release}
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

    def history_rows(self, limit: int = 20) -> list[ReleaseRow]:
        """The newest releases' own rows (without their steps), newest first."""
        return self._rows(ReleaseRow, "releases", order_by="id desc", limit=limit)

    def last_completed_versions(self, before: int | None = None) -> dict[str, str]:
        """service → version of the newest completed release that changed it."""
        where = "status = 'completed'" + (" and id < ?" if before is not None else "")
        args = [before] if before is not None else []
        found: dict[str, str] = {}
        for row in self._t("releases").rows_where(where, args, order_by="id desc"):
            for service in from_json(row["services"], []):
                found.setdefault(service, row["version"])
        return found

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

    def monitoring_windows(self) -> list[MonitoringWindow]:
        """The open heightened (or post-rollback) monitoring windows, oldest release first."""
        return self._windows("monitor_until is not null and coalesce(monitor_closed, 0) = 0", [])

    def monitoring_window(self, release_id: int) -> MonitoringWindow | None:
        """A release's monitoring window while one is set (None before, and once closed)."""
        found = self._windows("id = ? and monitor_until is not null", [release_id])
        return found[0] if found else None

    def _windows(self, where: str, args: list[Any]) -> list[MonitoringWindow]:
        rows = self.db.query(
            "select id as release_id, monitor_period as period, monitor_until as until "
            f"from releases where {where} order by id",
            args,
        )
        return [self._row(MonitoringWindow, r) for r in rows]

    def awaiting_since(self, release_id: int, step_key: str) -> datetime | None:
        """Since when a step has been waiting on its owner in its current stage (None: unknown,
        for steps written before this was recorded)."""
        row = self.db.execute(
            "select awaiting_since from steps where release_id = ? and key = ?",
            [release_id, step_key],
        ).fetchone()
        return time_or_none(row[0]) if row else None

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
            key: Wait(
                key, parse_iso(since), time_or_none(last), int(count or 0), time_or_none(until)
            )
            for key, since, last, count, until in rows
        }
