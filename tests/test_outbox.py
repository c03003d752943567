"""Outbox delivery: order per channel, retries with backoff, nothing lost, nothing doubled."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

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
