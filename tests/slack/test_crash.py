"""kill -9 between Slack's acknowledgment and golive's work: the inbox keeps what was acknowledged.

The real `python -m bot serve` talks to a fake Slack on loopback. The first process is started
with GOLIVE_TEST_INBOX_DELAY, so every acknowledged event waits in the inbox long enough to be
killed there — the window is made, not hoped for.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import yaml

from bot.adapters.slack.serve import INBOX_DELAY_ENV
from bot.sandbox import FakeSlack
from bot.sandbox.slack import DEFAULT_TOKEN
from tests.conftest import CHANNEL, COMMANDER, ON_CALL, config_dict
from tests.monitoring.realprom import eventually
from tests.monitoring.test_soak_real_prometheus import BotProcess, query
from tests.slack.conftest import (
    SIGNING_SECRET,
    command_body,
    event_body,
    reaction_event,
    signed_headers,
)

pytestmark = pytest.mark.slow


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    """A fake Slack Web API on loopback, on the real clock like the served process."""
    fake = FakeSlack()
    await fake.start()
    yield fake
    await fake.stop()


def _bot(tmp_path: Path, slack: FakeSlack, **extra: str) -> BotProcess:
    config = tmp_path / "golive.yml"
    data = config_dict(database=str(tmp_path / "golive.db"))
    config.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "GOLIVE_"))}
    env.update(
        SLACK_BOT_TOKEN=DEFAULT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=f"{slack.url}/api/",
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return BotProcess(config, env, tmp_path / "golive-serve.log")


async def _post(bot: BotProcess, body: bytes, content_type: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10.0) as http:
        return await http.post(
            f"http://127.0.0.1:{bot.port}/slack/events",
            content=body,
            headers=signed_headers(body, content_type),
        )


def _incidents_request(slack: FakeSlack) -> str | None:
    """The Slack ts of the 'No critical incident' approval request, once it was posted."""
    for message in slack.posts(CHANNEL):
        if "1:incidents" in json.dumps(message.blocks or []):
            return message.ts
    return None


def _step(db: Path, key: str) -> str:
    (row,) = query(db, "select status from steps where release_id = 1 and key = ?", key)
    return str(row["status"])


async def test_an_acknowledged_approval_survives_kill_9(tmp_path: Path, slack: FakeSlack) -> None:
    """On-call's approving reaction is acknowledged, golive is killed before working on it, and
    the restarted golive approves the step from its inbox, exactly once."""
    db = tmp_path / "golive.db"
    first = _bot(tmp_path, slack, **{INBOX_DELAY_ENV: "600"})
    first.start()
    try:
        await first.ready()
        started = await _post(
            first, command_body(COMMANDER, "start v2.4.0"), "application/x-www-form-urlencoded"
        )
        assert started.status_code == 200, started.text

        async def posted() -> str | None:
            return _incidents_request(slack)

        ts = await eventually(posted, timeout=30, what="the incidents approval request")
        reaction = event_body(reaction_event(ON_CALL, ts), event_id="Ev0KILLED")
        acked = await _post(first, reaction, "application/json")
        assert acked.status_code == 200
        (kept,) = query(db, "select status from inbox where key = 'event:Ev0KILLED'")
        assert kept["status"] == "pending"
        assert _step(db, "incidents") == "awaiting"
        first.kill9()
    finally:
        await first.stop()

    second = _bot(tmp_path, slack)
    second.start()
    try:
        await second.ready()

        async def approved() -> bool:
            return _step(db, "incidents") == "done"

        await eventually(approved, timeout=30, what="the approval after the restart")
        approvals = query(db, "select user, via from approvals where step_key = 'incidents'")
        assert [(a["user"], a["via"]) for a in approvals] == [(ON_CALL, "reaction")]
        (done,) = query(db, "select status from inbox where key = 'event:Ev0KILLED'")
        assert done["status"] == "done"
        again = await _post(second, reaction, "application/json")  # Slack's late retry
        assert again.status_code == 200
        assert len(query(db, "select id from approvals where step_key = 'incidents'")) == 1
    finally:
        await second.stop()
