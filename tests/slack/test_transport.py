"""SlackTransport against FakeSlack: every message kind, and failures sorted into retry or drop."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.adapters.slack.transport import HOLD_SECONDS, SlackTransport, api_url, make_client
from bot.domain.clock import FakeClock
from bot.engine.outbox import Outbox, RetryLater, Undeliverable
from bot.sandbox import FakeSlack
from bot.sandbox.slack import DEFAULT_TOKEN
from bot.store import OutboxRow, Store
from tests.conftest import CHANNEL, STRANGER

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
BLOCKS = [{"type": "section", "text": {"type": "mrkdwn", "text": "*hello*"}}]
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))


def row(kind: str = "channel", **fields: Any) -> OutboxRow:
    """An outbox row as the outbox hands it to a transport."""
    values: dict[str, Any] = {
        "id": 1,
        "release_id": 1,
        "channel": CHANNEL,
        "kind": kind,
        "text": "hello",
        "blocks": None,
        "thread_of": None,
        "user": None,
        "step_key": None,
        "update_of": None,
        "file": None,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": None,
        "ts": None,
        "error": None,
        "created_at": NOW,
    }
    values.update(fields)
    return OutboxRow(**values)


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    """A FakeSlack that knows the stranger."""
    slack = FakeSlack()
    slack.add_user(STRANGER, "sam")
    await slack.start()
    yield slack
    await slack.stop()


@pytest.fixture
async def transport(fake: FakeSlack) -> AsyncIterator[SlackTransport]:
    """A transport with the fake's token, pointed at the fake by SLACK_API_URL's value."""
    yield SlackTransport(make_client(DEFAULT_TOKEN, f"{fake.url}/api"))


def test_api_url_defaults_to_slack_and_ends_in_a_slash() -> None:
    """Without SLACK_API_URL the client talks to slack.com; a given URL gets its slash."""
    assert api_url(None) == "https://slack.com/api/"
    assert api_url("https://slack-gov.com/api") == "https://slack-gov.com/api/"


async def test_posts_thread_replies_updates_and_ephemerals(
    fake: FakeSlack, transport: SlackTransport
) -> None:
    """Posts (in threads) → chat.postMessage, update → chat.update, ephemeral → postEphemeral."""
    card = await transport.deliver(row("card", blocks=BLOCKS), None, None)
    assert card is not None
    reply = await transport.deliver(row("approval", text="approve me", blocks=BLOCKS), card, None)
    assert reply is not None
    assert fake.replies(CHANNEL, card)[0].text == "approve me"
    assert await transport.deliver(row("update", text="edited"), None, reply) == reply
    edited = fake.message(CHANNEL, reply)
    assert edited is not None and edited.text == "edited"
    assert edited.blocks == []  # the old blocks (and their button) are cleared
    assert await transport.deliver(row("ephemeral", text="psst", user=STRANGER), None, None) is None
    assert [m.text for m in fake.ephemerals(user=STRANGER)] == ["psst"]
    post = fake.calls_to("chat.postMessage")[0]
    assert post.params["text"] == "hello" and post.params["blocks"] == BLOCKS
    assert post.headers["authorization"] == f"Bearer {DEFAULT_TOKEN}"


async def test_files_go_through_files_upload_v2(fake: FakeSlack, transport: SlackTransport) -> None:
    """A text file and a base64 PNG are uploaded and shared in the channel (thread)."""
    card = await transport.deliver(row("card"), None, None)
    text_file = {"filename": "release-v2.4.0.md", "title": "Release record", "content": "# v2.4.0"}
    png = {"filename": "soak.png", "title": "Soak", "content_b64": base64.b64encode(PNG).decode()}
    assert await transport.deliver(row("file", text="record", file=text_file), card, None)
    assert await transport.deliver(row("file", text="chart", file=png), None, None)
    record, chart = fake.uploads(CHANNEL)
    assert (record.filename, record.title, record.content) == (
        "release-v2.4.0.md",
        "Release record",
        b"# v2.4.0",
    )
    assert record.thread_ts == card and record.initial_comment == "record"
    assert chart.content == PNG


@pytest.mark.parametrize(
    "file",
    [
        None,
        {"filename": "x.md"},
        {"title": "no name", "content": "x"},
        {"filename": "x.png", "content_b64": "%%%"},
    ],
)
async def test_malformed_files_are_undeliverable(
    transport: SlackTransport, file: dict[str, Any] | None
) -> None:
    """A file row without a name or readable content can never be sent."""
    with pytest.raises(Undeliverable):
        await transport.deliver(row("file", file=file), None, None)


async def test_rate_limit_is_retried_after_retry_after(
    fake: FakeSlack, transport: SlackTransport
) -> None:
    """HTTP 429 → RetryLater with Retry-After seconds; the client itself does not retry."""
    fake.rate_limit(retry_after=17)
    with pytest.raises(RetryLater) as caught:
        await transport.deliver(row(), None, None)
    assert caught.value.after == 17
    assert len(fake.calls_to("chat.postMessage")) == 1


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_errors_are_retried(
    fake: FakeSlack, transport: SlackTransport, status: int
) -> None:
    """5xx → RetryLater (the outbox backs off), with a single call made."""
    fake.fail(status)
    with pytest.raises(RetryLater):
        await transport.deliver(row(), None, None)
    assert len(fake.calls) == 1


async def test_dropped_connection_and_refused_connection_are_retried(
    fake: FakeSlack, transport: SlackTransport
) -> None:
    """A connection closed mid-request, or no server at all, is a passing trouble."""
    fake.drop_connections()
    with pytest.raises(RetryLater):
        await transport.deliver(row(), None, None)
    await fake.stop()
    with pytest.raises(RetryLater):
        await transport.deliver(row(), None, None)


async def test_missing_channel_and_missing_message_are_undeliverable(
    fake: FakeSlack, transport: SlackTransport
) -> None:
    """channel_not_found and message_not_found can never succeed: give up on that message."""
    fake.remove_channel("C0GONE")
    with pytest.raises(Undeliverable, match="channel_not_found"):
        await transport.deliver(row(channel="C0GONE"), None, None)
    with pytest.raises(Undeliverable, match="message_not_found"):
        await transport.deliver(row("update"), None, "1.000001")


async def test_a_refused_token_holds_messages_instead_of_dropping_them(fake: FakeSlack) -> None:
    """invalid_auth → RetryLater(60 s): a revoked token must not drop every message."""
    transport = SlackTransport(make_client("xoxb-revoked", f"{fake.url}/api/"))
    with pytest.raises(RetryLater) as caught:
        await transport.deliver(row(), None, None)
    assert caught.value.after == HOLD_SECONDS
    assert "invalid_auth" in caught.value.reason


async def test_rejected_blocks_fall_back_to_the_text(
    fake: FakeSlack, transport: SlackTransport, monkeypatch: pytest.MonkeyPatch
) -> None:
    """invalid_blocks: the message goes out as its text fallback rather than not at all."""
    original = fake._m_chat_postMessage

    def picky(request: Any, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("blocks"):
            return {"ok": False, "error": "invalid_blocks"}
        return original(request, params)

    monkeypatch.setattr(fake, "_m_chat_postMessage", picky)
    ts = await transport.deliver(
        row("approval", text="React to approve", blocks=BLOCKS), None, None
    )
    message = fake.message(CHANNEL, str(ts))
    assert message is not None and message.text == "React to approve" and message.blocks is None


async def test_outbox_over_the_transport_paces_each_channel(fake: FakeSlack) -> None:
    """Through the real transport: a second post to a channel waits a second; others do not."""
    clock = FakeClock(NOW)
    store = Store(":memory:")
    for channel, text in [("C0A", "a1"), ("C0A", "a2"), ("C0B", "b1")]:
        store.enqueue(
            release_id=None, channel=channel, kind="channel", text=text, blocks=None, at=NOW
        )
    transport = SlackTransport(make_client(DEFAULT_TOKEN, f"{fake.url}/api/"))
    outbox = Outbox(store, transport, clock, pace=1.0)
    assert await outbox.flush() == 2
    assert [m.text for m in fake.messages] == ["a1", "b1"]
    assert outbox.next_retry() == clock.now().replace(second=1)
    clock.advance(0.5)
    assert await outbox.flush() == 0
    clock.advance(0.5)
    assert await outbox.flush() == 1
    assert [m.text for m in fake.messages] == ["a1", "b1", "a2"]
    store.close()
