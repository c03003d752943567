"""FakeSlack answers like the Slack Web API, records every call and fails on command."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.sandbox import FakeClock, FakeSlack
from bot.sandbox.slack import DEFAULT_TOKEN

AUTH = {"Authorization": f"Bearer {DEFAULT_TOKEN}"}
CHANNEL = "C0RELEASE1"


@pytest.fixture
async def slack(clock: FakeClock) -> AsyncIterator[FakeSlack]:
    """A FakeSlack on the frozen clock."""
    async with FakeSlack(clock=clock) as fake:
        yield fake


async def call(
    client: httpx.AsyncClient, slack: FakeSlack, method: str, **params: Any
) -> dict[str, Any]:
    """POST a JSON body to a method with the right token; return the JSON answer."""
    response = await client.post(f"{slack.url}/api/{method}", json=params, headers=AUTH)
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


async def test_auth_is_required(slack: FakeSlack, client: httpx.AsyncClient) -> None:
    """A wrong token is invalid_auth, none is not_authed, both with HTTP 200."""
    wrong = await client.post(
        f"{slack.url}/api/auth.test", headers={"Authorization": "Bearer xoxb-wrong"}
    )
    assert (wrong.status_code, wrong.json()) == (200, {"ok": False, "error": "invalid_auth"})
    missing = await client.post(f"{slack.url}/api/auth.test")
    assert missing.json() == {"ok": False, "error": "not_authed"}
    assert (await call(client, slack, "auth.test"))["user_id"] == "U0GOLIVEBOT"


async def test_post_message_form_and_json(slack: FakeSlack, client: httpx.AsyncClient) -> None:
    """chat.postMessage accepts form or JSON, answers unique increasing ts, records both."""
    first = await call(client, slack, "chat.postMessage", channel=CHANNEL, text="one")
    form = await client.post(
        f"{slack.url}/api/chat.postMessage",
        data={"channel": CHANNEL, "text": "two", "blocks": '[{"type": "divider"}]'},
        headers=AUTH,
    )
    second = form.json()
    assert first["ok"] and second["ok"]
    assert first["channel"] == CHANNEL and first["message"]["text"] == "one"
    assert float(second["ts"]) > float(first["ts"])
    assert first["ts"] == "1795167000.000000"
    assert slack.texts(CHANNEL) == ["one", "two"]
    assert slack.posts(CHANNEL)[1].blocks == [{"type": "divider"}]
    assert [c.params["text"] for c in slack.calls_to("chat.postMessage")] == ["one", "two"]


async def test_threads_and_missing_channel(slack: FakeSlack, client: httpx.AsyncClient) -> None:
    """Replies carry thread_ts; a channel marked missing answers channel_not_found."""
    root = await call(client, slack, "chat.postMessage", channel=CHANNEL, text="card")
    await call(
        client, slack, "chat.postMessage", channel=CHANNEL, text="step", thread_ts=root["ts"]
    )
    assert [m.text for m in slack.replies(CHANNEL, root["ts"])] == ["step"]
    assert [m.text for m in slack.top_level(CHANNEL)] == ["card"]
    slack.remove_channel("C0GONE")
    gone = await call(client, slack, "chat.postMessage", channel="C0GONE", text="x")
    assert gone == {"ok": False, "error": "channel_not_found"}


async def test_update_keeps_current_text(slack: FakeSlack, client: httpx.AsyncClient) -> None:
    """chat.update replaces the text (history kept); an unknown ts is message_not_found."""
    posted = await call(client, slack, "chat.postMessage", channel=CHANNEL, text="⏳ preconditions")
    updated = await call(
        client, slack, "chat.update", channel=CHANNEL, ts=posted["ts"], text="✅ preconditions"
    )
    assert updated == {
        "ok": True,
        "channel": CHANNEL,
        "ts": posted["ts"],
        "text": "✅ preconditions",
        "message": updated["message"],
    }
    assert slack.text(CHANNEL, posted["ts"]) == "✅ preconditions"
    assert slack.message(CHANNEL, posted["ts"]).history == ["⏳ preconditions"]  # type: ignore[union-attr]
    missing = await call(client, slack, "chat.update", channel=CHANNEL, ts="1.000001", text="x")
    assert missing == {"ok": False, "error": "message_not_found"}


async def test_ephemeral_reactions_users_conversations(
    slack: FakeSlack, client: httpx.AsyncClient
) -> None:
    """postEphemeral, reactions.add, users.info/list and conversations.info answer like Slack."""
    eph = await call(
        client, slack, "chat.postEphemeral", channel=CHANNEL, user="U0BACKEND", text="only owner"
    )
    assert eph["ok"] and eph["message_ts"]
    assert [m.text for m in slack.ephemerals(user="U0BACKEND")] == ["only owner"]
    assert slack.posts(CHANNEL) == []
    root = await call(client, slack, "chat.postMessage", channel=CHANNEL, text="x")
    reaction = {"channel": CHANNEL, "timestamp": root["ts"], "name": "eyes"}
    assert await call(client, slack, "reactions.add", **reaction) == {"ok": True}
    assert (await call(client, slack, "reactions.add", **reaction))["error"] == "already_reacted"
    user = await call(client, slack, "users.info", user="U0ONCALL1")
    assert user["user"]["name"] == "oncall"
    assert (await call(client, slack, "users.info", user="U0NOBODY"))["error"] == "user_not_found"
    page = await call(client, slack, "users.list", limit=3)
    rest = await call(
        client, slack, "users.list", limit=3, cursor=page["response_metadata"]["next_cursor"]
    )
    assert len(page["members"]) + len(rest["members"]) == len(slack.users)
    assert rest["response_metadata"]["next_cursor"] == ""
    info = await call(client, slack, "conversations.info", channel=CHANNEL)
    assert info["channel"]["name"] == "release"


async def test_unknown_method(slack: FakeSlack, client: httpx.AsyncClient) -> None:
    """A method Slack does not have is unknown_method."""
    assert await call(client, slack, "chat.teleport") == {"ok": False, "error": "unknown_method"}


async def test_ratelimit_then_success(slack: FakeSlack, client: httpx.AsyncClient) -> None:
    """rate_limit(2) answers 429 + Retry-After twice, then the call goes through."""
    slack.rate_limit(2, retry_after=7)
    url = f"{slack.url}/api/chat.postMessage"
    message = {"channel": CHANNEL, "text": "freeze"}
    for _ in range(2):
        limited = await client.post(url, json=message, headers=AUTH)
        assert limited.status_code == 429
        assert limited.headers["Retry-After"] == "7"
        assert limited.json() == {"ok": False, "error": "ratelimited"}
    ok = await client.post(url, json=message, headers=AUTH)
    assert ok.json()["ok"]
    assert slack.texts(CHANNEL) == ["freeze"]
    assert [c.outcome for c in slack.calls_to("chat.postMessage")] == [
        "ratelimited",
        "ratelimited",
        "ok",
    ]


async def test_server_errors_until_a_time(
    slack: FakeSlack, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    """fail(503, until=t) answers 503 to every call until the clock passes t."""
    slack.fail(503, until=clock() + timedelta(seconds=30))
    url = f"{slack.url}/api/auth.test"
    assert (await client.post(url, headers=AUTH)).status_code == 503
    assert (await client.post(url, headers=AUTH)).status_code == 503
    clock.advance(31)
    assert (await client.post(url, headers=AUTH)).status_code == 200


async def test_fail_only_named_methods(slack: FakeSlack, client: httpx.AsyncClient) -> None:
    """A failure limited to chat.update leaves other methods alone."""
    slack.fail(500, calls=1, methods=["chat.update"])
    assert (await call(client, slack, "auth.test"))["ok"]
    response = await client.post(f"{slack.url}/api/chat.update", json={}, headers=AUTH)
    assert response.status_code == 500


async def test_dropped_connection(slack: FakeSlack, client: httpx.AsyncClient) -> None:
    """drop_connections(1) closes the socket without an answer, once."""
    slack.drop_connections(1)
    with pytest.raises(httpx.RemoteProtocolError):
        await client.post(f"{slack.url}/api/auth.test", headers=AUTH)
    assert (await call(client, slack, "auth.test"))["ok"]


async def test_files_upload_v2_with_slack_sdk(slack: FakeSlack) -> None:
    """slack_sdk's files_upload_v2 runs the three-step flow against the fake end to end."""
    web = AsyncWebClient(token=DEFAULT_TOKEN, base_url=f"{slack.url}/api/")
    report = b"# Release v2.4.0\n\nAll green.\n"
    response = await web.files_upload_v2(
        channel=CHANNEL, filename="release-v2.4.0.md", content=report, title="Release record"
    )
    assert response["ok"]
    assert response["files"][0]["title"] == "Release record"
    [upload] = slack.uploads(CHANNEL)
    assert (upload.content, upload.filename) == (report, "release-v2.4.0.md")
    posted = await web.chat_postMessage(channel=CHANNEL, text="done")
    assert posted["ts"]


async def test_slack_sdk_sees_rate_limits(slack: FakeSlack) -> None:
    """slack_sdk raises SlackApiError carrying status 429 and Retry-After from the fake."""
    web = AsyncWebClient(token=DEFAULT_TOKEN, base_url=f"{slack.url}/api/")
    slack.rate_limit(1, retry_after=3)
    with pytest.raises(SlackApiError) as raised:
        await web.chat_postMessage(channel=CHANNEL, text="x")
    assert raised.value.response.status_code == 429
    assert raised.value.response.headers["Retry-After"] == "3"


async def test_complete_upload_requires_uploaded_bytes(
    slack: FakeSlack, client: httpx.AsyncClient
) -> None:
    """completeUploadExternal for a file never uploaded is file_not_found."""
    url = await call(client, slack, "files.getUploadURLExternal", filename="a.md", length=3)
    assert url["upload_url"].startswith(slack.url)
    done = await call(
        client,
        slack,
        "files.completeUploadExternal",
        files=[{"id": url["file_id"]}],
        channel_id=CHANNEL,
    )
    assert done == {"ok": False, "error": "file_not_found"}


async def test_people_and_user_groups_answer_like_slack(
    slack: FakeSlack, client: httpx.AsyncClient
) -> None:
    """users.info tells deactivated accounts, bots, app users and other teams' users apart;
    usergroups.users.list lists members, hides disabled groups unless asked; a revoked scope
    is missing_scope naming it."""
    slack.add_user("U0GONE", "gone", deleted=True)
    slack.add_user("U0BOT", "deploybot", is_bot=True)
    slack.add_user("U0APP", "app", is_app_user=True)
    slack.add_user("U0EVE", "eve", team_id="T0ELSEWHR")
    gone = (await call(client, slack, "users.info", user="U0GONE"))["user"]
    assert gone["deleted"] is True and gone["is_bot"] is False
    bot = (await call(client, slack, "users.info", user="U0BOT"))["user"]
    assert bot["is_bot"] is True and bot["profile"]["bot_id"]
    assert (await call(client, slack, "users.info", user="U0APP"))["user"]["is_app_user"]
    assert (await call(client, slack, "users.info", user="U0EVE"))["user"]["team_id"] == "T0ELSEWHR"
    members = await call(client, slack, "users.list")
    assert {m["id"] for m in members["members"]} >= {"U0GONE", "U0BOT", "U0EVE"}

    slack.add_usergroup("S0ONCALL", ["U0ONCALL1"])
    slack.add_usergroup("S0OLD", ["U0GONE"], disabled=True)
    listed = await call(client, slack, "usergroups.users.list", usergroup="S0ONCALL")
    assert listed == {"ok": True, "users": ["U0ONCALL1"]}
    old = await call(client, slack, "usergroups.users.list", usergroup="S0OLD")
    assert old == {"ok": False, "error": "no_such_subteam"}
    shown = await call(
        client, slack, "usergroups.users.list", usergroup="S0OLD", include_disabled=True
    )
    assert shown["users"] == ["U0GONE"]
    none = await call(client, slack, "usergroups.users.list", usergroup="S0NOPE")
    assert none["error"] == "no_such_subteam"

    slack.revoke_scope("usergroups:read")
    refused = await call(client, slack, "usergroups.users.list", usergroup="S0ONCALL")
    assert refused == {"ok": False, "error": "missing_scope", "needed": "usergroups:read"}


MODAL = {
    "type": "modal",
    "callback_id": "stop",
    "title": {"type": "plain_text", "text": "Stop a step"},
    "submit": {"type": "plain_text", "text": "Stop it"},
    "blocks": [
        {
            "type": "input",
            "block_id": "reason",
            "label": {"type": "plain_text", "text": "Why?"},
            "element": {"type": "plain_text_input", "action_id": "text"},
        }
    ],
}


async def test_views_open_takes_a_trigger_once_within_three_seconds(
    slack: FakeSlack, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    """views.open exchanges a trigger_id Slack issued, once, within 3 s; a made-up one is
    invalid, a reused one exchanged, a late one expired; a modal Slack would reject (a title
    over 24 characters, an input without submit) is invalid_arguments."""
    made_up = await call(client, slack, "views.open", trigger_id="1.2.abc", view=MODAL)
    assert made_up["error"] == "invalid_trigger_id"
    trigger = slack.trigger("U0ONCALL1")
    long_title = {**MODAL, "title": {"type": "plain_text", "text": "x" * 25}}
    refused = await call(client, slack, "views.open", trigger_id=trigger, view=long_title)
    assert refused["error"] == "invalid_arguments" and refused["response_metadata"]["messages"]
    no_submit = {k: v for k, v in MODAL.items() if k != "submit"}
    refused = await call(client, slack, "views.open", trigger_id=trigger, view=no_submit)
    assert refused["error"] == "invalid_arguments"
    opened = await call(client, slack, "views.open", trigger_id=trigger, view=MODAL)
    assert opened["ok"] and opened["view"]["type"] == "modal"
    assert opened["view"]["callback_id"] == "stop" and opened["view"]["id"] in slack.views
    again = await call(client, slack, "views.open", trigger_id=trigger, view=MODAL)
    assert again["error"] == "exchanged_trigger_id"
    late = slack.trigger("U0ONCALL1")
    clock.advance(3.5)
    expired = await call(client, slack, "views.open", trigger_id=late, view=MODAL)
    assert expired["error"] == "expired_trigger_id"
    submitted = slack.submission(opened["view"]["id"], {"reason": {"text": "wrong build"}})
    assert submitted["type"] == "view_submission" and submitted["user"]["id"] == "U0ONCALL1"
    assert submitted["view"]["state"]["values"]["reason"]["text"]["value"] == "wrong build"


async def test_views_publish_conversations_open_and_permalinks(
    slack: FakeSlack, client: httpx.AsyncClient
) -> None:
    """views.publish needs a known user and a home view (not_enabled without the Home tab);
    conversations.open needs im:write, opens one conversation per person and says when it was
    open already; a thread reply's permalink names its thread."""
    home = {"type": "home", "blocks": [{"type": "divider"}]}
    unknown = await call(client, slack, "views.publish", user_id="U0NOBODY1", view=home)
    assert unknown["error"] == "invalid_arguments"
    assert (await call(client, slack, "views.publish", user_id="U0BACKEND", view=home))["ok"]
    assert slack.homes["U0BACKEND"]["blocks"] == home["blocks"]
    slack.home_tab_enabled = False
    off = await call(client, slack, "views.publish", user_id="U0BACKEND", view=home)
    assert off["error"] == "not_enabled"
    first = await call(client, slack, "conversations.open", users="U0BACKEND")
    second = await call(client, slack, "conversations.open", users="U0BACKEND")
    assert first["channel"]["id"] == second["channel"]["id"] and second["already_open"] is True
    assert (await call(client, slack, "conversations.open", users="U0NOBODY1"))["error"] == (
        "user_not_found"
    )
    slack.revoke_scope("im:write")
    missing = await call(client, slack, "conversations.open", users="U0BACKEND")
    assert (missing["error"], missing["needed"]) == ("missing_scope", "im:write")
    root = await call(client, slack, "chat.postMessage", channel=CHANNEL, text="card")
    reply = await call(
        client, slack, "chat.postMessage", channel=CHANNEL, text="r", thread_ts=root["ts"]
    )
    link = await call(client, slack, "chat.getPermalink", channel=CHANNEL, message_ts=reply["ts"])
    assert link["permalink"].endswith(f"?thread_ts={root['ts']}&cid={CHANNEL}")
