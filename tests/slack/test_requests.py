"""Incoming Slack requests: signatures, retries and duplicates, reactions and button clicks."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping
from typing import Any

import pytest
from slack_bolt.response import BoltResponse

from bot.adapters.console import ConsoleTransport
from bot.adapters.slack.app import INTERNAL_ERROR, NOT_WAITING, on_error
from bot.adapters.slack.inbox import Inbox
from bot.domain.clock import FakeClock
from bot.domain.config import Secrets
from bot.domain.model import StepStatus
from bot.engine.runtime import Runtime
from tests.conftest import BACKEND, CHANNEL, COMMANDER, ON_CALL, STRANGER
from tests.slack.conftest import (
    SlackHarness,
    command_body,
    event_body,
    reaction_event,
    signed_headers,
    slack_config,
)


async def _started(h: SlackHarness) -> None:
    await h.command(COMMANDER, "start v2.4.0")
    await h.settle()


async def test_forged_signature_is_refused(served: SlackHarness) -> None:
    """A request signed with another secret gets 401 and starts nothing."""
    body = command_body(COMMANDER, "start v2.4.0")
    headers = signed_headers(body, "application/x-www-form-urlencoded", secret="not-the-secret")
    response = await served.http.post("/slack/events", content=body, headers=headers)
    assert response.status_code == 401
    assert served.store.latest_in_channel(CHANNEL) is None


async def test_tampered_body_is_refused(served: SlackHarness) -> None:
    """A correctly signed body altered in transit gets 401."""
    body = command_body(COMMANDER, "status")
    headers = signed_headers(body, "application/x-www-form-urlencoded")
    tampered = command_body(COMMANDER, "start v6.6.6")
    response = await served.http.post("/slack/events", content=tampered, headers=headers)
    assert response.status_code == 401
    assert served.store.latest_in_channel(CHANNEL) is None


async def test_stale_timestamp_is_refused(served: SlackHarness) -> None:
    """A validly signed request older than five minutes (a replay) gets 401."""
    body = command_body(COMMANDER, "start v2.4.0")
    old = int(time.time()) - 6 * 60
    headers = signed_headers(body, "application/x-www-form-urlencoded", timestamp=old)
    response = await served.http.post("/slack/events", content=body, headers=headers)
    assert response.status_code == 401
    assert served.store.latest_in_channel(CHANNEL) is None


async def test_unsigned_request_is_refused(served: SlackHarness) -> None:
    """No signature headers at all: 401, nothing started."""
    body = command_body(COMMANDER, "start v2.4.0")
    response = await served.http.post(
        "/slack/events",
        content=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 401
    assert served.store.latest_in_channel(CHANNEL) is None


async def test_unsigned_ssl_check_runs_nothing(served: SlackHarness) -> None:
    """Slack's unsigned ssl_check probe is answered empty and never reaches a listener."""
    body = command_body(COMMANDER, "start v2.4.0") + b"&ssl_check=1"
    response = await served.http.post(
        "/slack/events",
        content=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200 and response.content == b""
    assert served.store.latest_in_channel(CHANNEL) is None


async def test_url_verification_challenge(served: SlackHarness) -> None:
    """Slack's Request URL check is answered with its challenge (signed, like every request)."""
    body = json.dumps({"type": "url_verification", "challenge": "c-123", "token": "t"}).encode()
    response = await served.post(body, "application/json")
    assert response.status_code == 200 and response.json() == {"challenge": "c-123"}


async def test_duplicate_event_approves_once(
    served: SlackHarness, caplog: pytest.LogCaptureFixture
) -> None:
    """The same event_id again (a Slack retry) is recognised and records no second approval."""
    caplog.set_level(logging.INFO, logger="bot.adapters.slack.app")
    h = served
    await _started(h)
    ts = h.request_in_slack("incidents").ts
    body = event_body(reaction_event(ON_CALL, ts), event_id="Ev0DUPLICATE")
    first = await h.post(body, "application/json")
    assert first.status_code == 200
    await h.until(lambda: h.step("incidents").status is StepStatus.DONE, "the approval")
    retried = await h.post(
        body,
        "application/json",
        {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"},
    )
    again = await h.post(body, "application/json")
    assert retried.status_code == 200 and again.status_code == 200
    await h.settle()
    approvals = [a for a in h.store.approvals(h.release().id) if a.step_key == "incidents"]
    assert len(approvals) == 1
    events = [e.type for e in h.store.events(h.release().id)]
    assert events.count("approve") == 1
    skipped = [r.getMessage() for r in caplog.records if "already handled" in r.getMessage()]
    assert skipped == [
        "event Ev0DUPLICATE already handled (Slack retry 1); skipped",
        "event Ev0DUPLICATE already handled (Slack retry none); skipped",
    ]


async def test_duplicate_refusal_is_sent_once(served: SlackHarness) -> None:
    """A retried stranger's reaction yields one ephemeral refusal, not two."""
    h = served
    await _started(h)
    ts = h.request_in_slack("incidents").ts
    body = event_body(reaction_event(STRANGER, ts), event_id="Ev0STRANGER")
    await h.post(body, "application/json")
    await h.post(body, "application/json", {"X-Slack-Retry-Num": "2"})
    await h.until(lambda: bool(h.fake.ephemerals(user=STRANGER)), "the refusal")
    await h.settle()
    assert len(h.fake.ephemerals(user=STRANGER)) == 1
    assert len(h.fake.calls_to("chat.postEphemeral")) == 1


async def test_strangers_reaction_gets_an_ephemeral_refusal(served: SlackHarness) -> None:
    """Someone else's approve reaction: 'only <@owner> can approve …', to them alone."""
    h = served
    await _started(h)
    response = await h.react(STRANGER, h.request_in_slack("incidents").ts)
    assert response.status_code == 200
    await h.until(lambda: bool(h.fake.ephemerals(user=STRANGER)), "the refusal")
    await h.settle()
    (refusal,) = h.fake.ephemerals(channel=CHANNEL, user=STRANGER)
    assert refusal.text == "only <@U0ONCALL1> can approve No critical incident"
    call = h.fake.calls_to("chat.postEphemeral")[0]
    assert call.params["user"] == STRANGER and call.params["channel"] == CHANNEL
    assert h.step("incidents").status is StepStatus.AWAITING


async def test_other_reactions_and_messages_are_ignored(served: SlackHarness) -> None:
    """Another emoji, a message that is not ours, or a non-message item change nothing."""
    h = served
    await _started(h)
    ts = h.request_in_slack("incidents").ts
    before = len(h.store.events(h.release().id))
    await h.react(ON_CALL, ts, reaction="eyes")
    await h.react(ON_CALL, "1700000000.000100")
    file_event = reaction_event(ON_CALL, ts)
    file_event["item"] = {"type": "file", "file": "F123"}
    await h.event(file_event)
    await h.react(ON_CALL, h.fake.top_level(CHANNEL)[0].ts)  # the card is not a request
    await h.settle()
    assert h.step("incidents").status is StepStatus.AWAITING
    assert len(h.store.events(h.release().id)) == before
    assert h.fake.ephemerals() == []


async def test_skin_tone_of_the_approve_reaction_counts(served: SlackHarness) -> None:
    """`white_check_mark::skin-tone-3` approves like the plain reaction."""
    h = served
    await _started(h)
    await h.react(ON_CALL, h.request_in_slack("incidents").ts, "white_check_mark::skin-tone-3")
    await h.until(lambda: h.step("incidents").status is StepStatus.DONE, "the approval")


async def test_a_superseded_request_does_not_approve_the_next_stage(served: SlackHarness) -> None:
    """Re-adding the reaction to wave 1's deploy request leaves its health confirmation open."""
    h = served
    await _started(h)
    await h.approve_through("migrations")
    await h.settle()
    deploy = h.request_in_slack("wave-1")
    await h.react(BACKEND, deploy.ts)
    await h.until(lambda: h.step("wave-1").stage == 1, "the deploy approval")
    await h.settle()
    assert h.request_in_slack("wave-1").ts != deploy.ts  # the health confirmation request
    # The owner removes and re-adds the reaction on the old request: a new event id.
    await h.react(BACKEND, deploy.ts)
    stale = h.fake.message(CHANNEL, deploy.ts)
    assert stale is not None
    await h.click(BACKEND, stale, f"{h.release().id}:wave-1")  # a late double click
    await h.until(lambda: bool(h.fake.requests_to("/hooks/")), "the reply to the click")
    await h.settle()
    step = h.step("wave-1")
    assert step.status is StepStatus.AWAITING and step.stage == 1
    (answer,) = h.fake.requests_to(f"/hooks/{BACKEND}")
    assert answer.json()["text"] == NOT_WAITING
    assert answer.json()["response_type"] == "ephemeral"


async def test_strangers_button_click_is_refused(served: SlackHarness) -> None:
    """A click on Approve by someone else is refused to them alone; the step stays open."""
    h = served
    await _started(h)
    request = h.request_in_slack("incidents")
    response = await h.click(STRANGER, request, f"{h.release().id}:incidents")
    assert response.status_code == 200
    await h.until(lambda: bool(h.fake.ephemerals(user=STRANGER)), "the refusal")
    assert h.fake.ephemerals(user=STRANGER)[0].text.startswith("only <@U0ONCALL1> can approve")
    assert h.step("incidents").status is StepStatus.AWAITING


async def test_error_handler_answers_a_command_plainly() -> None:
    """An exception that escapes a listener becomes an ephemeral apology for a slash command."""
    answer = await on_error(RuntimeError("boom"), {"command": "/golive"}, BoltResponse(status=500))
    assert answer is not None and answer.status == 200
    assert json.loads(answer.body) == {"response_type": "ephemeral", "text": INTERNAL_ERROR}
    assert await on_error(RuntimeError("boom"), {"type": "event_callback"}, None) is None


async def test_inbox_runs_in_order_and_sets_a_failing_entry_aside(clock: FakeClock) -> None:
    """Inbox entries are processed one at a time in arrival order; a crash sets only that one
    aside (kept, marked failed) and the rest still run."""
    runtime = Runtime(slack_config(), Secrets({}), ConsoleTransport(lambda _: None), clock=clock)
    done: list[int] = []

    def record(_: Runtime, payload: Mapping[str, Any]) -> tuple[str | None, str | None]:
        if payload["n"] == 2:
            raise RuntimeError("one bad event")
        done.append(int(payload["n"]))
        return "ok", None

    async def no_reply(_: Mapping[str, Any], __: str) -> None:
        return None

    inbox = Inbox(runtime, {"test": record}, no_reply)
    for n in (1, 2, 3):
        assert await inbox.accept(f"event:{n}", "test", {"n": n})
    assert not await inbox.accept("event:1", "test", {"n": 1})  # a retry of the first
    await inbox.work()
    await asyncio.wait_for(inbox.join(), 5)
    assert done == [1, 3]
    statuses = {r["key"]: r["status"] for r in runtime.store.db["inbox"].rows}
    assert statuses == {"event:1": "done", "event:2": "failed", "event:3": "done"}
    runtime.store.close()


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (b"{not json", {"Content-Type": "application/json"}),
        (b"\xff\xfe\x00garbage", {"Content-Type": "application/json"}),
        (b"payload=%7B%22type", {"Content-Type": "application/x-www-form-urlencoded"}),
        (
            b"{}",
            {
                "Content-Type": "application/json",
                "X-Slack-Request-Timestamp": "soon",
                "X-Slack-Signature": "v0=00",
            },
        ),
        (
            b"{}",
            {
                "Content-Type": "application/json",
                "X-Slack-Request-Timestamp": "9" * 40,
                "X-Slack-Signature": "v0=00",
            },
        ),
    ],
)
async def test_malformed_unsigned_bodies_are_refused_before_parsing(
    served: SlackHarness, caplog: pytest.LogCaptureFixture, body: bytes, headers: dict[str, str]
) -> None:
    """Garbage without a valid signature is a 401, never a 500 with a traceback."""
    response = await served.http.post("/slack/events", content=body, headers=headers)
    assert response.status_code == 401
    assert response.json() == {"error": "invalid request"}
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_inbox_waits_out_a_database_that_refuses_writes(clock: FakeClock) -> None:
    """An accepted entry the database will not let be processed stays pending, the worker backs
    off instead of retrying at once, and processes it once writes work again."""
    runtime = Runtime(slack_config(), Secrets({}), ConsoleTransport(lambda _: None), clock=clock)
    done: list[int] = []

    def record(_: Runtime, payload: Mapping[str, Any]) -> tuple[str | None, str | None]:
        done.append(int(payload["n"]))
        return "ok", None

    async def no_reply(_: Mapping[str, Any], __: str) -> None:
        return None

    inbox = Inbox(runtime, {"test": record}, no_reply)
    assert await inbox.accept("event:1", "test", {"n": 1})
    runtime.store.db.execute("PRAGMA query_only = 1")
    await inbox.work()
    assert inbox.next_wait() == 1.0 and done == []
    await inbox.work()  # within the pause: not even tried
    runtime.store.db.execute("PRAGMA query_only = 0")
    clock.advance(1)
    await inbox.work()
    assert done == [1] and inbox.next_wait() is None
    done = runtime.store.inbox_entry("event:1")
    assert done is not None and done.status == "done"
    runtime.store.close()
