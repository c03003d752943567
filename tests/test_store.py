"""The SQLite store: versioned schema, WAL, an append-only timeline, dedup of incoming events."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlite_utils import Database

from bot.domain.clock import FakeClock
from bot.domain.model import StepStatus
from bot.store import Store, migrations
from tests.conftest import BACKEND, Harness, make_config

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def test_schema_is_versioned_and_reapplying_is_a_no_op(tmp_path: Path) -> None:
    """Every migration is recorded once; opening the file again applies nothing twice."""
    path = tmp_path / "golive.db"
    names = [m.name for m in migrations.pending(Database(memory=True))]
    first = Store(path)
    assert first.schema_version() == names and names[0] == "m001_initial"
    first.close()
    again = Store(path)
    assert again.schema_version() == names
    assert migrations.pending(again.db) == []


def test_file_databases_use_wal(tmp_path: Path) -> None:
    """Readers never block the writer."""
    store = Store(tmp_path / "golive.db")
    mode = store.db.execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_event_log_is_append_only(store: Store) -> None:
    """The timeline refuses updates and deletes."""
    store.add_event(None, NOW, "start", "U1", {"version": "v1.0.0"})
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store.db.execute("update events set type = 'forged'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store.db.execute("delete from events")
    assert [e["type"] for e in store.db["events"].rows] == ["start"]


def test_transaction_rolls_back_state_and_messages_together(store: Store) -> None:
    """A failure inside a transaction leaves neither the change nor its message behind."""
    with pytest.raises(RuntimeError), store.transaction():
        store.add_event(None, NOW, "x", None, {})
        store.enqueue(release_id=None, channel="C1", kind="channel", text="hi", blocks=None, at=NOW)
        raise RuntimeError("crash between change and commit")
    assert store.db["events"].count == 0
    assert store.db["outbox"].count == 0


def test_newer_update_supersedes_older_pending_ones(store: Store) -> None:
    """Only the newest pending edit of a message is delivered."""
    card = store.enqueue(release_id=None, channel="C1", kind="card", text="v0", blocks=None, at=NOW)
    first = store.enqueue(
        release_id=None, channel="C1", kind="update", text="v1", blocks=None, at=NOW, update_of=card
    )
    second = store.enqueue(
        release_id=None, channel="C1", kind="update", text="v2", blocks=None, at=NOW, update_of=card
    )
    store.supersede_updates(card, second)
    pending = [(m.id, m.text) for m in store.pending_messages()]
    assert pending == [(card, "v0"), (second, "v2")]
    assert (store.message(first) or pytest.fail()).status == "superseded"


def test_cached_releases_follow_writes_and_rollbacks(store: Store) -> None:
    """A loaded release reflects every committed write and none that was rolled back."""
    from dataclasses import replace

    from bot.domain.model import Phase, Release, ReleaseStatus, Role, Roles, Stage, StageKind, Step

    step = Step("s", Phase.DEPLOYMENT, "S", (Stage(StageKind.APPROVE, Role.BACKEND, "ok"),))
    release = Release(
        0, "C1", "v1.0.0", ReleaseStatus.SCHEDULED, Roles("U1", "U2", "U3", "U4"), (step,)
    )
    rid = store.insert_release(release, created_at=NOW, created_by="U1", activate_at=NOW)
    before = store.load(rid).release
    active = replace(before, status=ReleaseStatus.ACTIVE)
    store.save_release(before, active, NOW)
    assert store.load(rid).release.status is ReleaseStatus.ACTIVE
    with pytest.raises(RuntimeError), store.transaction():
        store.save_release(active, replace(active, status=ReleaseStatus.ABORTED), NOW)
        assert store.load(rid).release.status is ReleaseStatus.ABORTED
        raise RuntimeError("crash before commit")
    assert store.load(rid).release.status is ReleaseStatus.ACTIVE
    store.set_release_fields(rid, card_message=7)
    assert store.load(rid).card_message == 7


async def test_a_first_version_database_upgrades_and_its_release_carries_on(
    tmp_path: Path, data_dir: Path
) -> None:
    """A database left by the first schema with a release in progress opens with today's code,
    migrates, and the release carries on where it stood."""
    path = tmp_path / "golive.db"
    old = Database(path)
    migrations.apply(old, stop_before="m002_freeze_marks")
    assert [m.name for m in migrations.applied(old)] == ["m001_initial"]
    old.conn.executescript((data_dir / "m001-release-in-progress.sql").read_text())
    old.conn.commit()
    old.close()

    h = Harness(make_config(), FakeClock(), str(path))
    try:
        assert h.store.schema_version() == [m.name for m in migrations.applied(h.store.db)]
        assert migrations.pending(h.store.db) == []
        release = h.release()
        assert release.version == "v2.4.0" and release.frozen
        assert release.step("backup").status is StepStatus.AWAITING
        assert "Approved Backup / restore point" in await h.reply(BACKEND, "/golive approve")
        await h.settle()
        assert h.step("migrations").status is StepStatus.AWAITING
        assert h.release().step("freeze").status is StepStatus.DONE
    finally:
        await h.runtime.service.close()


def test_freeze_marks_of_an_older_schema_become_gate_statuses(tmp_path: Path) -> None:
    """Upgrading keeps what the merge gate last set on each commit: the newest freeze mark of
    a commit becomes its remembered gate status, so the sweep knows what GitHub shows."""
    path = tmp_path / "golive.db"
    old = Database(path)
    migrations.apply(old, stop_before="m005_merge_gate")
    marks = [
        (1, "a" * 40, 101, "failure", "2026-11-27T11:00:00+00:00"),
        (2, "a" * 40, 101, "success", "2026-11-27T12:00:00+00:00"),
        (2, "b" * 40, 102, "failure", "2026-11-27T12:00:00+00:00"),
    ]
    for release_id, sha, number, state, at in marks:
        old["freeze_marks"].insert(
            {
                "release_id": release_id,
                "repository": "acme/platform",
                "sha": sha,
                "pr_number": number,
                "state": state,
                "at": at,
            }
        )
    old.close()
    store = Store(path)
    remembered = store.gate_statuses("acme/platform")
    assert {sha[:1]: (r.state, r.release_id) for sha, r in remembered.items()} == {
        "a": ("success", 2),
        "b": ("failure", 2),
    }
    assert remembered["a" * 40].description is None  # unknown: the sweep sets it once more
    store.close()


def _one_step_release() -> Any:
    from bot.domain.model import Phase, Release, ReleaseStatus, Role, Roles, Stage, StageKind, Step

    step = Step("s", Phase.DEPLOYMENT, "S", (Stage(StageKind.APPROVE, Role.BACKEND, "ok"),))
    return Release(0, "C1", "v1.0.0", ReleaseStatus.ACTIVE, Roles("U1", "U2", "U3", "U4"), (step,))


def test_an_older_database_upgrades_to_the_inbox_schema(tmp_path: Path) -> None:
    """A database written before the inbox gains it on open; old steps have no waiting time."""
    path = tmp_path / "golive.db"
    old = Database(path)
    migrations.apply(old, stop_before="m004_inbox")
    assert "inbox" not in old.table_names()
    old.close()
    store = Store(path)
    assert {"inbox", "requests", "heartbeat"} <= set(store.db.table_names())
    rid = store.insert_release(
        _one_step_release(), created_at=NOW, created_by="U1", activate_at=NOW
    )
    store.db.execute("update steps set awaiting_since = null")
    assert store.awaiting_since(rid, "s") is None
    assert "m004_inbox" in store.schema_version()


def test_the_inbox_keeps_an_event_once(store: Store) -> None:
    """An event's key is kept once; a repeat is recognised, and done is done."""
    assert store.inbox_add("event:Ev1", "reaction", {"user": "U1"}, NOW) is True
    assert store.inbox_add("event:Ev1", "reaction", {"user": "U1"}, NOW) is False
    (entry,) = store.inbox_pending()
    assert entry.payload == {"user": "U1"} and entry.status == "pending"
    with store.transaction():
        store.inbox_done(entry.id, "approved", NOW)
    assert store.inbox_pending() == []
    done = store.inbox_entry("event:Ev1")
    assert done is not None and done.status == "done"


def test_a_refused_write_rolls_back_and_announces_nothing(tmp_path: Path) -> None:
    """A write the database refuses inside a transaction raises, rolls back everything before
    it, and the after-commit work does not run; a committed transaction runs it once."""
    store = Store(tmp_path / "golive.db")
    told: list[str] = []
    with pytest.raises(sqlite3.OperationalError), store.transaction():
        store.add_event(None, NOW, "x", None, {})
        store.after_commit(lambda: told.append("changed"))
        store.db.execute("PRAGMA query_only = 1")  # as a read-only file would
        store.db.execute("insert into heartbeat (id, at) values (2, 'x')")
    store.db.execute("PRAGMA query_only = 0")
    assert told == [] and store.db["events"].count == 0
    with store.transaction():
        store.after_commit(lambda: told.append("changed"))
        assert told == []
    assert told == ["changed"]


async def test_threaded_writes_happen_on_the_writer_and_reads_beside_it(tmp_path: Path) -> None:
    """With a writer thread, a write on the loop's thread is refused loudly; the loop reads
    what the writer committed, never a copy from before it."""
    store = Store(tmp_path / "golive.db", threaded=True)
    with pytest.raises(RuntimeError, match="writer"), store.transaction():
        pass
    rid = await store.writes.run(
        lambda: store.insert_release(
            _one_step_release(), created_at=NOW, created_by="U1", activate_at=NOW
        )
    )
    assert store.load(rid).release.version == "v1.0.0"
    await store.writes.run(lambda: store.set_release_fields(rid, card_message=7))
    assert store.load(rid).card_message == 7  # the loop's cached copy follows the commit
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        store.db.execute("insert into heartbeat (id, at) values (1, 'x')")
    store.close()


def test_a_release_from_before_the_runbook_record_reads_as_unshortened_and_open(
    tmp_path: Path,
) -> None:
    """A database written before releases kept their shortened floors and closing time opens
    with today's code: its releases read as not shortened and not closed, and can close."""
    path = tmp_path / "golive.db"
    old = Database(path)
    migrations.apply(old, stop_before="m006_runbook_record")
    assert "shortened" not in old["releases"].columns_dict
    old["releases"].insert(
        {
            "id": 7,
            "channel": "C1",
            "version": "v1.0.0",
            "status": "completed",
            "commander": "U1",
            "created_at": "2026-11-20T09:30:00+00:00",
            "created_by": "U1",
            "services": "[]",
            "waivers": "[]",
            "major": 0,
            "frozen": 0,
            "on_call": "U2",
            "backend": "U3",
            "frontend": "U4",
        }
    )
    old.close()
    rid = 7
    store = Store(path)
    assert "m006_runbook_record" in store.schema_version()
    record = store.load(rid)
    assert record.shortened is None and record.closed_at is None
    with store.transaction():
        store.mark_closed(rid, NOW)
    assert store.load(rid).closed_at == NOW


def test_an_older_database_learns_since_when_its_steps_wait(tmp_path: Path) -> None:
    """A database written before reminders: on open, a step already waiting on its owner counts
    as waiting since it began to wait, so its reminders come on time rather than never."""
    path = tmp_path / "golive.db"
    old = Database(path)
    migrations.apply(old, stop_before="m008_reminders")
    old["releases"].insert(
        {
            "id": 1,
            "channel": "C1",
            "version": "v1.0.0",
            "status": "active",
            "commander": "U1",
            "created_at": "2026-11-27T11:00:00+00:00",
        }
    )
    old["steps"].insert_all(
        [
            {
                "release_id": 1,
                "seq": 0,
                "key": "a",
                "status": "awaiting",
                "awaiting_since": "2026-11-27T11:30:00+00:00",
            },
            {
                "release_id": 1,
                "seq": 1,
                "key": "b",
                "status": "blocked",
                "opened_at": "2026-11-27T11:40:00+00:00",
            },
            {"release_id": 1, "seq": 2, "key": "c", "status": "done"},
        ]
    )
    old.close()
    store = Store(path)
    waits = store.waits(1)
    assert {k: w.since.isoformat() for k, w in waits.items()} == {
        "a": "2026-11-27T11:30:00+00:00",
        "b": "2026-11-27T11:40:00+00:00",
    }
    assert all(w.reminded_at is None and w.reminders == 0 for w in waits.values())
    store.close()
