"""Ack latency of the served golive app beside bare Bolt apps that only ack, in one run.

    python bench/ack_latency.py [--requests 1000] [--rounds 3] [--concurrency 20]

Starts four processes on loopback: FakeSlack (the Web API that golive's outbox and auth.test
talk to), `golive serve` (the real command, HTTP mode, SQLite on disk), and two bare Bolt
AsyncApps behind the same aiohttp adapter whose listeners only ack: one with Bolt's defaults,
one with golive's settings (process_before_response=True, which spares commands Bolt's 10 ms
ack polling). Then, from this process, rounds of N signed requests per app and scenario with C
concurrent clients, timed from sending to the full answer, interleaved across apps:

- `/golive status` while a release is in progress (golive loads and renders the whole status);
- `reaction_added`: a stranger's approve reaction on a step request (golive writes the event to
  its inbox and acks; then it looks the message up, refuses, and queues and delivers the
  ephemeral refusal).

golive's queued work is let finish after each of its rounds, so it never runs while a bare app
is measured. Prints p50/p99/max per app and scenario, golive's ratio to the faster bare app, and
exits 1 when the target (p99 < 250 ms and ≤ 2× that bare app) is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from itertools import count
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SECRET = "bench-signing-secret-0123456789abcdef"
CHANNEL = "C0RELEASE1"
COMMANDER, ON_CALL, BACKEND, FRONTEND, STRANGER = (
    "U0COMMAND",
    "U0ONCALL1",
    "U0BACKEND",
    "U0FRONTEN",
    "U0STRANGE",
)
CONFIG = {
    "slack": {"release_channels": [CHANNEL], "announce_channels": ["C0ENGINEER"]},
    "roles": {"on_call": ON_CALL, "backend": BACKEND, "frontend": FRONTEND},
    "services": [
        {"name": "partner-registry", "tier": "backend", "wave": 1, "migrations": True},
        {"name": "billing-api", "tier": "backend", "wave": 2},
        {"name": "web-portal", "tier": "frontend"},
    ],
}
_ids = count(1)


# -- the servers (each runs in its own process) ---------------------------------------------


async def _serve_fake_slack() -> None:
    from bot.sandbox import FakeSlack

    fake = FakeSlack()
    fake.add_user(STRANGER, "sam")
    url = await fake.start()
    print(url, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await fake.stop()


async def _serve_bare(api_url: str, token: str, process_before_response: bool) -> None:
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

    async def ack_event() -> None:
        return None

    app.command("/golive")(ack_command)
    app.event("reaction_added")(ack_event)

    async def events(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await app.async_dispatch(await to_bolt_request(request)))

    web_app = web.Application()
    web_app.router.add_post("/slack/events", events)
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(f"http://127.0.0.1:{runner.addresses[0][1]}", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await runner.cleanup()


# -- the load --------------------------------------------------------------------------------


def _headers(body: bytes, content_type: str) -> dict[str, str]:
    ts = str(int(time.time()))
    digest = hmac.new(SECRET.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256)
    return {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": "v0=" + digest.hexdigest(),
    }


def status_request() -> tuple[bytes, dict[str, str]]:
    """A signed `/golive status`."""
    body = urlencode(
        {
            "team_id": "T0SANDBOX",
            "channel_id": CHANNEL,
            "user_id": COMMANDER,
            "command": "/golive",
            "text": "status",
            "response_url": "https://hooks.slack.invalid/commands/1",
            "trigger_id": f"{next(_ids)}.1",
        }
    ).encode()
    return body, _headers(body, "application/x-www-form-urlencoded")


def reaction_request(ts: str) -> Callable[[], tuple[bytes, dict[str, str]]]:
    """Signed `reaction_added` events (fresh event ids) on the message `ts`."""

    def build() -> tuple[bytes, dict[str, str]]:
        event = {
            "type": "reaction_added",
            "user": STRANGER,
            "reaction": "white_check_mark",
            "item": {"type": "message", "channel": CHANNEL, "ts": ts},
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
        return body, _headers(body, "application/json")

    return build


async def measure(
    url: str, build: Callable[[], tuple[bytes, dict[str, str]]], requests: int, concurrency: int
) -> list[float]:
    """Latencies (ms) of `requests` signed requests from `concurrency` concurrent clients."""
    latencies: list[float] = []
    left = count(requests, -1)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def client() -> None:
            while next(left) > 0:
                body, headers = build()
                started = time.perf_counter()
                async with session.post(url + "/slack/events", data=body, headers=headers) as r:
                    await r.read()
                    if r.status != 200:
                        raise RuntimeError(f"{url} answered {r.status}")
                latencies.append((time.perf_counter() - started) * 1000)

        await asyncio.gather(*(client() for _ in range(concurrency)))
    return latencies


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))]


def _spawn(args: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        args, cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


async def _wait_healthy(url: str) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(200):
            try:
                async with session.get(url + "/healthz") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError(f"{url} never became healthy")


async def _start_release(golive: str) -> None:
    """`/golive start v9.9.9` so that status has a release to show and reactions a request."""
    body = status_request()[0].replace(b"text=status", b"text=start+v9.9.9")
    headers = _headers(body, "application/x-www-form-urlencoded")
    async with (
        aiohttp.ClientSession() as session,
        session.post(golive + "/slack/events", data=body, headers=headers) as r,
    ):
        answer = await r.json()
    if "started" not in answer.get("text", ""):
        raise RuntimeError(f"could not start a release: {answer}")


def _first_request_ts(database: Path) -> str:
    import sqlite3

    for _ in range(200):
        with sqlite3.connect(database) as db:
            row = db.execute(
                "select ts from outbox where kind = 'approval' and ts is not null order by id"
            ).fetchone()
        if row:
            return str(row[0])
        time.sleep(0.05)
    raise RuntimeError("the approval request was never delivered")


def _row(name: str, values: list[float], wall: float) -> str:
    return (
        f"{name:<48} p50 {statistics.median(values):7.1f} ms   p99 {percentile(values, 99):7.1f} ms"
        f"   max {max(values):7.1f} ms   {len(values) / wall:7.0f} req/s"
    )


async def _caught_up(golive: str) -> float:
    """Seconds until golive's outbox is empty again (its event work is done)."""
    started = time.perf_counter()
    async with aiohttp.ClientSession() as session:
        while True:
            async with session.get(golive + "/healthz") as r:
                if (await r.json())["outbox_pending"] == 0:
                    return time.perf_counter() - started
            await asyncio.sleep(0.01)


async def run(requests: int, concurrency: int, rounds: int) -> int:
    """Start the servers, measure both scenarios on every app, print the table."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    me = [sys.executable, str(Path(__file__).resolve())]
    procs: list[subprocess.Popen[str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        try:
            fake, fake_url = _spawn([*me, "--role", "fake-slack"], env)
            procs.append(fake)
            from bot.sandbox.slack import DEFAULT_TOKEN

            api_url = f"{fake_url}/api/"
            database = Path(tmp) / "golive.db"
            config = Path(tmp) / "golive.yml"
            config.write_text(yaml.safe_dump({**CONFIG, "database": str(database)}))
            serve_env = dict(
                env,
                SLACK_BOT_TOKEN=DEFAULT_TOKEN,
                SLACK_SIGNING_SECRET=SECRET,
                SLACK_API_URL=api_url,
            )
            port = _free_port()
            golive_proc = subprocess.Popen(
                [
                    *(sys.executable, "-m", "bot", "serve", "--config", str(config)),
                    *("--host", "127.0.0.1", "--port", str(port)),
                ],
                cwd=ROOT,
                env=serve_env,
                stdin=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            procs.append(golive_proc)
            golive = f"http://127.0.0.1:{port}"
            bare_args = [*me, "--role", "bare", "--api-url", api_url, "--token", DEFAULT_TOKEN]
            bare_proc, bare = _spawn(bare_args, env)
            procs.append(bare_proc)
            same_proc, same = _spawn([*bare_args, "--process-before-response"], env)
            procs.append(same_proc)
            await _wait_healthy(golive)
            await _start_release(golive)
            ts = _first_request_ts(database)

            scenarios: list[tuple[str, Callable[[], tuple[bytes, dict[str, str]]]]] = [
                ("/golive status", status_request),
                ("reaction_added", reaction_request(ts)),
            ]
            apps = [
                ("bare Bolt app, Bolt defaults", bare),
                ("bare Bolt app, golive's settings", same),
                ("golive", golive),
            ]
            print(
                f"ack latency: {rounds} rounds × {requests} signed requests per app and scenario, "
                f"{concurrency} concurrent clients, loopback, {os.cpu_count()} CPUs"
            )
            worst = 0.0
            ok = True
            for name, build in scenarios:
                for _, url in apps:  # warm up: connections, caches, auth.test
                    await measure(url, build, 100, concurrency)
                await _caught_up(golive)
                pooled: dict[str, list[float]] = {label: [] for label, _ in apps}
                walls: dict[str, float] = {label: 0.0 for label, _ in apps}
                catch_up: list[float] = []
                for _ in range(rounds):  # interleaved, so a noisy moment hits every app
                    for label, url in apps:
                        started = time.perf_counter()
                        pooled[label] += await measure(url, build, requests, concurrency)
                        walls[label] += time.perf_counter() - started
                        if url == golive:  # its queued work must not run during the others
                            catch_up.append(await _caught_up(golive))
                for label, _ in apps:
                    print(_row(f"{name:<15} {label}", pooled[label], walls[label]))
                p50 = {label: statistics.median(v) for label, v in pooled.items()}
                p99 = {label: percentile(v, 99) for label, v in pooled.items()}
                best = min((label for label, _ in apps[:2]), key=lambda label: p99[label])
                ratio = p99["golive"] / p99[best]
                worst = max(worst, ratio)
                ok = ok and p99["golive"] < 250 and ratio <= 2.0
                print(
                    f"{name:<15} golive ÷ {best}: p50 ×{p50['golive'] / p50[best]:.2f}, "
                    f"p99 ×{ratio:.2f}"
                )
                drained = max(catch_up) * 1000
                print(
                    f"{name:<15} golive's work queued by a round (recorded, and delivered to "
                    f"Slack) was done ≤ {drained:.0f} ms after the round's last ack"
                )
            verdict = "meets" if ok else "MISSES"
            print(f"target p99 < 250 ms and ≤ 2× the bare app: {verdict} (worst p99 ×{worst:.2f})")
            return 0 if ok else 1
        finally:
            for proc in procs:
                if proc.stdin is not None:
                    proc.stdin.close()
                proc.terminate()
            for proc in procs:
                proc.wait(timeout=10)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> int:
    """Command line: the driver by default; `--role` runs one of the servers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--role", choices=["fake-slack", "bare"])
    parser.add_argument("--api-url")
    parser.add_argument("--token")
    parser.add_argument("--process-before-response", action="store_true")
    args = parser.parse_args()
    if args.role == "fake-slack":
        asyncio.run(_serve_fake_slack())
        return 0
    if args.role == "bare":
        asyncio.run(_serve_bare(args.api_url, args.token, args.process_before_response))
        return 0
    return asyncio.run(run(args.requests, args.concurrency, args.rounds))


if __name__ == "__main__":
    raise SystemExit(main())
