"""What the benchmarks that drive `golive serve` share: Slack-signed requests, the processes they
start (golive itself, a FakeSlack, bare Bolt apps for baselines) and how figures are summed up.

    python bench/_serve.py --role fake-slack | --role bare --api-url URL --token T [...]

runs one of the helper servers: it prints its base URL on the first line of stdout and serves
until its stdin closes. `python bench/_serve.py --profile FILE serve …` runs golive's command
line with every thread under cProfile.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from itertools import count
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlencode

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SECRET = "bench-signing-secret-0123456789abcdef"
CHANNEL = "C0RELEASE1"
ANNOUNCE = "C0ENGINEER"
COMMANDER, ON_CALL, BACKEND, FRONTEND, STRANGER = (
    "U0COMMAND",
    "U0ONCALL1",
    "U0BACKEND",
    "U0FRONTEN",
    "U0STRANGE",
)
ROLES = {"on_call": ON_CALL, "backend": BACKEND, "frontend": FRONTEND}
SERVICES = [
    {"name": "partner-registry", "tier": "backend", "wave": 1, "migrations": True},
    {"name": "billing-api", "tier": "backend", "wave": 2},
    {"name": "web-portal", "tier": "frontend"},
]
HERE = Path(__file__).resolve()
_ids = count(1)


def golive_config(channels: list[str], database: Path) -> dict[str, Any]:
    """The benchmarks' golive.yml: these release channels, one announce channel, the four
    people by name, no checks."""
    return {
        "slack": {"release_channels": channels, "announce_channels": [ANNOUNCE]},
        "roles": ROLES,
        "users": {"alice": COMMANDER, "carol": ON_CALL, "bob": BACKEND, "fran": FRONTEND},
        "services": SERVICES,
        "database": str(database),
    }


# -- requests as Slack signs them ---------------------------------------------------------------


def signed_headers(body: bytes, content_type: str) -> dict[str, str]:
    """Content type, timestamp and Slack's v0 signature (HMAC-SHA256 of `v0:ts:body`)."""
    ts = str(int(time.time()))
    digest = hmac.new(SECRET.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256)
    return {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": "v0=" + digest.hexdigest(),
    }


def command(
    text: str, *, user: str = COMMANDER, channel: str = CHANNEL
) -> tuple[bytes, dict[str, str]]:
    """A signed `/golive <text>` slash command."""
    body = urlencode(
        {
            "team_id": "T0SANDBOX",
            "channel_id": channel,
            "user_id": user,
            "command": "/golive",
            "text": text,
            "response_url": "https://hooks.slack.invalid/commands/1",
            "trigger_id": f"{next(_ids)}.1",
        }
    ).encode()
    return body, signed_headers(body, "application/x-www-form-urlencoded")


def reaction(user: str, channel: str, ts: str) -> tuple[bytes, dict[str, str]]:
    """A signed `reaction_added` event (a fresh event id): `user` approves the message `ts`."""
    event = {
        "type": "reaction_added",
        "user": user,
        "reaction": "white_check_mark",
        "item": {"type": "message", "channel": channel, "ts": ts},
        "event_ts": f"{time.time():.6f}",
    }
    envelope = {
        "team_id": "T0SANDBOX",
        "api_app_id": "A0GOLIVE",
        "type": "event_callback",
        "event_id": f"Ev{next(_ids):010d}",
        "event_time": int(time.time()),
        "event": event,
    }
    body = json.dumps(envelope).encode()
    return body, signed_headers(body, "application/json")


async def send(
    session: aiohttp.ClientSession, url: str, request: tuple[bytes, dict[str, str]]
) -> bytes:
    """POST a signed request to `url`/slack/events; the answer's body (raise unless 200)."""
    body, headers = request
    async with session.post(url + "/slack/events", data=body, headers=headers) as r:
        answer = await r.read()
        if r.status != 200:
            raise RuntimeError(f"{url} answered {r.status}: {answer[:200]!r}")
    return answer


# -- figures -------------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))]


def spread(values: list[float], unit: str = "ms", scale: float = 1.0) -> str:
    """`p50 … p99 … max …` of some values, each multiplied by `scale`, in `unit`."""
    return (
        f"p50 {statistics.median(values) * scale:7.1f} {unit}   "
        f"p99 {percentile(values, 99) * scale:7.1f} {unit}   max {max(values) * scale:7.1f} {unit}"
    )


# -- processes -------------------------------------------------------------------------------------


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_env(api_url: str) -> dict[str, str]:
    """The environment `golive serve` reads, pointed at a FakeSlack's Web API."""
    from bot.sandbox.slack import DEFAULT_TOKEN

    return dict(
        os.environ,
        PYTHONPATH=str(ROOT),
        SLACK_BOT_TOKEN=DEFAULT_TOKEN,
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_API_URL=api_url,
    )


def start_golive(
    config: Path,
    port: int,
    env: dict[str, str],
    *,
    stderr: int | IO[bytes] | None = subprocess.DEVNULL,
    profile: Path | None = None,
) -> subprocess.Popen[bytes]:
    """`python -m bot serve` (HTTP mode) on a loopback port; with `profile`, every thread of it
    runs under cProfile and the merged statistics are written there when it exits."""
    runner = (str(HERE), "--profile", str(profile)) if profile else ("-m", "bot")
    return subprocess.Popen(
        [
            *(sys.executable, *runner, "serve", "--config", str(config)),
            *("--host", "127.0.0.1", "--port", str(port)),
        ],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stderr=stderr,
    )


def run_profiled(out: Path, argv: list[str]) -> None:
    """Run golive's command line with a profiler in every thread (the loop, the database
    writer, the worker threads); write the merged statistics to `out` at exit."""
    import cProfile
    import pstats
    import runpy
    import threading

    profilers = [cProfile.Profile()]

    def in_new_thread(*_: object) -> None:
        sys.setprofile(None)
        profiler = cProfile.Profile()
        profilers.append(profiler)
        profiler.enable()

    threading.setprofile(in_new_thread)
    sys.argv = ["golive", *argv]
    profilers[0].enable()
    try:
        runpy.run_module("bot", run_name="__main__", alter_sys=True)
    except SystemExit:
        pass
    finally:
        profilers[0].disable()
        stats = pstats.Stats(profilers[0])
        for profiler in profilers[1:]:
            stats.add(profiler)
        stats.dump_stats(str(out))


async def wait_healthy(url: str, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Poll GET /healthz until it answers 200 (10 s at the most)."""
    async with aiohttp.ClientSession() as session:
        for _ in range(200):
            try:
                async with session.get(url + "/healthz") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"{url} exited with {proc.returncode} before it was healthy")
            await asyncio.sleep(0.05)
    raise RuntimeError(f"{url} never became healthy")


def spawn_role(*args: str) -> tuple[subprocess.Popen[str], str]:
    """Run this file with `args` (a helper server) and return it with the URL it printed."""
    proc = subprocess.Popen(
        [sys.executable, str(HERE), *args],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def spawn_bare(
    api_url: str, *, process_before_response: bool = False, post: bool = False
) -> tuple[subprocess.Popen[str], str]:
    """A bare Bolt app (see `serve_bare`) in its own process, and its URL."""
    from bot.sandbox.slack import DEFAULT_TOKEN

    args = ["--role", "bare", "--api-url", api_url, "--token", DEFAULT_TOKEN]
    args += ["--process-before-response"] if process_before_response else []
    args += ["--post"] if post else []
    return spawn_role(*args)


def stop(procs: list[subprocess.Popen[Any]]) -> None:
    """Close the helpers' stdin, SIGTERM everything, and wait for each to exit."""
    for proc in procs:
        if proc.stdin is not None:
            proc.stdin.close()
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- the helper servers (each runs in its own process) -------------------------------------------


async def _until_stdin_closes() -> None:
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


async def serve_fake_slack() -> None:
    """FakeSlack, knowing the stranger too."""
    from bot.sandbox import FakeSlack

    fake = FakeSlack()
    fake.add_user(STRANGER, "sam")
    print(await fake.start(), flush=True)
    await _until_stdin_closes()
    await fake.stop()


async def serve_bare(api_url: str, token: str, process_before_response: bool, post: bool) -> None:
    """A Bolt AsyncApp on aiohttp whose listeners ack `/golive` and `reaction_added`; with
    `post`, the reaction listener then posts one chat.postMessage into the reaction's channel."""
    from aiohttp import web
    from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
    from slack_bolt.async_app import AsyncApp
    from slack_sdk.web.async_client import AsyncWebClient

    app = AsyncApp(
        client=AsyncWebClient(token=token, base_url=api_url, retry_handlers=[]),
        signing_secret=SECRET,
        process_before_response=process_before_response,
    )

    async def ack_command(ack: Any) -> None:
        await ack()

    async def on_reaction(event: dict[str, Any], client: AsyncWebClient) -> None:
        if post:
            await client.chat_postMessage(channel=event["item"]["channel"], text="next step")

    app.command("/golive")(ack_command)
    app.event("reaction_added")(on_reaction)

    async def events(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await app.async_dispatch(await to_bolt_request(request)))

    web_app = web.Application()
    web_app.router.add_post("/slack/events", events)
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(f"http://127.0.0.1:{runner.addresses[0][1]}", flush=True)
    await _until_stdin_closes()
    await runner.cleanup()


def main() -> int:
    """Run one helper server, or golive under the profiler (`--profile FILE golive-args…`)."""
    if sys.argv[1:2] == ["--profile"]:
        run_profiled(Path(sys.argv[2]), sys.argv[3:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--role", choices=["fake-slack", "bare"], required=True)
    parser.add_argument("--api-url")
    parser.add_argument("--token")
    parser.add_argument("--process-before-response", action="store_true")
    parser.add_argument("--post", action="store_true")
    args = parser.parse_args()
    if args.role == "fake-slack":
        asyncio.run(serve_fake_slack())
    else:
        asyncio.run(serve_bare(args.api_url, args.token, args.process_before_response, args.post))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
