"""`POST /github/webhook` on the served app: GitHub's signed deliveries set the gate at once;
anything unsigned, forged, foreign or oversized is refused and changes nothing."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.adapters.slack.serve import INBOX, RUNTIME, create_server, missing_environment
from bot.adapters.webhook import MAX_BODY
from bot.domain.clock import FakeClock
from bot.engine.runtime import Runtime
from bot.sandbox import FakeGitHub, FakeSlack, LoopbackServer
from bot.sandbox.github import DEFAULT_TOKEN
from checks.freeze import CONTEXT
from tests.conftest import CHANNEL, COMMANDER
from tests.slack.conftest import SlackHarness, slack_config, slack_env

REPOSITORY = "acme/platform"
CHECKS = ("python-services", "web-portal", "smoke-core-flow")
SECRET = "whsec-golive-test-4f1c0a9e"
STATUSES = f"/repos/{REPOSITORY}/statuses/"


@dataclass
class Served:
    """The served app with a fake GitHub whose repository webhook points at it."""

    harness: SlackHarness
    github: FakeGitHub
    url: str

    @property
    def runtime(self) -> Runtime:
        """golive's runtime."""
        return self.harness.runtime

    def shown(self, sha: str) -> str | None:
        """The merge-gate state GitHub shows on a commit."""
        status = self.github.latest_status(REPOSITORY, sha, CONTEXT)
        return status.state if status else None

    async def until_shown(self, sha: str, state: str, timeout: float = 5.0) -> float:
        """Seconds until GitHub shows `state` on `sha` (fails after `timeout`)."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        while self.shown(sha) != state:
            assert loop.time() - started < timeout, f"{sha[:7]} never showed {state}"
            await asyncio.sleep(0.005)
        return loop.time() - started

    async def send(
        self, event: str, payload: dict[str, Any], **headers: str
    ) -> httpx.Response:
        """POST a delivery signed with the right secret, unless `headers` say otherwise."""
        body = json.dumps(payload).encode()
        sent = {
            "Content-Type": "application/json",
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": f"d-{len(self.github.deliveries)}-{event}-{id(payload)}",
            "X-Hub-Signature-256": sign(body),
            **headers,
        }
        return await self.harness.http.post("/github/webhook", content=body, headers=sent)


def sign(body: bytes, secret: str = SECRET) -> str:
    """GitHub's X-Hub-Signature-256 for a body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def gate_section(github_url: str) -> dict[str, Any]:
    """preconditions.ci pointed at a GitHub, with the webhook secret configured."""
    return {
        "github_url": github_url,
        "repository": REPOSITORY,
        "required_checks": list(CHECKS),
        "wait": "2s",
        "poll_interval": "50ms",
        "freeze_branch": "main",
        "webhook_secret_env": "GITHUB_WEBHOOK_SECRET",
    }


@pytest.fixture
async def served(fake_slack: FakeSlack, clock: FakeClock, tmp_path: Path) -> AsyncIterator[Served]:
    """golive serving on loopback (its database in a file, written by its own thread); the fake
    GitHub has two open pulls and a webhook to golive."""
    github = FakeGitHub(clock=clock.now)
    for name in CHECKS:
        github.set_check_run(REPOSITORY, "main", name)
    github.add_pull(REPOSITORY, "Partner search: paginate results")
    github.add_pull(REPOSITORY, "Invoice PDF: add footer")
    await github.start()
    config = slack_config(preconditions={"ci": gate_section(github.url)})
    env = slack_env(
        fake_slack, GITHUB_TOKEN=DEFAULT_TOKEN, GITHUB_WEBHOOK_SECRET=SECRET
    )
    database = str(tmp_path / "golive.db")
    app = await create_server(config, env, clock=clock, database=database, gate_pace=0.0)
    server = LoopbackServer(app)
    await server.start()
    harness = SlackHarness(fake_slack, server, app[RUNTIME], app[INBOX], clock)
    try:
        yield Served(harness, github, f"{server.url}/github/webhook")
    finally:
        await harness.http.aclose()
        await server.stop()
        await github.stop()


async def _freeze(s: Served) -> None:
    """Start v2.4.0 and approve through the freeze step (CI runs against the fake)."""
    h = s.harness
    await h.command(COMMANDER, "start v2.4.0")
    await h.until(lambda: h.step("ci").status.value == "done", "CI to pass")
    await h.approve_through("freeze")


async def test_a_signed_webhook_sets_the_status_within_a_second(served: Served) -> None:
    """A pull request opened during a freeze is marked `failure` within a second of GitHub's
    delivery, through the served app; allowed by the commander in Slack it turns `success`, and
    a push to it (another delivery) freezes its new head within a second."""
    s = served
    hook = await s.github.add_webhook(REPOSITORY, s.url, SECRET)
    assert s.github.deliveries[-1].status == 200  # the ping GitHub sends a new webhook
    await _freeze(s)
    for pull in s.github.repo(REPOSITORY).pulls:
        await s.until_shown(pull.head_sha, "failure")
    pull = await s.github.open_pull(REPOSITORY, "Late feature")
    delivery = s.github.deliveries[-1]
    assert (delivery.event, delivery.action) == ("pull_request", "opened")
    assert delivery.hook_id == hook.id
    assert delivery.status == 202, delivery.answer
    assert await s.until_shown(pull.head_sha, "failure") < 1.0
    status = s.github.latest_status(REPOSITORY, pull.head_sha, CONTEXT)
    assert status is not None and "release v2.4.0" in (status.description or "")

    first = pull.head_sha
    reply = await s.harness.command(COMMANDER, f"freeze allow {pull.number} hotfix for billing")
    allowed = f"Pull request #{pull.number} (head {first[:7]}) may merge during the freeze."
    assert reply["text"] == allowed
    await s.until_shown(first, "success")
    pushed = await s.github.push(REPOSITORY, pull.number)
    assert s.github.deliveries[-1].status == 202
    assert await s.until_shown(pushed.head_sha, "failure") < 1.0
    assert s.shown(first) == "success"
    await s.harness.settle()
    texts = [m.text for m in s.harness.fake.posts(CHANNEL)]
    assert any(f"Pull request #{pull.number} has a new head" in t for t in texts)


async def test_outside_a_freeze_a_new_pull_gets_success_at_once(served: Served) -> None:
    """Without a freeze, a pull request opened now gets `success` within a second."""
    s = served
    await s.github.add_webhook(REPOSITORY, s.url, SECRET)
    pull = await s.github.open_pull(REPOSITORY, "Docs typo")
    assert s.github.deliveries[-1].status == 202
    assert await s.until_shown(pull.head_sha, "success") < 1.0


async def test_forged_unsigned_and_foreign_deliveries_change_nothing(served: Served) -> None:
    """Unsigned, wrongly signed, tampered, foreign-repository, oversized and non-JSON
    deliveries are refused with 4xx: nothing is posted, queued or remembered."""
    s = served
    gate = s.runtime.freeze
    await gate.sync()  # the start-up sweep, so that only deliveries could post more
    before = len(s.github.requests_to(STATUSES, "POST"))
    pull = s.github.add_pull(REPOSITORY, "Sneaky change")
    payload = {
        "action": "opened",
        "number": pull.number,
        "pull_request": {
            "number": pull.number,
            "state": "open",
            "head": {"sha": pull.head_sha},
            "base": {"ref": "main"},
        },
        "repository": {"full_name": REPOSITORY},
    }
    body = json.dumps(payload).encode()
    foreign = {**payload, "repository": {"full_name": "mallory/platform"}}
    refused = {
        "unsigned": await s.send("pull_request", payload, **{"X-Hub-Signature-256": ""}),
        "wrong secret": await s.send(
            "pull_request", payload, **{"X-Hub-Signature-256": sign(body, "guessed")}
        ),
        "sha1 only": await s.send(
            "pull_request", payload, **{"X-Hub-Signature-256": "sha1=" + "0" * 40}
        ),
        "tampered": await s.send(
            "pull_request", payload, **{"X-Hub-Signature-256": sign(body + b" ")}
        ),
        "foreign": await s.send("pull_request", foreign),
    }
    assert {k: r.status_code for k, r in refused.items()} == {
        "unsigned": 401,
        "wrong secret": 401,
        "sha1 only": 401,
        "tampered": 401,
        "foreign": 403,
    }
    big = b'{"pad": "' + b"x" * (MAX_BODY + 10) + b'"}'
    oversized = await s.harness.http.post(
        "/github/webhook",
        content=big,
        headers={
            "Content-Type": "application/json",
            "X-GitHub-Event": "pull_request",
            "X-GitHub-Delivery": "big",
            "X-Hub-Signature-256": sign(big),
        },
    )
    assert oversized.status_code == 413
    form = await s.harness.http.post(
        "/github/webhook",
        content=b"payload=%7B%7D",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-GitHub-Event": "pull_request",
            "X-GitHub-Delivery": "form",
            "X-Hub-Signature-256": sign(b"payload=%7B%7D"),
        },
    )
    assert form.status_code == 415 and "application/json" in form.json()["error"]
    await asyncio.sleep(0.2)
    assert len(s.github.requests_to(STATUSES, "POST")) == before
    assert s.shown(pull.head_sha) is None
    assert gate.queued() == []
    seen = s.runtime.store.db.execute(
        "select count(*) from seen_events where key like 'github:%'"
    ).fetchone()
    assert seen == (0,)


async def test_ping_other_events_and_redeliveries(served: Served) -> None:
    """`ping` is answered, other events are acknowledged and ignored, and a redelivery (same
    X-GitHub-Delivery) is answered without being judged again."""
    s = served
    await s.github.add_webhook(REPOSITORY, s.url, SECRET)
    ping = s.github.deliveries[-1]
    assert (ping.event, ping.status, json.loads(ping.answer)) == (
        "ping",
        200,
        {"ok": True, "pong": True},
    )
    issues = await s.send("issues", {"action": "opened", "repository": {"full_name": REPOSITORY}})
    assert issues.status_code == 200 and "does not act on issues" in issues.json()["ignored"]
    pull = await s.github.open_pull(REPOSITORY, "Late feature")
    await s.until_shown(pull.head_sha, "success")
    posted = len(s.github.requests_to(STATUSES, "POST"))
    again = await s.github.redeliver(s.github.deliveries[-1])
    assert again.status == 200 and json.loads(again.answer)["duplicate"] is True
    closed = await s.github.deliver_pull(REPOSITORY, pull, "closed")
    assert closed[0].status == 200 and "ignored" in json.loads(closed[0].answer)
    await asyncio.sleep(0.2)
    assert len(s.github.requests_to(STATUSES, "POST")) == posted


def test_a_configured_webhook_secret_must_be_set(fake_slack: FakeSlack) -> None:
    """`golive serve` names the webhook secret's variable when the config asks for one."""
    config = slack_config(preconditions={"ci": gate_section("https://api.github.com")})
    env = slack_env(fake_slack, GITHUB_TOKEN=DEFAULT_TOKEN)
    assert ("GITHUB_WEBHOOK_SECRET", "preconditions.ci.webhook_secret_env") in (
        missing_environment(env, config, socket_mode=False)
    )
