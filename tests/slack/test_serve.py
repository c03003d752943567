"""`golive serve`: /healthz, /freeze, Socket Mode wiring, start-up errors, manifest, Dockerfile."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import yaml

from bot.adapters.cli import main
from bot.adapters.slack.app import ACTIONS, EVENTS, SLASH_COMMAND, VIEWS
from bot.adapters.slack.serve import create_server
from bot.domain.clock import FakeClock
from bot.render.messages import (
    APPROVE_ACTION,
    CONFIRM_ROLLBACK_ACTION,
    SNOOZE_ACTION,
    STOP_ACTION,
    STOP_VIEW,
)
from bot.sandbox import FakeSlack, LoopbackServer
from tests.conftest import BACKEND, COMMANDER, ON_CALL, config_dict
from tests.slack.conftest import ROOT, SlackHarness, reaction_event, slack_config, slack_env


async def _until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_healthz_reports_database_and_scheduler(served: SlackHarness) -> None:
    """/healthz is 200 with database and scheduler state, 503 once the scheduler stops."""
    response = await served.http.get("/healthz")
    assert response.status_code == 200
    health = response.json()
    assert health["database"] == "ok" and health["scheduler"] == "running"
    assert health["outbox_pending"] == 0
    for _ in range(500):  # auth.test runs in the background after start-up
        if (await served.http.get("/healthz")).json()["slack_auth"] == "ok":
            break
        await asyncio.sleep(0.01)
    else:
        raise AssertionError("auth.test never succeeded")
    served.runtime.timers.shutdown()
    stopped = await served.http.get("/healthz")
    assert stopped.status_code == 503 and stopped.json()["scheduler"] == "stopped"


async def test_freeze_follows_the_release(served: SlackHarness) -> None:
    """/freeze: not frozen → frozen with release, reason, since → kept on rollback → lifted."""
    h = served
    assert (await h.http.get("/freeze")).json() == {
        "frozen": False,
        "release": None,
        "reason": None,
        "since": None,
    }
    await h.command(COMMANDER, "start v2.4.0")
    await h.approve_through("preflight")
    assert (await h.http.get("/freeze")).json()["frozen"] is False
    await h.command(COMMANDER, "approve freeze")
    frozen = (await h.http.get("/freeze")).json()
    assert frozen == {
        "frozen": True,
        "release": "v2.4.0",
        "reason": "Merges frozen for release v2.4.0 until it completes "
        "(commander U0COMMAND, channel C0RELEASE1)",
        "since": "2026-11-27T12:00:00+00:00",
    }
    await h.command(ON_CALL, "rollback 5xx doubled")
    rolled_back = (await h.http.get("/freeze")).json()
    assert rolled_back["frozen"] is True
    assert rolled_back["reason"].startswith("Merges frozen: release v2.4.0 was rolled back")
    await h.command(COMMANDER, "unfreeze")
    assert (await h.http.get("/freeze")).json()["frozen"] is False


async def test_socket_mode_serves_health_and_no_http_events(
    fake_slack: FakeSlack, clock: FakeClock
) -> None:
    """--socket-mode: connects with SLACK_APP_TOKEN, serves /healthz, has no /slack/events."""
    env = slack_env(fake_slack, SLACK_APP_TOKEN="xapp-1-A0GOLIVE-test")
    del env["SLACK_SIGNING_SECRET"]
    app = await create_server(
        slack_config(), env, socket_mode=True, clock=clock, database=":memory:"
    )
    async with LoopbackServer(app) as server, httpx.AsyncClient(base_url=server.url) as http:
        assert (await http.get("/healthz")).status_code == 200
        assert (await http.get("/freeze")).json()["frozen"] is False
        events = await http.post("/slack/events", content=b"{}")
        assert events.status_code in (404, 405)
        await _until(lambda: bool(fake_slack.calls_to("apps.connections.open")))
        (opened, *_) = fake_slack.calls_to("apps.connections.open")
        assert opened.headers["authorization"] == "Bearer xapp-1-A0GOLIVE-test"


def _config_file(tmp_path: Path, **sections: object) -> str:
    path = tmp_path / "golive.yml"
    data = config_dict(database=str(tmp_path / "golive.db"), **sections)
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(
    ("drop", "args", "named"),
    [
        ("SLACK_BOT_TOKEN", [], "SLACK_BOT_TOKEN"),
        ("SLACK_SIGNING_SECRET", [], "SLACK_SIGNING_SECRET"),
        ("SLACK_APP_TOKEN", ["--socket-mode"], "SLACK_APP_TOKEN"),
    ],
)
def test_missing_variable_is_named_with_exit_code_2(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    drop: str,
    args: list[str],
    named: str,
) -> None:
    """A missing token or secret is reported by name on stderr; exit code 2, no traceback."""
    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN"):
        monkeypatch.setenv(name, "set")
    monkeypatch.delenv(drop)
    code = main(["serve", "--config", _config_file(tmp_path), "--port", "0", *args])
    err = capsys.readouterr().err
    assert code == 2
    assert f"environment variable {named} is not set" in err
    assert "Traceback" not in err


def test_missing_config_secret_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A secret the config names (here the CI token) is reported with its field path."""
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "s")
    monkeypatch.delenv("GOLIVE_CI_TOKEN", raising=False)
    ci = {
        "github_url": "https://api.github.com",
        "repository": "acme/platform",
        "ref": "release",
        "token_env": "GOLIVE_CI_TOKEN",
        "required_checks": ["build"],
    }
    config = _config_file(tmp_path, preconditions={"ci": ci})
    assert main(["serve", "--config", config, "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "GOLIVE_CI_TOKEN is not set (preconditions.ci.token_env)" in err


@pytest.mark.parametrize(
    ("secret", "said"),
    [
        ("   ", "SLACK_SIGNING_SECRET is only whitespace"),
        ("0123456789abcdef", "SLACK_SIGNING_SECRET is 16 characters long; Slack's"),
        (" " + "a" * 32, "SLACK_SIGNING_SECRET has spaces or a line break around it"),
    ],
)
def test_a_signing_secret_slack_never_issued_is_refused_by_name(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    secret: str,
    said: str,
) -> None:
    """A blank, padded or too short signing secret stops `serve` at start-up (exit 2), named
    and never shown."""
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", secret)
    assert main(["serve", "--config", _config_file(tmp_path), "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert said in err and "serving on" not in err
    if secret.strip():
        assert secret.strip() not in err


@pytest.mark.parametrize("damage", ["corrupt", "missing directory", "a directory"])
def test_an_unusable_database_stops_serve_before_it_serves(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    damage: str,
) -> None:
    """A corrupt database file, or one that cannot be created or written, is named at start-up
    with exit 2: no "serving on…", no traceback."""
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "e3b0c44298fc1c149afbf4c8996fb924")
    path = tmp_path / "golive.db"
    if damage == "corrupt":
        path.write_bytes(b"this is not a SQLite database " * 200)
    elif damage == "missing directory":
        path = tmp_path / "nowhere" / "golive.db"
    else:
        path.mkdir()
    config = tmp_path / "golive.yml"
    config.write_text(yaml.safe_dump(config_dict(database=str(path))), encoding="utf-8")
    assert main(["serve", "--config", str(config), "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert f"golive serve: cannot use the database {path} (" in err
    assert "serving on" not in err and "Traceback" not in err


@pytest.mark.slow
def test_the_real_command_line_reports_the_missing_secret(tmp_path: Path) -> None:
    """`python -m bot serve` in a clean environment: stderr names the variable, exit 2."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLACK_")}
    env["SLACK_BOT_TOKEN"] = "xoxb-1"
    result = subprocess.run(
        [sys.executable, "-m", "bot", "serve", "--config", _config_file(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "SLACK_SIGNING_SECRET is not set" in result.stderr
    assert "Traceback" not in result.stderr


def _manifest() -> dict[str, object]:
    data = yaml.safe_load((ROOT / "manifest.yml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_manifest_declares_what_the_app_handles() -> None:
    """The manifest's command, events and interactivity are exactly what create_app registers."""
    manifest = _manifest()
    features = manifest["features"]
    settings = manifest["settings"]
    assert isinstance(features, dict) and isinstance(settings, dict)
    commands = {c["command"] for c in features["slash_commands"]}
    assert commands == {SLASH_COMMAND}
    (command,) = features["slash_commands"]
    assert command["usage_hint"] and command["should_escape"] is True
    assert set(settings["event_subscriptions"]["bot_events"]) == set(EVENTS)
    assert settings["interactivity"]["is_enabled"] is True
    assert ACTIONS == (APPROVE_ACTION, CONFIRM_ROLLBACK_ACTION, STOP_ACTION, SNOOZE_ACTION)
    assert VIEWS == (STOP_VIEW,)
    home = features["app_home"]
    assert home["home_tab_enabled"] is True and "app_home_opened" in EVENTS
    assert home["messages_tab_read_only_enabled"] is True
    assert settings["socket_mode_enabled"] is False
    urls = {
        command["url"],
        settings["event_subscriptions"]["request_url"],
        settings["interactivity"]["request_url"],
    }
    assert {u.rsplit("/", 2)[-2:] == ["slack", "events"] for u in urls} == {True}
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])  # type: ignore[index]
    assert scopes == {
        "commands",
        "chat:write",
        "reactions:read",
        "users:read",
        "usergroups:read",
        "files:write",
        "im:write",
    }


async def test_the_served_app_handles_exactly_the_manifest(served: SlackHarness) -> None:
    """Each declared command, event and action is answered; an undeclared one is not (404)."""
    h = served
    manifest = _manifest()
    settings = manifest["settings"]
    assert isinstance(settings, dict)
    for event in settings["event_subscriptions"]["bot_events"]:
        response = await h.event({**reaction_event(BACKEND, "1.000001"), "type": event})
        assert response.status_code == 200, event
    assert (await h.command(COMMANDER, "help"))["text"].startswith("*golive*")
    for undeclared in ("reaction_removed", "message", "app_mention"):
        response = await h.event({**reaction_event(BACKEND, "1.000001"), "type": undeclared})
        assert response.status_code == 404, undeclared
    await h.command(COMMANDER, "start v2.4.0")
    await h.settle()
    request = h.request_in_slack("ci")
    for action in ACTIONS:
        clicked = await h.click(COMMANDER, request, f"{h.release().id}:notes", action)
        assert clicked.status_code == 200, action
    other = await h.click(COMMANDER, request, "x", action_id="something_else")
    assert other.status_code == 404
    (view_id,) = h.fake.views  # Stop opened the reason modal; its submission is handled too
    submitted = await h.submit(view_id, {"reason": {"reason_input": "wrong notes"}})
    assert submitted.status_code == 200
    h.fake.views[view_id]["callback_id"] = "someone_elses_modal"
    assert (await h.submit(view_id, {"reason": {"reason_input": "x"}})).status_code == 404


def test_dockerfile_essentials() -> None:
    """Slim base, non-root, /data volume, HEALTHCHECK on /healthz with Python, serve by default."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    lines = [line.strip() for line in text.splitlines()]
    assert "FROM python:3.11-slim" in lines
    assert any(line.startswith("RUN pip install .") for line in lines)
    user = [line for line in lines if line.startswith("USER ")]
    assert user and user[-1] != "USER root"
    assert 'VOLUME ["/data"]' in lines and "EXPOSE 3000" in lines
    health = text[text.index("HEALTHCHECK") :].split("\n\n")[0]
    assert "python" in health and "/healthz" in health and "curl" not in health
    assert lines[-1] == (
        'CMD ["golive", "serve", "--config", "/etc/golive/golive.yml", "--port", "3000"]'
    )
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert {".git", "tests", "*.db"} <= set(ignored)
