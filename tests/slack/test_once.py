"""Exactly once for people: a repeated command or click is answered, never run twice."""

from __future__ import annotations

import time

from slack_bolt.request.async_request import AsyncBoltRequest

from bot.adapters.slack.app import request_key
from bot.domain.errors import IllegalMove, Why
from bot.domain.model import StepStatus
from bot.render.refusals import refusal
from tests.conftest import BACKEND, COMMANDER, STRANGER
from tests.slack.conftest import SlackHarness, click_body, command_body, signed_headers

FORM = "application/x-www-form-urlencoded"


async def _started(h: SlackHarness) -> None:
    await h.command(COMMANDER, "start v2.4.0")
    await h.settle()


async def _send(h: SlackHarness, body: bytes, timestamp: int | None = None) -> str:
    headers = signed_headers(body, FORM, timestamp=timestamp)
    response = await h.http.post("/slack/events", content=body, headers=headers)
    assert response.status_code == 200, response.text
    return str(response.json()["text"])


async def test_a_replayed_command_is_answered_not_run_again(served: SlackHarness) -> None:
    """The same signed body three times: three identical answers, one note."""
    h = served
    await _started(h)
    body = command_body(COMMANDER, "note the replayed one")
    headers = signed_headers(body, FORM)
    answers = []
    for _ in range(3):
        response = await h.http.post("/slack/events", content=body, headers=headers)
        assert response.status_code == 200
        answers.append(response.json())
    assert answers == [answers[0]] * 3 and answers[0]["text"] == "Note recorded."
    assert [n.text for n in h.store.notes(h.release().id)] == ["the replayed one"]


async def test_a_repeated_trigger_id_is_answered_not_run_again(served: SlackHarness) -> None:
    """The same command (same trigger_id) signed again at another moment runs once."""
    h = served
    await _started(h)
    body = command_body(COMMANDER, "followup check the disk alarms")
    now = int(time.time())
    first = await _send(h, body, now - 30)
    again = await _send(h, body, now)
    assert first == again == "Follow-up recorded."
    assert len(h.store.notes(h.release().id)) == 1


async def test_a_replayed_click_is_processed_once(served: SlackHarness) -> None:
    """A stranger's Approve click sent twice (same trigger_id) is refused to them once."""
    h = served
    await _started(h)
    request = h.request_in_slack("incidents")
    body = click_body(STRANGER, request, f"{h.release().id}:incidents")
    for _ in range(2):
        response = await h.http.post(
            "/slack/events", content=body, headers=signed_headers(body, FORM)
        )
        assert response.status_code == 200
    await h.settle()
    assert len(h.fake.ephemerals(user=STRANGER)) == 1
    assert h.step("incidents").status is StepStatus.AWAITING


async def test_approve_without_a_step_means_the_step_pending_when_it_was_sent(
    served: SlackHarness,
) -> None:
    """Two `/golive approve` sent together approve the step that waited then, not the next one."""
    h = served
    await _started(h)
    await h.approve_through("freeze")
    assert [s.key for s in h.awaiting() if h.owner(s) == BACKEND] == ["backup"]
    h.clock.advance(5)  # the owner reads the request for a few seconds
    sent = int(time.time()) - 1  # both were sent a second ago
    first = await _send(h, command_body(BACKEND, "approve"), sent)
    second = await _send(h, command_body(BACKEND, "approve"), sent)
    assert first.startswith("Approved")
    assert second == refusal(IllegalMove(Why.MOVED_ON, keys=["migrations"]))
    assert h.step("backup").status is StepStatus.DONE
    assert h.step("migrations").status is StepStatus.AWAITING
    h.clock.advance(5)
    third = await _send(h, command_body(BACKEND, "approve"))  # sent after migrations opened
    assert third.startswith("Approved") and h.step("migrations").status is StepStatus.DONE


def test_socket_mode_commands_are_told_apart() -> None:
    """Socket Mode requests have no signature or raw body: two commands still differ, a
    redelivered one is the same."""

    def request(trigger: str) -> AsyncBoltRequest:
        body = {"command": "/golive", "text": "note x", "trigger_id": trigger}
        return AsyncBoltRequest(body=body, mode="socket_mode")

    assert request_key(request("1.1.a")) != request_key(request("2.1.b"))
    assert request_key(request("1.1.a")) == request_key(request("1.1.a"))
