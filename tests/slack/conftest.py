"""The real served Slack app on loopback, a FakeSlack Web API, and Slack-signed requests."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from itertools import count
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from bot.adapters.slack.inbox import Inbox
from bot.adapters.slack.serve import INBOX, RUNTIME, create_server
from bot.domain.clock import FakeClock
from bot.domain.config import Config
from bot.domain.model import Release, Step, StepStatus
from bot.engine.runtime import Runtime
from bot.render.messages import APPROVE_ACTION
from bot.sandbox import FakeSlack, LoopbackServer, SlackMessage
from bot.sandbox.slack import DEFAULT_TOKEN, TEAM_ID
from bot.store import OutboxRow, Store
from tests.conftest import CHANNEL, STRANGER, make_config

ROOT = Path(__file__).resolve().parents[2]
SIGNING_SECRET = "e3b0c44298fc1c149afbf4c8996fb924-golive-test"
_ids = count(1)


def signature(body: bytes, timestamp: int, secret: str = SIGNING_SECRET) -> str:
    """Slack's v0 request signature: HMAC-SHA256 of `v0:{timestamp}:{body}`."""
    base = b"v0:" + str(timestamp).encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def signed_headers(
    body: bytes, content_type: str, *, timestamp: int | None = None, secret: str = SIGNING_SECRET
) -> dict[str, str]:
    """The headers Slack sends with a request: content type, timestamp and signature."""
    ts = int(time.time()) if timestamp is None else timestamp
    return {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": str(ts),
        "X-Slack-Signature": signature(body, ts, secret),
    }


def command_body(user: str, text: str, channel: str = CHANNEL, team: str = TEAM_ID) -> bytes:
    """A `/golive` slash-command payload, form-encoded as Slack sends it."""
    return urlencode(
        {
            "token": "legacy-verification-token",
            "team_id": team,
            "team_domain": "golive-sandbox",
            "channel_id": channel,
            "channel_name": "release",
            "user_id": user,
            "user_name": user.lower(),
            "command": "/golive",
            "text": text,
            "api_app_id": "A0GOLIVE",
            "response_url": "https://hooks.slack.invalid/commands/T0/1/x",
            "trigger_id": f"{next(_ids)}.1.abc",
        }
    ).encode()


def event_body(event: dict[str, Any], event_id: str | None = None, team: str = TEAM_ID) -> bytes:
    """An Events API `event_callback` envelope around `event`."""
    return json.dumps(
        {
            "token": "legacy-verification-token",
            "team_id": team,
            "api_app_id": "A0GOLIVE",
            "event": event,
            "type": "event_callback",
            "event_id": event_id or f"Ev{next(_ids):08d}",
            "event_time": int(time.time()),
            "authorizations": [
                {"team_id": team, "user_id": "U0GOLIVEBOT", "is_bot": True},
            ],
        }
    ).encode()


def reaction_event(
    user: str, ts: str, reaction: str = "white_check_mark", channel: str = CHANNEL
) -> dict[str, Any]:
    """A `reaction_added` event on a message."""
    return {
        "type": "reaction_added",
        "user": user,
        "reaction": reaction,
        "item": {"type": "message", "channel": channel, "ts": ts},
        "item_user": "U0GOLIVEBOT",
        "event_ts": f"{time.time():.6f}",
    }


def click_body(
    user: str,
    message: SlackMessage,
    value: str,
    action_id: str = APPROVE_ACTION,
    response_url: str = "https://hooks.slack.invalid/actions/T0/1/x",
    team: str = TEAM_ID,
    trigger_id: str | None = None,
) -> bytes:
    """A `block_actions` payload: `user` pressed a button on `message`."""
    payload = {
        "type": "block_actions",
        "team": {"id": team, "domain": "golive-sandbox"},
        "user": {"id": user, "username": user.lower(), "team_id": team},
        "api_app_id": "A0GOLIVE",
        "token": "legacy-verification-token",
        "container": {
            "type": "message",
            "message_ts": message.ts,
            "channel_id": message.channel,
            "is_ephemeral": False,
        },
        "trigger_id": trigger_id or f"{next(_ids)}.1.abc",
        "channel": {"id": message.channel, "name": "release"},
        "message": message.to_json(),
        "response_url": response_url,
        "actions": [
            {
                "type": "button",
                "action_id": action_id,
                "block_id": f"approve:{value}",
                "value": value,
                "text": {"type": "plain_text", "text": "Approve"},
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    return urlencode({"payload": json.dumps(payload)}).encode()


class SlackHarness:
    """The served golive app and the fake Slack around it, driven like Slack drives it."""

    def __init__(
        self,
        fake: FakeSlack,
        server: LoopbackServer,
        runtime: Runtime,
        inbox: Inbox,
        clock: FakeClock,
    ) -> None:
        self.inbox = inbox
        self.fake = fake
        self.server = server
        self.runtime = runtime
        self.clock = clock
        self.http = httpx.AsyncClient(base_url=server.url, timeout=10.0)

    @property
    def store(self) -> Store:
        """The app's database."""
        return self.runtime.store

    async def post(
        self, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        """POST a signed request to /slack/events (extra headers override the signed ones)."""
        sent = signed_headers(body, content_type)
        sent.update(headers or {})
        return await self.http.post("/slack/events", content=body, headers=sent)

    async def command(
        self, user: str, text: str, channel: str = CHANNEL, team: str = TEAM_ID
    ) -> dict[str, Any]:
        """Run `/golive <text>` as `user` (in workspace `team`); the JSON Slack would show them."""
        response = await self.post(
            command_body(user, text, channel, team), "application/x-www-form-urlencoded"
        )
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()
        return data

    async def event(
        self, event: dict[str, Any], event_id: str | None = None, **headers: str
    ) -> httpx.Response:
        """Deliver an Events API event."""
        return await self.post(event_body(event, event_id), "application/json", headers)

    async def react(
        self, user: str, ts: str, reaction: str = "white_check_mark", event_id: str | None = None
    ) -> httpx.Response:
        """`user` adds a reaction to the message `ts` in the release channel."""
        return await self.event(reaction_event(user, ts, reaction), event_id)

    async def click(
        self, user: str, message: SlackMessage, value: str, action_id: str = APPROVE_ACTION
    ) -> httpx.Response:
        """`user` presses a button (Approve unless named) on `message`, with a trigger_id the
        fake Slack issued (Slack's response_url points at the fake)."""
        body = click_body(
            user,
            message,
            value,
            action_id,
            f"{self.fake.url}/hooks/{user}",
            trigger_id=self.fake.trigger(user),
        )
        return await self.post(body, "application/x-www-form-urlencoded")

    async def submit(self, view_id: str, values: dict[str, dict[str, str]]) -> httpx.Response:
        """The person who opened the modal `view_id` submits it with these inputs, signed and
        form-encoded as Slack sends a view_submission."""
        payload = self.fake.submission(view_id, values)
        body = urlencode({"payload": json.dumps(payload)}).encode()
        return await self.post(body, "application/x-www-form-urlencoded")

    async def open_home(self, user: str, event_id: str | None = None) -> httpx.Response:
        """`user` opens golive's Home tab (the app_home_opened event Slack sends)."""
        event = {
            "type": "app_home_opened",
            "user": user,
            "channel": f"D0{user[1:9]}",
            "tab": "home",
            "event_ts": f"{time.time():.6f}",
        }
        return await self.event(event, event_id)

    async def until(self, condition: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
        """Wait for a condition (listeners run after the ack), failing after `timeout`."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not condition():
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            await asyncio.sleep(0.005)

    async def settle(self, timeout: float = 10.0) -> None:
        """Process the inbox, then deliver everything queued, jumping to each retry/pace time."""
        await asyncio.wait_for(self.inbox.join(), timeout)
        deadline = asyncio.get_running_loop().time() + timeout
        for outbox in self.runtime.outboxes:  # chat messages, then App Home views
            while outbox.pending():
                if asyncio.get_running_loop().time() > deadline:
                    raise AssertionError(f"{outbox.pending()} messages still pending")
                await outbox.flush()
                await asyncio.sleep(0)  # let the server's own tasks run between passes
                due = outbox.next_retry()
                if due is not None and due > self.clock.now():
                    self.clock.set(due)

    def release(self) -> Release:
        """The newest release in the release channel."""
        rid = self.store.latest_in_channel(CHANNEL)
        assert rid is not None
        return self.store.load(rid).release

    def step(self, key: str) -> Step:
        """One step of the newest release."""
        return self.release().step(key)

    def rows(self) -> list[OutboxRow]:
        """Every outbox row of the newest release."""
        return self.store.messages(self.release().id)

    def request_in_slack(self, key: str) -> SlackMessage:
        """The newest approval request of a step, as Slack shows it (the button is still on it)."""
        value = f"{self.release().id}:{key}"
        found = [
            m
            for m in self.fake.posts(CHANNEL)
            if f"approve:{value}" in json.dumps(m.blocks or [])  # not a reminder's Snooze
        ]
        assert found, f"no approval request for {key} in Slack"
        return found[-1]

    async def wait_step_moved(self, step: Step) -> None:
        """Wait until a step is no longer in the state it was in (status or stage changed)."""
        await self.until(
            lambda: (
                (self.step(step.key).status, self.step(step.key).stage) != (step.status, step.stage)
            ),
            f"{step.key} to move",
        )

    def awaiting(self) -> list[Step]:
        """Steps waiting on a person."""
        return [s for s in self.release().steps if s.status is StepStatus.AWAITING]

    def owner(self, step: Step) -> str:
        """The user id who owns a step in the newest release."""
        return self.release().roles.user(step.owner)

    async def approve_through(self, last: str) -> None:
        """Approve waiting steps by command, each as its owner, until step `last` is done."""
        for _ in range(80):
            if self.step(last).status is StepStatus.DONE:
                return
            awaiting = self.awaiting()
            assert awaiting, f"nothing waits on anyone before {last} is done"
            step = awaiting[0]
            reply = await self.command(self.owner(step), f"approve {step.key}")
            assert reply["text"].startswith("Approved"), reply
        raise AssertionError(f"{last} never got done")


def slack_config(**sections: Any) -> Config:
    """The shared test config (no automated checks) pointed at an in-memory database."""
    return make_config(database=":memory:", **sections)


@pytest.fixture
async def fake_slack(clock: FakeClock) -> AsyncIterator[FakeSlack]:
    """FakeSlack on loopback, on the test's fake clock, knowing the stranger too."""
    fake = FakeSlack(clock=clock.now)
    fake.add_user(STRANGER, "sam")
    await fake.start()
    yield fake
    await fake.stop()


def slack_env(fake: FakeSlack, **extra: str) -> dict[str, str]:
    """The environment `golive serve` reads, pointed at the fake."""
    env = {
        "SLACK_BOT_TOKEN": DEFAULT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": f"{fake.url}/api/",
    }
    env.update(extra)
    return env


@asynccontextmanager
async def serving(
    config: Config, fake: FakeSlack, clock: FakeClock, database: str = ":memory:", **env: str
) -> AsyncIterator[SlackHarness]:
    """The real golive web app for `config` on a loopback port, talking to `fake` (a database
    file runs writes on their own thread, as in production)."""
    app = await create_server(config, slack_env(fake, **env), clock=clock, database=database)
    server = LoopbackServer(app)
    await server.start()
    harness = SlackHarness(fake, server, app[RUNTIME], app[INBOX], clock)
    try:
        yield harness
    finally:
        await harness.http.aclose()
        await server.stop()


@pytest.fixture
async def served(
    fake_slack: FakeSlack, clock: FakeClock, tmp_path: Path
) -> AsyncIterator[SlackHarness]:
    """The real golive web app (Bolt, /healthz, /freeze, Runtime) on a loopback port, with its
    database in a file as in production (writes on their own thread)."""
    database = str(tmp_path / "golive.db")
    async with serving(slack_config(), fake_slack, clock, database) as harness:
        yield harness
