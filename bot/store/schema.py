"""The schema: every migration, in order. Never change what an applied one does; add the
next one."""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

migrations = Migrations("golive")


@migrations()
def m001_initial(db: Database) -> None:
    """Releases, steps, approvals, check results, waivers, notes, events, outbox, seen events."""
    db.table("releases").create(
        {
            "id": int,
            "channel": str,
            "version": str,
            "status": str,
            "major": int,
            "services": str,
            "commander": str,
            "on_call": str,
            "backend": str,
            "frontend": str,
            "waivers": str,
            "frozen": int,
            "frozen_at": str,
            "kickoff_at": str,
            "activate_at": str,
            "reason": str,
            "created_at": str,
            "created_by": str,
            "ended_at": str,
            "card_message": int,
            "baseline": str,
        },
        pk="id",
        not_null={"channel", "version", "status", "commander", "created_at"},
    )
    db.table("releases").create_index(["channel", "id"])
    db.table("steps").create(
        {
            "id": int,
            "release_id": int,
            "seq": int,
            "key": str,
            "phase": str,
            "title": str,
            "stages": str,
            "services": str,
            "status": str,
            "stage": int,
            "outcomes": str,
            "attempt": int,
            "deadline": str,
            "failing": str,
            "variant": str,
            "opened_at": str,
            "done_at": str,
        },
        pk="id",
        foreign_keys=[("release_id", "releases", "id")],
    )
    db.table("steps").create_index(["release_id", "key"], unique=True)
    db.table("approvals").create(
        {
            "id": int,
            "release_id": int,
            "step_key": str,
            "stage": int,
            "user": str,
            "outcome": str,
            "via": str,
            "note": str,
            "at": str,
        },
        pk="id",
        foreign_keys=[("release_id", "releases", "id")],
    )
    db.table("check_results").create(
        {
            "id": int,
            "release_id": int,
            "step_key": str,
            "attempt": int,
            "name": str,
            "status": str,
            "summary": str,
            "evidence": str,
            "duration": float,
            "at": str,
        },
        pk="id",
        foreign_keys=[("release_id", "releases", "id")],
    )
    db.table("check_results").create_index(["release_id", "step_key"])
    db.table("waivers").create(
        {
            "id": int,
            "release_id": int,
            "name": str,
            "step_key": str,
            "user": str,
            "reason": str,
            "at": str,
        },
        pk="id",
        foreign_keys=[("release_id", "releases", "id")],
    )
    db.table("notes").create(
        {
            "id": int,
            "release_id": int,
            "kind": str,
            "user": str,
            "owner": str,
            "text": str,
            "at": str,
        },
        pk="id",
        foreign_keys=[("release_id", "releases", "id")],
    )
    db.table("events").create(
        {"id": int, "release_id": int, "at": str, "type": str, "actor": str, "data": str},
        pk="id",
    )
    db.table("events").create_index(["release_id", "id"])
    db.executescript(
        """
        CREATE TRIGGER events_no_update BEFORE UPDATE ON events
        BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
        CREATE TRIGGER events_no_delete BEFORE DELETE ON events
        BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
        """
    )
    db.table("outbox").create(
        {
            "id": int,
            "release_id": int,
            "channel": str,
            "thread_of": int,
            "kind": str,
            "text": str,
            "blocks": str,
            "user": str,
            "step_key": str,
            "update_of": int,
            "file": str,
            "status": str,
            "attempts": int,
            "next_attempt_at": str,
            "ts": str,
            "error": str,
            "created_at": str,
            "delivered_at": str,
        },
        pk="id",
        defaults={"status": "pending", "attempts": 0},
    )
    db.table("outbox").create_index(["status", "id"])
    db.table("outbox").create_index(["channel", "ts"])
    db.table("seen_events").create({"key": str, "at": str}, pk="key")


@migrations()
def m002_freeze_marks(db: Database) -> None:
    """The commits golive marked with the merge-freeze status, so the freeze can be lifted."""
    db.table("freeze_marks").create(
        {
            "id": int,
            "release_id": int,
            "repository": str,
            "sha": str,
            "pr_number": int,
            "state": str,
            "at": str,
        },
        pk="id",
    )
    db.table("freeze_marks").create_index(["release_id", "sha"], unique=True)


@migrations()
def m003_monitoring(db: Database) -> None:
    """Metric samples, alert tracker state, the alert history and the monitoring window."""
    db.table("samples").create(
        {
            "id": int,
            "release_id": int,
            "period": str,
            "at": str,
            "requests": float,
            "errors": float,
            "ratio": float,
            "p95": float,
            "verdicts": str,
        },
        pk="id",
    )
    db.table("samples").create_index(["release_id", "id"])
    db.table("alert_states").create(
        {"release_id": int, "signal": str, "state": str, "updated_at": str},
        pk=("release_id", "signal"),
    )
    db.table("alerts").create(
        {
            "id": int,
            "release_id": int,
            "signal": str,
            "action": str,
            "summary": str,
            "dedup_key": str,
            "at": str,
        },
        pk="id",
    )
    db.table("alerts").create_index(["release_id", "id"])
    releases = db.table("releases")
    releases.add_column("monitor_until", str)
    releases.add_column("monitor_period", str)
    releases.add_column("monitor_closed", int)


@migrations()
def m004_inbox(db: Database) -> None:
    """The inbox of Slack events and clicks, the replies of commands already run, the heartbeat
    /healthz writes, and since when each step has been waiting on its owner."""
    db.table("inbox").create(
        {
            "id": int,
            "key": str,
            "kind": str,
            "payload": str,
            "received_at": str,
            "status": str,
            "outcome": str,
            "error": str,
            "done_at": str,
        },
        pk="id",
        not_null={"key", "kind", "payload", "received_at", "status"},
        defaults={"status": "pending"},
    )
    db.table("inbox").create_index(["key"], unique=True)
    db.table("inbox").create_index(["status", "id"])
    db.table("requests").create(
        {
            "key": str,
            "trigger_id": str,
            "user": str,
            "channel": str,
            "reply": str,
            "public": int,
            "received_at": str,
        },
        pk="key",
    )
    db.table("requests").create_index(["trigger_id"], unique=True)
    db.table("heartbeat").create({"id": int, "at": str}, pk="id")
    db.table("steps").add_column("awaiting_since", str)


@migrations()
def m005_merge_gate(db: Database) -> None:
    """The merge gate remembers the status it set on each commit (whatever the release), and the
    pull requests the commander let through a freeze."""
    db.table("gate_statuses").create(
        {
            "repository": str,
            "sha": str,
            "pr_number": int,
            "state": str,
            "description": str,
            "release_id": int,
            "posted_at": str,
            "verified_at": str,
        },
        pk=("repository", "sha"),
    )
    # What the freeze marks say golive last set (their description was not kept: set again once).
    db.execute(
        "insert or replace into gate_statuses (repository, sha, pr_number, state, release_id, "
        "posted_at) select repository, sha, pr_number, state, release_id, at from freeze_marks "
        "order by at, id"
    )
    db.table("merge_allowances").create(
        {
            "id": int,
            "release_id": int,
            "pr_number": int,
            "sha": str,
            "title": str,
            "user": str,
            "reason": str,
            "at": str,
        },
        pk="id",
        foreign_keys=[("release_id", "releases", "id")],
    )
    db.table("merge_allowances").create_index(["release_id", "pr_number", "sha"])


@migrations()
def m006_runbook_record(db: Database) -> None:
    """What the runbook's record needs beyond the steps: the floors a release ran below (and
    why), and when its monitoring ended and the release closed."""
    releases = db.table("releases")
    releases.add_column("shortened", str)
    releases.add_column("closed_at", str)


@migrations()
def m007_actions(db: Database) -> None:
    """The runs of step actions (deploys golive starts and follows) and a proposed rollback."""
    db.table("action_runs").create(
        {
            "id": int,
            "release_id": int,
            "step_key": str,
            "attempt": int,
            "seq": int,
            "target": str,
            "kind": str,
            "state": str,
            "run_id": str,
            "url": str,
            "token": str,
            "detail": str,
            "evidence": str,
            "started_at": str,
            "updated_at": str,
            "finished_at": str,
        },
        pk="id",
        foreign_keys=[("release_id", "releases", "id")],
    )
    db.table("action_runs").create_index(
        ["release_id", "step_key", "attempt", "target"], unique=True
    )
    db.table("releases").add_column("proposed_rollback", str)


@migrations()
def m008_reminders(db: Database) -> None:
    """Since when each step has waited on a person (approval or block), why a person stopped
    it, and the reminders and snoozes of each wait."""
    steps = db.table("steps")
    steps.add_column("waiting_since", str)
    steps.add_column("reason", str)
    db.execute(
        "update steps set waiting_since = coalesce(awaiting_since, opened_at) "
        "where status in ('awaiting', 'blocked')"
    )
    db.table("reminders").create(
        {
            "id": int,
            "release_id": int,
            "step_key": str,
            "since": str,
            "kind": str,
            "user": str,
            "at": str,
            "until": str,
        },
        pk="id",
        not_null={"release_id", "step_key", "since", "kind", "at"},
    )
    db.table("reminders").create_index(["release_id", "step_key", "since"])
