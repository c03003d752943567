"""Restart-to-ready time and resident memory of `golive serve`, beside a bare aiohttp+Bolt app.

    python bench/serve_ready.py [--runs 5] [--requests 200]

Spec: "Restart to ready in under 2 s; resident memory under 150 MB while serving". FakeSlack
runs in this process on loopback. Each run times spawn → first `GET /healthz` 200 (polled every
10 ms) of `python -m bot serve`, then SIGTERMs it. Run 1 is on a fresh database and then
serves a `/golive start` and N signed `/golive status` before VmRSS/VmHWM are read from /proc;
the other runs restart on that database. Baseline, interleaved: a `python -c` aiohttp app that
builds a Bolt AsyncApp and serves one GET route (same starts; VmRSS after N GETs). Exit 1 on a miss.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO

import aiohttp
import yaml
from _serve import CHANNEL, ROOT, SECRET, command, free_port, serve_env

CONFIG = {
    "slack": {"release_channels": [CHANNEL]},
    "roles": {"on_call": "U0ONCALL1", "backend": "U0BACKEND", "frontend": "U0FRONTEN"},
    "services": [
        {"name": "partner-registry", "tier": "backend", "wave": 1, "migrations": True},
        {"name": "web-portal", "tier": "frontend"},
    ],
}
BARE = """
import sys
from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient
async def make():
    client = AsyncWebClient(token=sys.argv[1], base_url=sys.argv[2], retry_handlers=[])
    bolt = AsyncApp(client=client, signing_secret=sys.argv[3])
    async def healthz(request):
        return web.json_response({"ok": bolt is not None})
    app = web.Application()
    app.router.add_get("/healthz", healthz)
    return app
web.run_app(make(), host="127.0.0.1", port=int(sys.argv[4]), print=None, access_log=None)
"""
READY_DEADLINE, STOP_DEADLINE = 20.0, 10.0  # seconds a start / a stop may take
VERDICT = {True: "meets", False: "MISSES"}


def proc_memory(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MB, from /proc/<pid>/status."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024  # kB → MB
    return fields["VmRSS"], fields["VmHWM"]


class Launcher:
    """Spawns servers, times them to ready, and always stops what it started."""

    def __init__(self, env: dict[str, str], log: IO[bytes]) -> None:
        self.env, self.log = env, log
        self.live: list[subprocess.Popen[bytes]] = []
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2))

    async def start(self, args: list[str], port: int) -> tuple[subprocess.Popen[bytes], float]:
        """Spawn `args` and return it with the seconds until GET /healthz answered 200."""
        url = f"http://127.0.0.1:{port}/healthz"
        started = time.perf_counter()
        proc = subprocess.Popen(
            args, cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL, stderr=self.log
        )
        self.live.append(proc)
        while time.perf_counter() - started < READY_DEADLINE:
            try:
                async with self.session.get(url) as r:
                    if r.status == 200:
                        return proc, time.perf_counter() - started
            except (aiohttp.ClientError, TimeoutError):
                pass
            if proc.poll() is not None:
                raise RuntimeError(f"{args[:4]} exited with {proc.returncode} before ready")
            await asyncio.sleep(0.01)
        raise RuntimeError(f"{args[:4]} not ready within {READY_DEADLINE:.0f} s")

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGTERM, wait, and SIGKILL if it does not exit in time."""
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_DEADLINE)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.live.remove(proc)

    async def close(self) -> None:
        """Stop every process still running and close the HTTP session."""
        for proc in list(self.live):
            self.stop(proc)
        await self.session.close()


async def load(session: aiohttp.ClientSession, base: str, requests: int, slack: bool) -> None:
    """`/golive start v1.0.0` then `requests` signed `/golive status` (slack), or plain GETs."""
    if slack:
        body, headers = command("start v1.0.0")
        async with session.post(base + "/slack/events", data=body, headers=headers) as r:
            answer = await r.json()
        if "started" not in answer.get("text", ""):
            raise RuntimeError(f"could not start a release: {answer}")
    for _ in range(requests):
        if slack:
            body, headers = command("status")
            r = await session.post(base + "/slack/events", data=body, headers=headers)
        else:
            r = await session.get(base + "/healthz")
        async with r:
            await r.read()
            if r.status != 200:
                raise RuntimeError(f"{base} answered {r.status}")


def summary(label: str, values: list[float]) -> str:
    """One line: min/median/max in seconds."""
    return (
        f"  {label:<44} min {min(values):6.3f} s  median {statistics.median(values):6.3f} s"
        f"  max {max(values):6.3f} s  (n={len(values)})"
    )


async def run(runs: int, requests: int) -> int:
    """Start FakeSlack, time golive and bare starts, measure memory, print the figures."""
    from bot.sandbox import FakeSlack
    from bot.sandbox.slack import DEFAULT_TOKEN

    async with contextlib.AsyncExitStack() as stack:
        fake = await stack.enter_async_context(FakeSlack())
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="golive-serve-ready-"))
        api_url = f"{fake.url}/api/"
        database, config = Path(tmp) / "golive.db", Path(tmp) / "golive.yml"
        config.write_text(yaml.safe_dump({**CONFIG, "database": str(database)}))
        log = (Path(tmp) / "stderr.log").open("wb")
        launcher = Launcher(serve_env(api_url), log)
        apps = {
            "golive": [
                *(sys.executable, "-m", "bot", "serve", "--config", str(config)),
                *("--host", "127.0.0.1", "--port"),
            ],
            "bare": [sys.executable, "-c", BARE, DEFAULT_TOKEN, api_url, SECRET],
        }
        times: dict[str, list[float]] = {name: [] for name in apps}
        memory: dict[str, tuple[float, float]] = {}
        try:
            print(
                f"golive serve: spawn → GET /healthz 200 ({runs} starts, the first on a fresh"
                f" database), and VmRSS/VmHWM after {requests} signed /golive status\n"
                f"baseline: bare aiohttp + Bolt AsyncApp, same starts and {requests} GETs;"
                f" loopback, {os.cpu_count()} CPUs"
            )
            for i in range(runs):  # interleaved, so a noisy moment hits both
                for name, args in apps.items():
                    port = free_port()
                    proc, seconds = await launcher.start([*args, str(port)], port)
                    times[name].append(seconds)
                    if i == 0:  # memory while serving; later golive starts reuse its database
                        base = f"http://127.0.0.1:{port}"
                        await load(launcher.session, base, requests, slack=name == "golive")
                        memory[name] = proc_memory(proc.pid)
                    launcher.stop(proc)
        except Exception:
            log.flush()
            tail = (Path(tmp) / "stderr.log").read_text(errors="replace")[-2000:]
            print(f"servers' stderr (tail):\n{tail}", file=sys.stderr)
            raise
        finally:
            await launcher.close()
            log.close()
    restarts, bare_times = times["golive"][1:], times["bare"]
    (golive_rss, golive_hwm), (bare_rss, bare_hwm) = memory["golive"], memory["bare"]
    print("restart to ready:")
    print(f"  {'golive, first start (fresh database)':<44} {times['golive'][0]:6.3f} s")
    print(summary("golive, restarts (existing database)", restarts))
    print(summary("bare aiohttp + Bolt app", bare_times))
    ratio = statistics.median(restarts) / statistics.median(bare_times)
    print(f"  golive restart ÷ bare, medians: ×{ratio:.2f}")
    print("resident memory while serving:")
    print(f"  {'golive':<44} VmRSS {golive_rss:6.1f} MB  VmHWM {golive_hwm:6.1f} MB")
    print(f"  {'bare aiohttp + Bolt app':<44} VmRSS {bare_rss:6.1f} MB  VmHWM {bare_hwm:6.1f} MB")
    print(f"  golive ÷ bare, VmRSS: ×{golive_rss / bare_rss:.2f}")
    slowest, peak = max(restarts), max(golive_rss, golive_hwm)
    fast, small = slowest < 2.0, peak < 150.0
    print("targets:")
    print(f"  restart to ready < 2 s (slowest restart {slowest:.3f} s): {VERDICT[fast]}")
    print(f"  resident memory < 150 MB while serving (VmHWM {peak:.1f} MB): {VERDICT[small]}")
    return 0 if fast and small else 1


def main() -> int:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="starts per app (≥ 2, ≤ 50)")
    parser.add_argument("--requests", type=int, default=200, help="requests before memory")
    args = parser.parse_args()
    if not 2 <= args.runs <= 50 or not 1 <= args.requests <= 10_000:
        parser.error("--runs must be 2..50 and --requests 1..10000")
    return asyncio.run(run(args.runs, args.requests))


if __name__ == "__main__":
    raise SystemExit(main())
