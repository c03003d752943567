"""What the store hands out: frozen typed rows, JSON decoded, times as UTC datetimes."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlite_utils import Database

from bot.domain.model import (
    Phase,
    Release,
    ReleaseStatus,
    Role,
    Roles,
    Stage,
    StageKind,
    Step,
    StepStatus,
)
from bot.domain.records import (
    Alert,
    Approval,
    CheckRow,
    GateStatus,
    InboxEntry,
    MergeAllowance,
    MonitoringWindow,
    Note,
    ReleaseRow,
    Reminder,
    Sample,
    TimelineEvent,
    Waiver,
)
from bot.store import Store, migrations

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def _release() -> Release:
    stages = (Stage(StageKind.APPROVE, Role.BACKEND, "ok"),)
    step = Step("s", Phase.DEPLOYMENT, "S", stages, status=StepStatus.AWAITING)
    return Release(0, "C1", "v1.0.0", ReleaseStatus.ACTIVE, Roles("U1", "U2", "U3", "U4"), (step,))


def test_every_record_comes_back_typed_with_its_json_decoded(store: Store) -> None:
    """Each kind of row is its frozen dataclass: JSON columns as data, times as UTC datetimes."""
    rid = store.insert_release(_release(), created_at=NOW, created_by="U1", activate_at=None)
    later = NOW + timedelta(minutes=1)
    with store.transaction():
        store.add_event(rid, NOW, "start", "U1", {"roles": {"backend": "U3"}})
        store.add_approval(rid, "s", 0, "U3", "approved", "button", None, NOW)
        evidence = {"target": "2.3.1"}
        result = {"name": "c", "status": "pass", "summary": "ok", "evidence": evidence}
        store.add_check_result(rid, "s", 1, result, NOW)
        store.add_waiver(rid, "c", "s", "U1", "flaky", NOW)
        store.add_note(rid, "followup", "U1", "U3", "tidy up", NOW)
        store.add_reminder(rid, "s", "reminder", later, user="U3")
        verdicts = {"errors": {"status": "pass"}}
        store.add_sample(rid, "soak", NOW, {"requests": 10.0, "ratio": 0.0}, verdicts)
        store.save_alert_state(rid, "errors", {"version": 2, "release": "v1.0.0"}, NOW)
        store.add_alert(rid, "errors", "open", "5xx up", "golive/v1.0.0/errors", NOW)
        store.remember_gate_status("acme/app", "a" * 40, 7, "failure", "frozen", rid, NOW)
        store.add_merge_allowance(rid, 7, "a" * 40, "Fix", "U1", "hotfix", NOW)
        store.set_monitoring(rid, "heightened", later)
        store.set_release_fields(rid, frozen=1, frozen_at="2026-11-27T12:00:00+00:00")
    store.inbox_add("event:1", "reaction", {"user": "U3"}, NOW)

    (event,) = store.events(rid)
    assert event == TimelineEvent(event.id, rid, NOW, "start", "U1", {"roles": {"backend": "U3"}})
    assert store.approvals(rid) == [Approval(1, rid, "s", 0, "U3", "approved", "button", None, NOW)]
    assert store.check_results(rid) == [
        CheckRow(1, rid, "s", 1, "c", "pass", "ok", {"target": "2.3.1"}, 0.0, NOW)
    ]
    assert store.waivers(rid) == [Waiver(1, rid, "c", "s", "U1", "flaky", NOW)]
    assert store.notes(rid) == [Note(1, rid, "followup", "U1", "U3", "tidy up", NOW)]
    (reminder,) = store.reminders(rid)
    assert reminder == Reminder(1, rid, "s", NOW, "reminder", "U3", later, None)
    assert store.samples(rid) == [
        Sample(1, rid, "soak", NOW, 10.0, None, 0.0, None, {"errors": {"status": "pass"}})
    ]
    state = store.alert_state(rid, "errors")
    assert state is not None and state.state == {"version": 2, "release": "v1.0.0"}
    assert store.alert_states(rid) == {"errors": state}
    assert store.alerts(rid) == [
        Alert(1, rid, "errors", "open", "5xx up", "golive/v1.0.0/errors", NOW)
    ]
    gate = GateStatus("acme/app", "a" * 40, 7, "failure", "frozen", rid, NOW, NOW)
    assert store.gate_status("acme/app", "a" * 40) == gate
    assert store.gate_statuses("acme/app") == {"a" * 40: gate}
    assert store.merge_allowances(rid) == [
        MergeAllowance(1, rid, 7, "a" * 40, "Fix", "U1", "hotfix", NOW)
    ]
    window = MonitoringWindow(rid, "heightened", later)
    assert store.monitoring_windows() == [window] and store.monitoring_window(rid) == window
    holder = ReleaseRow(rid, "C1", "v1.0.0", ReleaseStatus.ACTIVE, "U1", NOW, "U1", None, NOW)
    assert store.frozen_releases() == [holder] and store.history_rows() == [holder]
    (entry,) = store.inbox_pending()
    assert entry == InboxEntry(
        1, "event:1", "reaction", {"user": "U3"}, NOW, "pending", None, None, None
    )
    assert all(t.tzinfo is UTC for t in (event.at, reminder.since, gate.posted_at, window.until))
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.type = "forged"  # type: ignore[misc]


def test_a_closed_window_is_gone(store: Store) -> None:
    """Once monitoring is closed the release has no window, and none is listed."""
    rid = store.insert_release(_release(), created_at=NOW, created_by="U1", activate_at=None)
    with store.transaction():
        store.set_monitoring(rid, "rollback", NOW + timedelta(hours=1))
        store.set_monitoring(rid, None, None, closed=True)
    assert store.monitoring_window(rid) is None and store.monitoring_windows() == []


def test_a_first_version_database_reads_as_typed_rows(tmp_path: Path, data_dir: Path) -> None:
    """Rows written by the first schema (times with offsets, JSON text) read as typed rows."""
    path = tmp_path / "golive.db"
    old = Database(path)
    migrations.apply(old, stop_before="m002_freeze_marks")
    old.conn.executescript((data_dir / "m001-release-in-progress.sql").read_text())
    old.conn.commit()
    old.close()
    store = Store(path)
    written = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    record = store.load(1)
    assert record.created_at == written and record.release.version == "v2.4.0"
    assert all(isinstance(s, Stage) for step in record.release.steps for s in step.stages)
    approvals = store.approvals(1)
    assert [a.step_key for a in approvals][:2] == ["ci", "incidents"]
    assert all(a.at == written for a in approvals)
    start = store.events(1)[0]
    assert start.type == "start" and start.data["roles"]["commander"] == "U0COMMAND"
    (holder,) = store.frozen_releases()
    assert holder.status is ReleaseStatus.ACTIVE and holder.frozen_at == written
    store.close()
