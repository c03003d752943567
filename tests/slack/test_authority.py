"""Nobody takes authority they were not given: role holders are real people of this workspace
(and of the role's user group), and only this workspace may talk to golive."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from bot.domain.clock import FakeClock
from bot.domain.model import ReleaseStatus
from bot.sandbox import FakeSlack
from tests.conftest import BACKEND, CHANNEL, COMMANDER, ON_CALL, STRANGER
from tests.slack.conftest import (
    SlackHarness,
    click_body,
    event_body,
    reaction_event,
    serving,
    slack_config,
)

NOBODY = "U0NOBODY1"
GONE = "U0GONE001"
ROBOT = "U0ROBOT01"
APP = "U0APPUSER"
OUTSIDER = "U0OUTSIDE"
ELSEWHERE = "T0ELSEWHR"
GRID_TWO = "T0GRIDTWO"
ONCALL_ROTA = "S0ONCALL1"
RELEASE_LEADS = "S0RELEASE"


@pytest.fixture
async def slack(fake_slack: FakeSlack) -> FakeSlack:
    """The fake Slack with a deactivated account, a bot, an app user and a Slack Connect guest."""
    fake_slack.add_user(GONE, "gone", deleted=True)
    fake_slack.add_user(ROBOT, "deploybot", is_bot=True)
    fake_slack.add_user(APP, "someapp", is_app_user=True)
    fake_slack.add_user(OUTSIDER, "eve", team_id=ELSEWHERE)
    fake_slack.add_usergroup(ONCALL_ROTA, [ON_CALL, BACKEND])
    fake_slack.add_usergroup(RELEASE_LEADS, [COMMANDER, BACKEND])
    return fake_slack


@pytest.fixture
async def guarded(slack: FakeSlack, clock: FakeClock) -> AsyncIterator[SlackHarness]:
    """The served app with an on-call rota, release leads and a second Grid workspace."""
    config = slack_config(
        roles={
            "on_call": ON_CALL,
            "backend": BACKEND,
            "frontend": "U0FRONTEN",
            "on_call_group": ONCALL_ROTA,
        },
        slack={"release_channels": [CHANNEL], "allowed_team_ids": [GRID_TWO]},
    )
    async with serving(config, slack, clock) as harness:
        yield harness


def _nothing_started(h: SlackHarness) -> bool:
    return h.store.latest_in_channel(CHANNEL) is None


@pytest.mark.parametrize(
    ("who", "why"),
    [
        (NOBODY, f"`{NOBODY}` is not a user of this workspace, so they cannot be the backend"),
        (GONE, f"<@{GONE}> is deactivated in Slack, so they cannot be the backend owner"),
        (ROBOT, f"<@{ROBOT}> is a bot or an app, and the backend owner must be a person"),
        (APP, f"<@{APP}> is a bot or an app, and the backend owner must be a person"),
        (OUTSIDER, f"<@{OUTSIDER}> belongs to another workspace, so they cannot be the backend"),
        ("USLACKBOT", "<@USLACKBOT> is a bot or an app"),
    ],
)
async def test_a_role_override_must_name_an_active_person_here(
    slack: FakeSlack, guarded: SlackHarness, who: str, why: str
) -> None:
    """`backend=` naming an unknown id, a deactivated account, a bot, an app or someone of
    another workspace is refused after users.info, and no release starts."""
    if who == "USLACKBOT":
        slack.add_user("USLACKBOT", "slackbot")  # users.info says is_bot false for Slackbot
    reply = await guarded.command(COMMANDER, f"start v2.4.0 backend=<@{who}>")
    assert reply["response_type"] == "ephemeral"
    assert why in reply["text"], reply["text"]
    assert _nothing_started(guarded)
    assert sorted(c.params["user"] for c in slack.calls_to("users.info")) == sorted(
        [COMMANDER, who]
    )


async def test_anyone_cannot_make_themselves_on_call_and_roll_back(
    guarded: SlackHarness,
) -> None:
    """Mallory, a real person here but not on the on-call rota, cannot name herself on-call;
    in the release she may start, the rollback stays on-call's."""
    h = guarded
    reply = await h.command(STRANGER, f"start v2.4.0 on_call=<@{STRANGER}|mallory>")
    assert reply["text"] == (
        f"only members of the Slack user group `{ONCALL_ROTA}` (roles.on_call_group) may be "
        f"on-call, and <@{STRANGER}> is not one"
    )
    assert _nothing_started(h)
    reply = await h.command(STRANGER, f"start v2.4.0 on_call=<@{BACKEND}|bob>")
    assert reply["text"].startswith("Release v2.4.0 started"), reply
    assert h.release().roles.on_call == BACKEND  # a member of the rota may be named
    refused = await h.command(STRANGER, "rollback because I can")
    assert refused["text"] == f"only on-call (<@{BACKEND}>) can rollback this release"
    assert h.release().status is ReleaseStatus.ACTIVE


async def test_commander_key_names_a_vetted_commander(guarded: SlackHarness) -> None:
    """`commander=` hands the release to a real person at once; a nonexistent one is refused, so
    no release can be locked under a commander who does not exist."""
    h = guarded
    reply = await h.command(COMMANDER, f"start v2.4.0 commander=<@{NOBODY}>")
    assert f"`{NOBODY}` is not a user of this workspace" in reply["text"]
    assert _nothing_started(h)
    reply = await h.command(COMMANDER, f"start v2.4.0 commander=<@{BACKEND}|bob>")
    assert reply["text"].startswith("Release v2.4.0 started")
    assert h.release().roles.commander == BACKEND
    assert (await h.command(BACKEND, "abort changed plans"))["text"] == "Release aborted."


async def test_handover_only_to_an_active_person_here(
    slack: FakeSlack, guarded: SlackHarness
) -> None:
    """A handover to a nonexistent id, a bot or a deactivated account is refused and the
    commander stays; a handover to a colleague goes through."""
    h = guarded
    await h.command(COMMANDER, "start v2.4.0")
    for target, words in ((NOBODY, "is not a user"), (ROBOT, "bot"), (GONE, "deactivated")):
        reply = await h.command(COMMANDER, f"handover <@{target}>")
        assert words in reply["text"], reply
        assert h.release().roles.commander == COMMANDER
    reply = await h.command(COMMANDER, f"handover <@{BACKEND}|bob>")
    assert reply["text"] == f"<@{BACKEND}> is now the commander."
    assert h.release().roles.commander == BACKEND
    # Only the commander may hand over, and nobody else gets to probe the directory that way.
    before = len(slack.calls_to("users.info"))
    assert "only the commander" in (await h.command(STRANGER, f"handover <@{ROBOT}>"))["text"]
    assert len(slack.calls_to("users.info")) == before


async def test_commander_group_binds_the_person_starting(
    slack: FakeSlack, clock: FakeClock
) -> None:
    """With `roles.commander_group`, someone outside it cannot start as commander but may start a
    release for a commander from the group (`commander=`)."""
    config = slack_config(
        roles={
            "on_call": ON_CALL,
            "backend": BACKEND,
            "frontend": "U0FRONTEN",
            "commander_group": RELEASE_LEADS,
        }
    )
    async with serving(config, slack, clock) as h:
        reply = await h.command(STRANGER, "start v2.4.0")
        assert reply["text"] == (
            f"only members of the Slack user group `{RELEASE_LEADS}` (roles.commander_group) may "
            f"be the commander, and <@{STRANGER}> (you, starting the release) is not one (name a "
            "commander from it with `commander=@user`)"
        )
        assert _nothing_started(h)
        reply = await h.command(STRANGER, f"start v2.4.0 commander=<@{COMMANDER}>")
        assert reply["text"].startswith("Release v2.4.0 started")
        assert h.release().roles.commander == COMMANDER
        refused = await h.command(COMMANDER, f"handover <@{STRANGER}>")
        assert "roles.commander_group" in refused["text"]
    assert len(slack.calls_to("usergroups.users.list")) == 1  # members are kept for a minute


async def test_a_failed_lookup_refuses(slack: FakeSlack, guarded: SlackHarness) -> None:
    """users.info failing refuses the start with the reason: nobody is accepted blindly."""
    slack.fail(500, methods=["users.info"], calls=2)
    reply = await guarded.command(COMMANDER, f"start v2.4.0 backend=<@{BACKEND}>")
    assert reply["text"].startswith(
        f"golive could not check with Slack whether `{COMMANDER}` may be the commander"
    )
    assert "nothing was changed; try again in a moment" in reply["text"]
    assert _nothing_started(guarded)


async def test_a_slack_connect_guest_cannot_start_and_command(guarded: SlackHarness) -> None:
    """Someone of another workspace who can type in a shared release channel cannot become
    commander by starting a release: the person starting is looked up too."""
    reply = await guarded.command(OUTSIDER, "start v2.4.0")
    assert reply["text"] == (
        f"<@{OUTSIDER}> belongs to another workspace, so they cannot be the commander here"
    )
    assert _nothing_started(guarded)


async def test_a_missing_scope_refuses(slack: FakeSlack, guarded: SlackHarness) -> None:
    """Without the usergroups:read scope the on-call rota cannot be read, so even the default
    on-call is not accepted, and the refusal names the scope to add."""
    slack.revoke_scope("usergroups:read")
    reply = await guarded.command(COMMANDER, "start v2.4.0")
    assert "missing_scope usergroups:read: add it to the app and reinstall" in reply["text"]
    assert _nothing_started(guarded)


async def test_requests_from_another_workspace_are_refused(
    slack: FakeSlack, guarded: SlackHarness
) -> None:
    """A validly signed command, reaction or click made in another workspace changes nothing;
    the command is told why. A workspace in `slack.allowed_team_ids` is served."""
    h = guarded
    reply = await h.command(COMMANDER, "start v2.4.0", team=ELSEWHERE)
    assert reply == {
        "response_type": "ephemeral",
        "text": f"golive serves only the workspace it is installed in, not workspace "
        f"`{ELSEWHERE}`; nothing was done",
    }
    assert _nothing_started(h)
    await h.command(COMMANDER, "start v2.4.0", team=GRID_TWO)  # the organisation's other workspace
    await h.settle()
    request = h.request_in_slack("notes")
    value = f"{h.release().id}:notes"
    response = await h.post(
        event_body(reaction_event(COMMANDER, request.ts), team=ELSEWHERE), "application/json"
    )
    assert response.status_code == 200
    click = click_body(COMMANDER, request, value, team=ELSEWHERE)
    response = await h.post(click, "application/x-www-form-urlencoded")
    assert response.status_code == 200 and response.text == ""
    await h.settle()
    assert h.step("notes").status.value == "awaiting"
    response = await h.react(COMMANDER, request.ts)  # from golive's own workspace
    assert response.status_code == 200
    await h.settle()
    assert h.step("notes").status.value == "done"


async def test_commands_wait_until_golive_knows_its_workspace(
    slack: FakeSlack, clock: FakeClock
) -> None:
    """While auth.test cannot be answered, golive cannot tell its workspace and takes no command."""
    slack.fail(500, methods=["auth.test"], until=clock.now() + timedelta(hours=1))
    async with serving(slack_config(), slack, clock) as h:
        reply = await h.command(COMMANDER, "start v2.4.0")
        assert reply["text"].startswith("golive cannot confirm which Slack workspace it serves")
        assert _nothing_started(h)
