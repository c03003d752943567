"""A whole release in Slack: slash commands, reactions and buttons against the served app."""

from __future__ import annotations

import itertools
import json
from datetime import timedelta
from pathlib import Path

import yaml

from bot.adapters.slack.app import EVENTS, SLASH_COMMAND
from bot.adapters.slack.serve import INBOX, RUNTIME, create_server
from bot.domain.clock import FakeClock
from bot.domain.model import ReleaseStatus, StepStatus
from bot.render.messages import CONFIRM_ROLLBACK_ACTION
from bot.sandbox import FakeSlack, LoopbackServer
from tests.conftest import ANNOUNCE, BACKEND, CHANNEL, COMMANDER, FRONTEND, ON_CALL
from tests.slack.conftest import ROOT, SlackHarness, slack_config, slack_env

# Which Web API method needs which bot scope (auth.test needs none).
SCOPE_OF = {
    "chat.postMessage": "chat:write",
    "chat.update": "chat:write",
    "chat.postEphemeral": "chat:write",
    "files.getUploadURLExternal": "files:write",
    "files.completeUploadExternal": "files:write",
    "users.list": "users:read",
    "users.info": "users:read",
    "usergroups.users.list": "usergroups:read",
    "conversations.open": "im:write",
    "chat.getPermalink": None,
    "views.publish": None,
    "views.open": None,
    "auth.test": None,
}


async def approve_everything(h: SlackHarness) -> list[str]:
    """Approve every open step by its owner, rotating reaction → button → command; returns how."""
    ways: list[str] = []
    for turn in range(80):
        await h.settle()
        awaiting = h.awaiting()
        if not awaiting:
            if h.step("soak").status is StepStatus.TIMING:
                h.clock.advance(15 * 60)
                await h.runtime.timers.fire()  # what the APScheduler job does at the deadline
                continue
            return ways
        step = awaiting[0]
        owner = h.owner(step)
        way = ("reaction", "button", "command")[turn % 3]
        if way == "reaction":
            response = await h.react(owner, h.request_in_slack(step.key).ts)
            assert response.status_code == 200
        elif way == "button":
            message = h.request_in_slack(step.key)
            response = await h.click(owner, message, f"{h.release().id}:{step.key}")
            assert response.status_code == 200
        else:
            reply = await h.command(owner, f"approve {step.key}")
            assert reply["response_type"] == "ephemeral"
            assert reply["text"].startswith("Approved"), reply
        await h.wait_step_moved(step)
        ways.append(way)
    raise AssertionError("the release did not finish")


async def test_whole_release_in_slack(served: SlackHarness) -> None:
    """start → every owner approves by reaction, button or command → complete, all in Slack."""
    h = served
    reply = await h.command(COMMANDER, "start v2.4.0 frontend=@frontend")
    assert reply == {
        "text": "Release v2.4.0 started. Watch the card in this channel.",
        "response_type": "ephemeral",
    }
    assert h.release().roles.frontend == FRONTEND  # a plain @name found through users.list
    ways = await approve_everything(h)
    assert {"reaction", "button", "command"} <= set(ways)
    assert h.release().all_done
    reply = await h.command(COMMANDER, "complete")
    assert reply["text"] == "Release completed."
    await h.settle()

    release = h.release()
    assert release.status is ReleaseStatus.COMPLETED and not release.frozen
    rows = h.rows()
    assert all(r.status in ("delivered", "superseded") for r in rows), [
        (r.id, r.kind, r.status, r.error) for r in rows if r.status not in ("delivered",)
    ]
    # The card is the first top-level message, kept up to date in place.
    card = h.fake.top_level(CHANNEL)[0]
    assert card.text.startswith("🎉 Release v2.4.0 — completed")
    assert len(card.history) > 10
    assert card.blocks and card.blocks[0]["type"] in ("header", "section")
    # Every step message sits in the card's thread and mentions its owner.
    replies = h.fake.replies(CHANNEL, card.ts)
    requests = [m for m in replies if "Approve" in json.dumps(m.blocks or [])]
    assert requests == []  # every Approve button was replaced once approved
    approved = [m for m in replies if m.history and m.text.startswith("✅")]
    assert len(approved) >= len(release.steps)
    assert all("<@U0" in m.history[0] for m in approved)
    # Announcements: freeze, completion, freeze lifted — in the announce channel, in order.
    announced = [m.text for m in h.fake.top_level(ANNOUNCE)]
    assert [t[:1] for t in announced] == ["🧊", "🎉", "🟢"]
    # Approvals are recorded with how they came in.
    vias = {a.via for a in h.store.approvals(release.id)}
    assert vias == {"reaction", "button", "command"}
    # Slack's pace: posts to one channel are at least a second apart.
    posts = [c.at for c in h.fake.calls_to("chat.postMessage") if c.params["channel"] == CHANNEL]
    gaps = [b - a for a, b in itertools.pairwise(posts)]
    assert min(gaps) >= timedelta(seconds=1)
    # Only scopes the manifest asks for were needed, and every asked-for scope has a use:
    # commands and reactions:read for what Slack sends, files:write for uploads (test_transport),
    # usergroups:read for roles.<role>_group (test_authority), im:write for reminders sent as
    # direct messages (test_stall).
    manifest = yaml.safe_load((ROOT / "manifest.yml").read_text(encoding="utf-8"))
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    unknown = {c.method for c in h.fake.calls} - SCOPE_OF.keys()
    assert not unknown, f"Web API methods with no scope on record here: {unknown}"
    used = {SCOPE_OF[c.method] for c in h.fake.calls} - {None}
    assert used <= scopes
    elsewhere = {"commands", "reactions:read", "files:write", "usergroups:read", "im:write"}
    assert scopes <= used | elsewhere
    assert "users:read" in used  # the plain @frontend above
    assert manifest["features"]["slash_commands"][0]["command"] == SLASH_COMMAND
    assert set(manifest["settings"]["event_subscriptions"]["bot_events"]) == set(EVENTS)


async def test_usage_errors_and_refusals_are_ephemeral(served: SlackHarness) -> None:
    """Unknown subcommands, bad arguments and refusals answer only the person who typed them."""
    h = served
    unknown = await h.command(COMMANDER, "frobnicate")
    assert unknown["response_type"] == "ephemeral"
    assert unknown["text"].startswith("I don't know `frobnicate`")
    bad = await h.command(COMMANDER, "start")
    assert bad["response_type"] == "ephemeral" and "Usage: `/golive start" in bad["text"]
    nobody = await h.command(COMMANDER, "start v2.4.0 backend=@nobody-here")
    assert "I don't know who `@nobody-here` is" in nobody["text"]
    await h.command(COMMANDER, "start v2.4.0")
    refused = await h.command(BACKEND, "abort not mine")
    assert refused == {
        "text": "only the commander (<@U0COMMAND>) can abort this release",
        "response_type": "ephemeral",
    }
    assert h.release().status is ReleaseStatus.ACTIVE


async def test_a_crashing_listener_answers_without_a_traceback(
    served: SlackHarness, monkeypatch: object
) -> None:
    """An exception inside /golive becomes a plain ephemeral apology, never a stack trace."""
    import bot.adapters.slack.app

    def explode(*args: object) -> None:
        raise RuntimeError("database on fire")

    monkeypatch.setattr(bot.adapters.slack.app, "dispatch", explode)  # type: ignore[attr-defined]
    reply = await served.command(COMMANDER, "status")
    assert reply["response_type"] == "ephemeral"
    assert reply["text"].startswith("golive hit an internal error")
    assert "Traceback" not in reply["text"] and "fire" not in reply["text"]


async def test_confirm_rollback_button_runs_only_for_on_call(
    fake_slack: FakeSlack, clock: FakeClock, tmp_path: Path
) -> None:
    """The Confirm rollback button on the plan is routed to the service like Approve: a
    stranger's click is refused only to them, on-call's rolls the release back."""
    rollback = {
        "github_workflow": {
            "workflow": "rollback.yml",
            "repository": "acme/platform",
            "inputs": {"service": "{service}", "tag": "{rollback_tag}"},
        }
    }
    config = slack_config(actions={"rollback": rollback})
    env = slack_env(fake_slack, GITHUB_TOKEN="ghp_unused_in_this_test")
    app = await create_server(config, env, clock=clock, database=str(tmp_path / "golive.db"))
    server = LoopbackServer(app)
    await server.start()
    h = SlackHarness(fake_slack, server, app[RUNTIME], app[INBOX], clock)
    try:
        await h.command(COMMANDER, "start v2.4.0")
        reply = await h.command(ON_CALL, "rollback 5xx doubled")
        assert reply["text"] == "The rollback plan is in the channel; confirm it there to run it."
        await h.settle()
        value = f"{h.release().id}:rollback"
        (plan,) = [
            m
            for m in fake_slack.posts(CHANNEL)
            if CONFIRM_ROLLBACK_ACTION in json.dumps(m.blocks or [])
        ]
        await h.click(COMMANDER, plan, value, CONFIRM_ROLLBACK_ACTION)
        await h.settle()
        assert h.release().status is ReleaseStatus.ACTIVE
        refusals = fake_slack.ephemerals(CHANNEL, user=COMMANDER)
        assert refusals[-1].text == (
            "only on-call (<@U0ONCALL1>) can confirm the rollback of this release"
        )
        await h.click(ON_CALL, plan, value, CONFIRM_ROLLBACK_ACTION)
        await h.until(
            lambda: h.release().status is ReleaseStatus.ROLLED_BACK, "the rollback to be confirmed"
        )
        await h.settle()
        assert "confirmed by <@U0ONCALL1>" in fake_slack.text(CHANNEL, plan.ts)
        confirmed = fake_slack.message(CHANNEL, plan.ts)
        assert confirmed is not None and CONFIRM_ROLLBACK_ACTION not in json.dumps(confirmed.blocks)
    finally:
        await h.runtime.service.close()
        await h.http.aclose()
        await server.stop()
