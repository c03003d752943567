"""Nothing stalls, in Slack: reminders and escalation, Stop with a reason, any role handed over,
and each person's App Home — through the served app, signed requests and the fake Slack."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

from bot.domain.clock import FakeClock
from bot.domain.model import StepStatus
from bot.engine.records import record_markdown
from bot.render.messages import SNOOZE_ACTION, STOP_ACTION, STOP_REASON_BLOCK, STOP_REASON_INPUT
from bot.sandbox import FakeSlack, SlackMessage
from tests.conftest import BACKEND, CHANNEL, COMMANDER, FRONTEND, ON_CALL, STRANGER
from tests.slack.conftest import SlackHarness, click_body, serving, slack_config

OTHERS = ("ci", "notes", "rollback", "baseline")  # every precondition but on-call's incidents


async def _only_incidents_waits(h: SlackHarness) -> datetime:
    """Start a release and answer every precondition but `incidents` (on-call's); returns when
    the release started (since then `incidents` has waited)."""
    started = h.clock.now()
    await h.command(COMMANDER, "start v2.4.0")
    for key in OTHERS:
        reply = await h.command(h.owner(h.step(key)), f"approve {key}")
        assert reply["text"].startswith("Approved"), reply
    await h.settle()
    assert [s.key for s in h.awaiting()] == ["incidents"]
    return started


async def _at(h: SlackHarness, moment: datetime) -> None:
    """Time moves on to `moment`; the timer job fires what is due and delivery runs."""
    h.clock.set(moment)
    await h.runtime.timers.fire()
    await h.settle()


def _reminders(h: SlackHarness, step: str = "incidents") -> list[SlackMessage]:
    """Reminders of a step in the release thread, as Slack shows them now."""
    rows = {
        r.ts for r in h.rows() if r.kind == "reminder" and r.step_key == step and r.ts is not None
    }
    return [m for m in h.fake.posts(CHANNEL) if m.ts in rows]


async def test_a_request_is_reminded_at_10m_and_escalated_at_30m(served: SlackHarness) -> None:
    """An unanswered request: nothing before 10 min; at 10 min its owner is mentioned in the
    thread and sent a direct message linking to it; one reminder per 10 min after that; from
    30 min the commander is mentioned too."""
    h = served
    t0 = await _only_incidents_waits(h)
    await _at(h, t0 + timedelta(minutes=9, seconds=59))
    assert _reminders(h) == [] and h.fake.dms(ON_CALL) == []

    await _at(h, t0 + timedelta(minutes=10))
    (first,) = _reminders(h)
    assert first.text.startswith(f"⏰ <@{ON_CALL}> *No critical incident* has waited 10m for you")
    assert COMMANDER not in first.text
    assert first.thread_ts == h.fake.top_level(CHANNEL)[0].ts  # in the release thread
    assert SNOOZE_ACTION in json.dumps(first.blocks)
    (dm,) = h.fake.dms(ON_CALL)
    (opened,) = h.fake.calls_to("conversations.open")
    assert opened.params["users"] == ON_CALL
    request = h.request_in_slack("incidents")
    permalink = (
        f"https://golive-sandbox.slack.com/archives/{CHANNEL}/p{request.ts.replace('.', '')}"
        f"?thread_ts={request.thread_ts}&amp;cid={CHANNEL}"
    )
    assert f"<{permalink}|open it in the thread>" in dm.text
    assert [c.params["message_ts"] for c in h.fake.calls_to("chat.getPermalink")] == [request.ts]

    await _at(h, t0 + timedelta(minutes=10, seconds=30))  # fired again: never more than one
    await _at(h, t0 + timedelta(minutes=19))
    assert len(_reminders(h)) == 1
    await _at(h, t0 + timedelta(minutes=20))
    second = _reminders(h)[-1]
    assert len(_reminders(h)) == 2 and COMMANDER not in second.text
    await _at(h, t0 + timedelta(minutes=30))
    third = _reminders(h)[-1]
    assert third.text.startswith(f"⏫ <@{ON_CALL}> *No critical incident* has waited 30m")
    assert third.text.endswith(f"<@{COMMANDER}>, it needs you too.")
    assert len(h.fake.dms(ON_CALL)) == 3
    kinds = [r.kind for r in h.store.reminders(h.release().id)]
    assert kinds == ["reminder", "reminder", "escalation"]


async def test_an_approval_silences_the_reminders(served: SlackHarness) -> None:
    """Once the step is approved its reminders stop: none comes for it however long it is."""
    h = served
    t0 = await _only_incidents_waits(h)
    await _at(h, t0 + timedelta(minutes=10))
    assert len(_reminders(h)) == 1
    await h.react(ON_CALL, h.request_in_slack("incidents").ts)
    await h.until(lambda: h.step("incidents").status is StepStatus.DONE, "the approval")
    for minutes in (20, 30, 60, 120):
        await _at(h, t0 + timedelta(minutes=minutes))
    assert len(_reminders(h)) == 1 and len(h.fake.dms(ON_CALL)) == 1


async def test_the_snooze_button_holds_reminders_for_30_minutes(served: SlackHarness) -> None:
    """Snooze on a reminder: refused to someone else; by the owner it holds reminders off for
    30 minutes and takes its button off; then the reminders come back, escalated by then."""
    h = served
    t0 = await _only_incidents_waits(h)
    await _at(h, t0 + timedelta(minutes=10))
    (reminder,) = _reminders(h)
    value = f"{h.release().id}:incidents"
    await h.click(STRANGER, reminder, value, SNOOZE_ACTION)
    await h.until(lambda: bool(h.fake.ephemerals(user=STRANGER)), "the refusal")
    (refused,) = h.fake.ephemerals(user=STRANGER)
    assert refused.text == (
        f"only the commander or <@{ON_CALL}> can snooze reminders of No critical incident"
    )
    h.clock.set(t0 + timedelta(minutes=12))
    await h.click(ON_CALL, reminder, value, SNOOZE_ACTION)
    await h.settle()
    snoozed = h.fake.message(CHANNEL, reminder.ts)
    assert snoozed is not None and SNOOZE_ACTION not in json.dumps(snoozed.blocks)
    assert f"💤 Snoozed by <@{ON_CALL}> until 12:42 UTC." in snoozed.text
    for minutes in (20, 30, 41):
        await _at(h, t0 + timedelta(minutes=minutes))
    assert len(_reminders(h)) == 1
    await _at(h, t0 + timedelta(minutes=42))
    assert len(_reminders(h)) == 2
    assert _reminders(h)[-1].text.startswith(f"⏫ <@{ON_CALL}>")


async def test_reminders_resume_after_a_restart(
    fake_slack: FakeSlack, clock: FakeClock, tmp_path: Path
) -> None:
    """golive down from 11 to 45 minutes: on restart one escalated reminder goes out for what
    came due meanwhile (not one per missed interval), and the next comes 10 minutes later."""
    database = str(tmp_path / "golive.db")
    async with serving(slack_config(), fake_slack, clock, database) as h:
        t0 = await _only_incidents_waits(h)
        await _at(h, t0 + timedelta(minutes=10))
        assert len(_reminders(h)) == 1
        clock.set(t0 + timedelta(minutes=11))
    clock.set(t0 + timedelta(minutes=45))
    async with serving(slack_config(), fake_slack, clock, database) as h:
        await h.settle()  # the restart fired what was due while golive was down
        assert len(_reminders(h)) == 2
        assert _reminders(h)[-1].text.startswith(f"⏫ <@{ON_CALL}> *No critical incident*")
        await _at(h, t0 + timedelta(minutes=54))
        assert len(_reminders(h)) == 2
        await _at(h, t0 + timedelta(minutes=55))
        assert len(_reminders(h)) == 3


async def test_a_stop_by_someone_else_is_refused(served: SlackHarness) -> None:
    """Stop pressed (or /golive reject typed) by someone who neither owns the step nor is the
    commander or on-call: no modal opens, they alone are told who may, the step waits on."""
    h = served
    await h.command(COMMANDER, "start v2.4.0")
    await h.settle()
    request = h.request_in_slack("incidents")
    assert STOP_ACTION in json.dumps(request.blocks)  # beside Approve
    await h.click(STRANGER, request, f"{h.release().id}:incidents", STOP_ACTION)
    await h.until(lambda: bool(h.fake.requests_to(f"/hooks/{STRANGER}")), "the refusal")
    (answer,) = h.fake.requests_to(f"/hooks/{STRANGER}")
    assert answer.json()["text"] == (
        f"only the commander (<@{COMMANDER}>) or on-call (<@{ON_CALL}>) can stop "
        "No critical incident"
    )
    assert h.fake.calls_to("views.open") == []
    reply = await h.command(STRANGER, "reject incidents I do not like it")
    assert reply["text"].startswith("only the commander"), reply
    assert h.step("incidents").status is StepStatus.AWAITING


async def test_a_stop_through_the_modal_blocks_the_step_with_its_reason(
    served: SlackHarness,
) -> None:
    """The owner presses Stop: a modal opens with the click's trigger_id; an empty reason keeps
    it open with the problem shown; the submitted reason blocks the step, the commander is
    mentioned, the request loses its buttons and the card says why; retry asks again."""
    h = served
    await h.command(COMMANDER, "start v2.4.0")
    await h.settle()
    request = h.request_in_slack("incidents")
    await h.click(ON_CALL, request, f"{h.release().id}:incidents", STOP_ACTION)
    (opened,) = h.fake.calls_to("views.open")
    assert opened.outcome == "ok"
    (view_id,) = h.fake.views
    assert h.fake.views[view_id]["private_metadata"] == f"{h.release().id}:incidents"

    empty = await h.submit(view_id, {STOP_REASON_BLOCK: {STOP_REASON_INPUT: "   "}})
    assert empty.json()["response_action"] == "errors"
    assert STOP_REASON_BLOCK in empty.json()["errors"]
    await h.settle()
    assert h.step("incidents").status is StepStatus.AWAITING

    reason = "PagerDuty shows an open SEV1 <!channel>"
    done = await h.submit(view_id, {STOP_REASON_BLOCK: {STOP_REASON_INPUT: reason}})
    assert done.status_code == 200 and done.content in (b"", b"{}")
    await h.until(lambda: h.step("incidents").status is StepStatus.BLOCKED, "the stop")
    await h.settle()
    step = h.step("incidents")
    assert step.reason == reason and step.failing == ("stopped",)
    said = [m.text for m in h.fake.posts(CHANNEL) if m.text.startswith("🛑 <@")]
    assert said == [
        f"🛑 <@{ON_CALL}> stopped *No critical incident*: PagerDuty shows an open SEV1 "
        f"&lt;!channel&gt;\n<@{COMMANDER}>: it stays blocked until it is sorted — then "
        "`/golive retry incidents` (the commander or its owner), or "
        "`/golive waive incidents &lt;reason&gt;`."
    ]
    stopped = h.fake.message(CHANNEL, request.ts)
    assert stopped is not None and stopped.text.startswith("🛑 *No critical incident*")
    assert STOP_ACTION not in json.dumps(stopped.blocks)
    card = h.fake.top_level(CHANNEL)[0]
    shown = json.dumps(card.blocks, ensure_ascii=False)
    assert "❌ No critical incident — stopped: PagerDuty shows an open SEV1 &lt;!channel" in shown
    reply = await h.command(COMMANDER, "retry incidents")
    assert reply["text"] == "Running No critical incident again."
    await h.settle()
    assert h.step("incidents").status is StepStatus.AWAITING
    assert h.request_in_slack("incidents").ts != request.ts


async def test_a_handover_readdresses_the_pending_request(served: SlackHarness) -> None:
    """The backend owner hands the role over while the backup waits on them: the request is
    rewritten in place for the new owner, the card and the record show who took over from whom,
    the new owner approves and the old one no longer can."""
    h = served
    await h.command(COMMANDER, "start v2.4.0")
    await h.approve_through("freeze")
    await h.settle()
    request = h.request_in_slack("backup")
    assert f"<@{BACKEND}>" in request.text
    refused = await h.command(FRONTEND, f"handover backend <@{STRANGER}>")
    assert refused["text"] == (
        f"only the commander (<@{COMMANDER}>) or the backend owner (<@{BACKEND}>) can hand "
        "over the backend owner role"
    )
    reply = await h.command(BACKEND, f"handover backend <@{STRANGER}|sam>")
    assert reply["text"] == f"<@{STRANGER}> is now the backend owner."
    await h.settle()
    assert h.release().roles.backend == STRANGER
    readdressed = h.fake.message(CHANNEL, request.ts)
    assert readdressed is not None and readdressed.history
    assert f"<@{STRANGER}>" in readdressed.text and f"<@{BACKEND}>" not in readdressed.text
    said = [m.text for m in h.fake.posts(CHANNEL) if m.text.startswith("🤝")]
    assert said == [
        f"🤝 <@{STRANGER}> takes over from <@{BACKEND}> as the backend owner of release v2.4.0. "
        f"1 waiting request goes to <@{STRANGER}> now."
    ]
    card = h.fake.top_level(CHANNEL)[0]
    assert f"Backend <@{STRANGER}> (from <@{BACKEND}> at 12:00 UTC)" in card.text
    old = await h.command(BACKEND, "approve backup")
    assert old["text"] == f"only <@{STRANGER}> can approve Backup / restore point"
    new = await h.command(STRANGER, "approve backup")
    assert new["text"] == "Approved Backup / restore point."
    (handed,) = h.store.events(h.release().id, "handed_over")
    assert handed.actor == BACKEND
    assert handed.data == {"old": BACKEND, "new": STRANGER, "role": "backend"}
    record = record_markdown(h.store, h.runtime.config, h.release().id)
    line = f"backend handed over from <@{BACKEND}> to <@{STRANGER}> by <@{BACKEND}>"
    assert f"- 2026-11-27 12:00 UTC: {line}" in record


async def test_on_call_can_be_taken_by_the_incoming_on_call(served: SlackHarness) -> None:
    """At a shift change the incoming on-call takes the role themselves; the outgoing one's
    waiting requests become theirs; `/golive handover @user` still means the commander."""
    h = served
    await h.command(COMMANDER, "start v2.4.0")
    await h.settle()
    reply = await h.command(STRANGER, f"handover on_call <@{STRANGER}>")
    assert reply["text"] == f"<@{STRANGER}> is now on-call."
    await h.settle()
    assert h.release().roles.on_call == STRANGER
    assert {s.key for s in h.awaiting() if h.owner(s) == STRANGER} == {
        "incidents",
        "rollback",
        "baseline",
    }
    reply = await h.command(COMMANDER, f"handover <@{BACKEND}>")
    assert reply["text"] == f"<@{BACKEND}> is now the commander."


async def test_app_home_shows_each_person_what_waits_on_them(served: SlackHarness) -> None:
    """Opening the Home tab publishes that person's view: the steps waiting on them with links
    to their requests, and the release in progress; when one of their steps is answered their
    view is published again without it."""
    h = served
    await h.command(COMMANDER, "start v2.4.0")
    await h.settle()
    response = await h.open_home(ON_CALL)
    assert response.status_code == 200
    await h.settle()
    (call,) = h.fake.calls_to("views.publish")
    assert call.params["user_id"] == ON_CALL
    home = json.dumps(h.fake.homes[ON_CALL]["blocks"])
    for title in ("No critical incident", "Rollback targets", "Pre-release baseline"):
        assert f"*{title}*" in home, title
    for title in ("CI green", "Release notes"):
        assert f"*{title}*" not in home, title
    request = h.request_in_slack("incidents")
    assert f"/archives/{CHANNEL}/p{request.ts.replace('.', '')}" in home
    assert "Releases in progress" in home and "*v2.4.0*" in home
    assert COMMANDER not in h.fake.homes

    await h.react(ON_CALL, request.ts)
    await h.until(lambda: h.step("incidents").status is StepStatus.DONE, "the approval")
    await h.settle()
    assert [c.params["user_id"] for c in h.fake.calls_to("views.publish")] == [ON_CALL, ON_CALL]
    home = json.dumps(h.fake.homes[ON_CALL]["blocks"])
    assert "*No critical incident*" not in home and "*Rollback targets*" in home


async def test_a_trigger_slack_no_longer_honours_is_answered_with_the_command(
    served: SlackHarness,
) -> None:
    """A Stop click whose trigger_id has expired by the time golive asks (views.open answers
    expired_trigger_id) tells the person how to stop the step by command instead."""
    h = served
    await h.command(COMMANDER, "start v2.4.0")
    await h.settle()
    request = h.request_in_slack("incidents")
    stale = h.fake.trigger(ON_CALL)
    h.clock.advance(5)
    body = click_body(
        ON_CALL,
        request,
        f"{h.release().id}:incidents",
        STOP_ACTION,
        f"{h.fake.url}/hooks/{ON_CALL}",
        trigger_id=stale,
    )
    assert (await h.post(body, "application/x-www-form-urlencoded")).status_code == 200
    (opened,) = h.fake.calls_to("views.open")
    assert opened.outcome == "expired_trigger_id"
    (answer,) = h.fake.requests_to(f"/hooks/{ON_CALL}")
    assert answer.json()["text"] == (
        "golive could not open the form to stop this step (expired_trigger_id); stop it with "
        "`/golive reject incidents <reason>` instead."
    )
    assert h.step("incidents").status is StepStatus.AWAITING


async def test_a_direct_message_slack_refuses_never_holds_the_release_channel(
    served: SlackHarness,
) -> None:
    """Without im:write a reminder's direct message waits (Slack answers missing_scope), while
    the release channel goes on; once the scope is granted the message goes out."""
    h = served
    t0 = await _only_incidents_waits(h)
    h.fake.revoke_scope("im:write")
    h.clock.set(t0 + timedelta(minutes=10))
    await h.runtime.timers.fire()
    await h.runtime.outbox.flush()
    assert len(_reminders(h)) == 1  # the thread reminder went out
    (dm,) = [r for r in h.rows() if r.kind == "dm"]
    assert dm.status == "pending" and "missing_scope" in (dm.error or "")
    request = h.request_in_slack("incidents")
    await h.react(ON_CALL, request.ts)
    await h.until(lambda: h.step("incidents").status is StepStatus.DONE, "the approval")
    await h.inbox.join()
    await h.runtime.outbox.flush()
    approved = h.fake.message(CHANNEL, request.ts)
    assert approved is not None and approved.text.startswith("✅ *No critical incident*")
    assert h.fake.dms(ON_CALL) == []
    h.fake.missing_scopes.discard("im:write")
    await h.settle()
    (sent,) = h.fake.dms(ON_CALL)
    assert "*No critical incident* waits for you" in sent.text
