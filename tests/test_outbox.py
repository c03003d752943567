"""Outbox delivery: order per channel, retries with backoff, nothing lost, nothing doubled."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.domain.clock import FakeClock
from bot.engine.outbox import Outbox, RetryLater, Undeliverable
from bot.store import OutboxRow, Store

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


class ScriptedTransport:
    """Fails as told, records what it delivered."""

    def __init__(self) -> None:
        self.delivered: list[tuple[str, str, str | None, str | None]] = []
        self.failures: dict[str, list[Exception]] = {}

    async def deliver(
        self, message: OutboxRow, thread_ts: str | None, target_ts: str | None
    ) -> str | None:
        queue = self.failures.get(message.text)
        if queue:
            raise queue.pop(0)
        self.delivered.append((message.channel, message.text, thread_ts, target_ts))
        return f"ts-{message.id}"


def _enqueue(store: Store, channel: str, text: str, **kw: object) -> int:
    return store.enqueue(
        release_id=None,
        channel=channel,
        kind=str(kw.pop("kind", "channel")),
        text=text,
        blocks=None,
        at=NOW,
        **kw,
    )  # type: ignore[arg-type]


async def test_a_failing_message_holds_its_channel_but_not_others(store: Store) -> None:
    """Order per channel holds through a retry; other channels are not held up."""
    clock = FakeClock(NOW)
    transport = ScriptedTransport()
    transport.failures["a1"] = [RetryLater("HTTP 429", after=30)]
    for channel, text in [("A", "a1"), ("A", "a2"), ("B", "b1")]:
        _enqueue(store, channel, text)
    outbox = Outbox(store, transport, clock)
    assert await outbox.flush() == 1
    assert [t for _, t, _, _ in transport.delivered] == ["b1"]
    clock.advance(29)
    assert await outbox.flush() == 0
    clock.advance(1)
    assert await outbox.flush() == 2
    assert [t for _, t, _, _ in transport.delivered] == ["b1", "a1", "a2"]
    assert await outbox.flush() == 0


async def test_backoff_grows_without_retry_after(store: Store) -> None:
    """Without Retry-After the waits follow the backoff schedule."""
    clock = FakeClock(NOW)
    transport = ScriptedTransport()
    transport.failures["x"] = [RetryLater("HTTP 500"), RetryLater("HTTP 503")]
    message = _enqueue(store, "A", "x")
    outbox = Outbox(store, transport, clock, backoff=(1, 4, 9))
    await outbox.flush()
    row = store.message(message)
    assert row is not None and row.attempts == 1
    assert row.next_attempt_at == NOW + timedelta(seconds=1)
    clock.advance(1)
    await outbox.flush()
    row = store.message(message)
    assert row is not None and row.attempts == 2
    assert row.next_attempt_at is not None and (row.next_attempt_at - clock.now()).seconds == 4
    clock.advance(4)
    await outbox.flush()
    assert transport.delivered == [("A", "x", None, None)]


async def test_thread_replies_and_updates_wait_for_their_parent(store: Store) -> None:
    """A reply goes into its parent's thread and an edit to its target, once those exist."""
    clock = FakeClock(NOW)
    transport = ScriptedTransport()
    transport.failures["card"] = [RetryLater("down")]
    card = _enqueue(store, "A", "card", kind="card")
    _enqueue(store, "A", "reply", kind="thread", thread_of=card)
    _enqueue(store, "A", "edit", kind="update", update_of=card)
    outbox = Outbox(store, transport, clock)
    await outbox.flush()
    assert transport.delivered == []
    clock.advance(60)
    await outbox.flush()
    assert transport.delivered == [
        ("A", "card", None, None),
        ("A", "reply", f"ts-{card}", None),
        ("A", "edit", None, f"ts-{card}"),
    ]


async def test_undeliverable_messages_are_marked_and_skipped(store: Store) -> None:
    """A message that can never arrive is marked failed; later ones still go."""
    clock = FakeClock(NOW)
    transport = ScriptedTransport()
    transport.failures["bad"] = [Undeliverable("channel_not_found")]
    bad = _enqueue(store, "A", "bad")
    _enqueue(store, "A", "edit", kind="update", update_of=bad)
    _enqueue(store, "A", "good")
    await Outbox(store, transport, clock).flush()
    assert [t for _, t, _, _ in transport.delivered] == ["good"]
    statuses = [m["status"] for m in store.db["outbox"].rows_where(order_by="id")]
    assert statuses == ["failed", "failed", "delivered"]


async def test_delivery_survives_a_restart(tmp_path: object) -> None:
    """Messages queued before a crash are delivered by the next process, exactly once."""
    from pathlib import Path

    path = Path(str(tmp_path)) / "o.db"
    first = Store(path)
    for i in range(3):
        _enqueue(first, "A", f"m{i}")
    transport = ScriptedTransport()
    transport.failures["m1"] = [RetryLater("crash soon")]
    await Outbox(first, transport, FakeClock(NOW)).flush()
    first.close()
    second = Store(path)
    again = ScriptedTransport()
    await Outbox(second, again, FakeClock(NOW.replace(minute=5))).flush()
    assert [t for _, t, _, _ in transport.delivered + again.delivered] == ["m0", "m1", "m2"]


class BigTimestamps(ScriptedTransport):
    """Slack answers with timestamps large enough that recording one needs a new page."""

    async def deliver(
        self, message: OutboxRow, thread_ts: str | None, target_ts: str | None
    ) -> str | None:
        await super().deliver(message, thread_ts, target_ts)
        return f"ts-{message.id}-" + "9" * 20_000 if message.id else None


def _fill_the_disk(store: Store) -> None:
    """The database may not grow by a page: SQLite answers SQLITE_FULL, as on a full disk."""
    pages = store.db.execute("PRAGMA page_count").fetchone()[0]
    store.db.execute(f"PRAGMA max_page_count = {pages}")


def _free_the_disk(store: Store) -> None:
    store.db.execute("PRAGMA max_page_count = 1073741823")


async def test_a_full_disk_pauses_delivery_instead_of_resending(tmp_path: Path) -> None:
    """Posted, but the mark fails (disk full): that message is sent once, delivery pauses with
    backoff, the channel hears once that golive is degraded and once that it recovered."""
    store = Store(tmp_path / "golive.db", threaded=True)
    clock = FakeClock(NOW)
    transport = BigTimestamps()
    first = await store.writes.run(lambda: _enqueue(store, "C1", "first"))
    await store.writes.run(lambda: _enqueue(store, "C1", "second"))
    outbox = Outbox(store, transport, clock, notices=lambda: ["C1"])
    await store.writes.run(lambda: _fill_the_disk(store))

    assert await outbox.flush() == 1  # posted; recording it failed
    assert "database or disk is full" in outbox.state()
    for _ in range(30):  # a long outage: every resume fails, nothing is posted again
        clock.advance(outbox.next_wait())
        assert await outbox.flush() == 0
    texts = [t for _, t, _, _ in transport.delivered]
    assert texts.count("first") == 1 and "second" not in texts
    assert [t for t in texts if t.startswith("⚠️")] == [texts[1]] and len(texts) == 2
    assert outbox.next_wait() == 60.0  # the backoff ends at a minute

    await store.writes.run(lambda: _free_the_disk(store))
    clock.advance(outbox.next_wait())
    assert await outbox.flush() == 1  # the second message; the first is recorded, not resent
    texts = [t for _, t, _, _ in transport.delivered]
    assert texts.count("first") == 1 and texts.count("second") == 1
    assert len([t for t in texts if t.startswith("✅")]) == 1
    row = store.message(first)
    assert row is not None and row.status == "delivered" and row.ts and row.ts.startswith("ts-")
    assert outbox.state() == "delivering" and outbox.pending() == 0
    store.close()
