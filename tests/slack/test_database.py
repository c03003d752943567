"""The served app when its database is locked by another process or cannot be written at all."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from bot.domain.model import StepStatus
from bot.render.messages import render_database_busy
from tests.conftest import CHANNEL, COMMANDER, ON_CALL
from tests.slack.conftest import SlackHarness, event_body, reaction_event


@contextmanager
def write_lock(path: str) -> Iterator[sqlite3.Connection]:
    """Another connection holding SQLite's write lock (as a backup or a `sqlite3` shell can)."""
    other = sqlite3.connect(path, timeout=0)
    other.execute("BEGIN IMMEDIATE")
    try:
        yield other
    finally:
        other.rollback()
        other.close()


async def _started(h: SlackHarness) -> None:
    await h.command(COMMANDER, "start v2.4.0")
    await h.settle()


async def _readonly(h: SlackHarness, on: bool) -> None:
    """Make the served app's writing connection refuse every write (or accept them again)."""
    await h.store.writes.run(lambda: h.store.db.execute(f"PRAGMA query_only = {int(on)}"))


async def test_a_held_write_lock_never_holds_up_acks(served: SlackHarness) -> None:
    """While another process holds the write lock and a command waits for it, `/golive status`
    and /healthz are answered; the waiting command is then refused, with nothing recorded."""
    h = served
    await _started(h)
    release = h.release().id
    with write_lock(h.store.path) as other:
        note = asyncio.create_task(h.command(COMMANDER, "note written while the db is locked"))
        await h.until(lambda: h.store.writes.queued >= 1, "the note to wait for the lock")
        status = await h.command(COMMANDER, "status")
        assert "v2.4.0" in status["text"] and not note.done()
        health = await h.http.get("/healthz")
        assert health.status_code == 503
        assert health.json()["database"].startswith("error")
        assert (await note)["text"] == render_database_busy("another process holds its lock")
        assert other.in_transaction
    assert h.store.notes(release) == []
    assert (await h.http.get("/healthz")).status_code == 200
    assert (await h.command(COMMANDER, "note written after"))["text"] == "Note recorded."
    assert [n.text for n in h.store.notes(release)] == ["written after"]


async def test_an_event_that_cannot_be_kept_is_refused_so_slack_resends_it(
    served: SlackHarness,
) -> None:
    """A reaction arriving while the database is locked is not acknowledged (5xx: Slack sends it
    again); the resend after the lock is kept and approves."""
    h = served
    await _started(h)
    body = event_body(reaction_event(ON_CALL, h.request_in_slack("incidents").ts), "Ev0LOCKED")
    with write_lock(h.store.path):
        refused = await h.post(body, "application/json")
    assert refused.status_code >= 500
    assert h.store.inbox_entry("event:Ev0LOCKED") is None
    assert h.step("incidents").status is StepStatus.AWAITING
    resent = await h.post(
        body, "application/json", {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_error"}
    )
    assert resent.status_code == 200
    await h.until(lambda: h.step("incidents").status is StepStatus.DONE, "the approval")


async def test_healthz_writes_to_know_the_database_is_writable(served: SlackHarness) -> None:
    """/healthz is 503 while the database takes reads but refuses writes, 200 once it takes them."""
    h = served
    await _readonly(h, True)
    health = await h.http.get("/healthz")
    assert health.status_code == 503
    assert "readonly database" in health.json()["database"]
    await _readonly(h, False)
    assert (await h.http.get("/healthz")).status_code == 200


async def test_a_failed_mark_stops_delivery_and_says_so_once(served: SlackHarness) -> None:
    """Posted but not recordable: the message goes out once, delivery pauses with backoff, the
    release channel hears once that golive is degraded and once that it recovered."""
    h = served
    await _started(h)
    start = h.clock.now()
    h.fake.fail(500, until=start + timedelta(seconds=1))  # keep the note queued for a moment
    await h.command(COMMANDER, "note the disk is filling up")
    await h.inbox.join()
    await h.runtime.outbox.flush()
    assert h.runtime.outbox.pending() > 0
    await _readonly(h, True)
    h.clock.advance(5)
    for _ in range(20):  # twenty minutes of a full disk, passes driven as the worker would
        await h.runtime.outbox.flush()
        h.clock.advance(60)

    def posts(prefix: str) -> list[str]:
        return [m.text for m in h.fake.posts(CHANNEL) if m.text.startswith(prefix)]

    note = [m for m in h.fake.messages if "the disk is filling up" in m.text]
    assert len(note) == 1
    assert len(posts("⚠️ golive cannot write to its database")) == 1
    assert (await h.http.get("/healthz")).json()["delivery"].startswith("paused")

    await _readonly(h, False)
    await h.settle()
    note = [m for m in h.fake.messages if "the disk is filling up" in m.text]
    assert len(note) == 1
    assert len(posts("✅ golive can write to its database again")) == 1
    assert len(posts("⚠️ golive cannot write to its database")) == 1
    assert (await h.http.get("/healthz")).json()["delivery"] == "delivering"
