"""What happened to a release, for its record: events, approvals, check results, waivers,
notes, and the reminders of steps waiting on people."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from bot.domain.clock import utc_iso
from bot.domain.records import Approval, CheckRow, Note, Reminder, TimelineEvent, Waiver
from bot.store.core import StoreBase, as_json, key_of, moment


class TimelineStore(StoreBase):
    """The append-only record of a release."""

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
                "data": as_json(self.redactor.scrub(dict(data))),
            }
        )

    def events(self, release_id: int, type_: str | None = None) -> list[TimelineEvent]:
        """The timeline of a release (or its events of one type), oldest first."""
        where, args = "release_id = ?", [release_id]
        if type_ is not None:
            where += " and type = ?"
            args.append(type_)  # type: ignore[arg-type]
        return self._rows(TimelineEvent, "events", where, args, decode={"data": {}})

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

    def approvals(self, release_id: int) -> list[Approval]:
        """Every approval of a release, oldest first."""
        return self._rows(Approval, "approvals", "release_id = ?", [release_id])

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
                "evidence": as_json(self.redactor.scrub(result.get("evidence", {}))),
                "duration": result.get("duration", 0.0),
                "at": utc_iso(at),
            }
        )

    def check_results(self, release_id: int, step_key: str | None = None) -> list[CheckRow]:
        """Check verdicts of a release (optionally of one step), oldest first."""
        where, args = "release_id = ?", [release_id]
        if step_key is not None:
            where += " and step_key = ?"
            args.append(step_key)  # type: ignore[arg-type]
        return self._rows(CheckRow, "check_results", where, args, decode={"evidence": {}})

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

    def waivers(self, release_id: int) -> list[Waiver]:
        """Waivers of a release, oldest first."""
        return self._rows(Waiver, "waivers", "release_id = ?", [release_id])

    def add_note(
        self, release_id: int, kind: str, user: str, owner: str | None, text: str, at: datetime
    ) -> int:
        """Record a note or follow-up; returns its id."""
        return key_of(
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

    def notes(self, release_id: int) -> list[Note]:
        """Notes and follow-ups of a release, oldest first."""
        return self._rows(Note, "notes", "release_id = ?", [release_id])

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
                "at": moment(at),
                "until": moment(until) if until else None,
            }
        )

    def reminders(self, release_id: int) -> list[Reminder]:
        """Every reminder, escalation and snooze of a release, oldest first."""
        return self._rows(Reminder, "reminders", "release_id = ?", [release_id])
