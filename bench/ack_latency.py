"""Ack latency of the served golive app beside bare Bolt apps that only ack, in one run.

    python bench/ack_latency.py [--requests 1000] [--rounds 3] [--concurrency 20]
                                [--completes 45] [--complete-gap 0.2]
                                [--profile FILE]

Starts four processes on loopback: FakeSlack (the Web API that golive's outbox and auth.test
talk to), `golive serve` (the real command, HTTP mode, SQLite on disk), and two bare Bolt
AsyncApps behind the same aiohttp adapter whose listeners only ack: one with Bolt's defaults,
one with golive's settings (process_before_response=True, which spares commands Bolt's 10 ms
ack polling). Then, from this process, rounds of signed requests per app and scenario, timed
from sending to the full answer, interleaved across apps:

- `/golive status` while a release is in progress (golive loads and renders the whole status),
  N requests from C concurrent clients;
- `reaction_added`: a stranger's approve reaction on a step request (golive writes the event to
  its inbox and acks; then it looks the message up, refuses, and queues and delivers the
  ephemeral refusal), N requests from C concurrent clients;
- `/golive complete` on releases whose every step is done and whose soak has 30 samples, so the
  soak chart is queued: one command every `--complete-gap` seconds, one at a time (golive gets
  a fresh release for each; it answers "Release completed." or the benchmark stops). The
  releases are prepared before golive starts, through golive's own engine and Slack transport
  against the same FakeSlack. The chart is drawn by the outbox when it is delivered, a second
  (golive's pace per channel) behind the completion announcement: the commands of a round's
  first second meet no chart being drawn ("before charts"), the later ones meet earlier
  releases' charts being drawn in a worker thread ("charts drawn"); both are printed too.

golive's queued work is let finish after each of its rounds, so it never runs while a bare app
is measured. Prints p50/p99/max per app and scenario, golive's ratio to the faster bare app, and
exits 1 when a target is missed: p99 < 250 ms everywhere, and ≤ 2× that bare app for status and
reactions (a bare app's "complete" does none of the work of completing a release).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import _serve
import aiohttp
import yaml
from _serve import COMMANDER, STRANGER, command, percentile, reaction

Build = Callable[[], tuple[bytes, dict[str, str]]]
SOAK_SAMPLES = 30  # a 15-minute soak at the default 30 s interval
DONE = "C0DONE"  # prefix of the channels whose releases wait for `/golive complete`


async def measure(url: str, build: Build, requests: int, concurrency: int) -> list[float]:
    """Latencies (ms) of `requests` signed requests from `concurrency` concurrent clients."""
    latencies: list[float] = []
    left = iter(range(requests))
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def client() -> None:
            for _ in left:
                request = build()
                started = time.perf_counter()
                await _serve.send(session, url, request)
                latencies.append((time.perf_counter() - started) * 1000)

        await asyncio.gather(*(client() for _ in range(concurrency)))
    return latencies


async def one_by_one(
    url: str, requests: list[tuple[bytes, dict[str, str]]], gap: float, expect: str | None
) -> list[float]:
    """Latencies (ms) of requests sent one at a time, one every `gap` seconds; each answer must
    contain `expect` (when given)."""
    latencies: list[float] = []
    async with aiohttp.ClientSession() as session:
        due = time.perf_counter()
        for request in requests:
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            due += gap
            started = time.perf_counter()
            answer = await _serve.send(session, url, request)
            latencies.append((time.perf_counter() - started) * 1000)
            if expect is not None and expect.encode() not in answer:
                raise RuntimeError(f"{url} did not answer {expect!r}: {answer[:300]!r}")
    return latencies


def status_request() -> tuple[bytes, dict[str, str]]:
    """A signed `/golive status`."""
    return command("status")


def stranger_reaction(ts: str) -> Build:
    """Signed `reaction_added` events (fresh event ids) by a stranger on the message `ts`."""
    return lambda: reaction(STRANGER, _serve.CHANNEL, ts)


async def _start_release(golive: str) -> None:
    """`/golive start v9.9.9` so that status has a release to show and reactions a request."""
    async with aiohttp.ClientSession() as session:
        answer = await _serve.send(session, golive, command("start v9.9.9"))
    if b"started" not in answer:
        raise RuntimeError(f"could not start a release: {answer!r}")


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


async def prepare_done(config: Path, api_url: str, channels: list[str]) -> None:
    """One release per channel with every step done and a soak of SOAK_SAMPLES samples, driven
    through golive's engine (commands as each owner, the soak timer fired) and delivered unpaced
    to the FakeSlack through golive's Slack transport; golive itself is not running yet."""
    from bot.adapters.slack.transport import SlackTransport, make_client
    from bot.domain.clock import FakeClock
    from bot.domain.config import Secrets, load_config
    from bot.domain.model import StepStatus
    from bot.engine.runtime import Runtime
    from bot.sandbox.slack import DEFAULT_TOKEN
    from commands import MappingDirectory, dispatch

    clock = FakeClock(datetime.now(UTC) - timedelta(hours=2))
    async with aiohttp.ClientSession() as session:
        transport = SlackTransport(make_client(DEFAULT_TOKEN, api_url, session))
        runtime = Runtime(load_config(config), Secrets({}), transport, clock=clock)
        store, service, nobody = runtime.store, runtime.service, MappingDirectory({})
        try:
            for number, channel in enumerate(channels):
                reply = await dispatch(service, COMMANDER, channel, f"start v1.0.{number}", nobody)
                release_id = store.latest_in_channel(channel)
                if release_id is None:
                    raise RuntimeError(f"{channel}: could not start a release: {reply.text}")
                for _ in range(80):
                    release = store.load(release_id).release
                    if release.all_done:
                        break
                    awaiting = [s for s in release.steps if s.status is StepStatus.AWAITING]
                    if awaiting:
                        step = awaiting[0]
                        user = release.roles.user(step.owner)
                        await dispatch(service, user, channel, f"approve {step.key}", nobody)
                        continue
                    if release.step("soak").status is not StepStatus.TIMING:
                        raise RuntimeError(f"{channel}: nothing waits, yet not done: {release}")
                    start = clock.now()
                    for tick in range(SOAK_SAMPLES):
                        ratio, p95 = 0.002 + 0.0004 * (tick % 5), 0.18 + 0.01 * (tick % 7)
                        store.add_sample(
                            release_id,
                            "soak",
                            start + timedelta(seconds=30 * (tick + 1)),
                            {
                                "requests": 12000,
                                "errors": round(12000 * ratio),
                                "ratio": ratio,
                                "p95": p95,
                            },
                            {"errors": {"status": "pass"}, "latency": {"status": "pass"}},
                        )
                    clock.advance(SOAK_SAMPLES * 30 + 60)
                    runtime.deadlines.fire_due()
                else:
                    raise RuntimeError(f"{channel}: the release never got done")
                await runtime.pump()
        finally:
            await runtime.service.close()
            runtime.store.close()


def _row(name: str, values: list[float], wall: float) -> str:
    return (
        f"{name:<50} p50 {statistics.median(values):7.1f} ms   p99 {percentile(values, 99):7.1f} ms"
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


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def run(args: argparse.Namespace) -> int:
    """Start the servers, measure every scenario on every app, print the table."""
    from bot.adapters.slack.serve import PACE

    procs: list[subprocess.Popen[bytes] | subprocess.Popen[str]] = []
    rounds = args.rounds
    per_round = max(1, args.completes // rounds)
    done = [f"{DONE}{n:04d}" for n in range(per_round * rounds)]
    with tempfile.TemporaryDirectory() as tmp:
        try:
            fake, fake_url = _serve.spawn_role("--role", "fake-slack")
            procs.append(fake)
            api_url = f"{fake_url}/api/"
            database = Path(tmp) / "golive.db"
            config = Path(tmp) / "golive.yml"
            settings = _serve.golive_config([_serve.CHANNEL, *done], database)
            # No announce channel: it would pace every release's announcement and chart into
            # one shared channel, a second each, and hold golive's outbox busy for minutes.
            settings["slack"]["announce_channels"] = []
            config.write_text(yaml.safe_dump(settings))
            prepared = time.perf_counter()
            await prepare_done(config, api_url, done)
            prepared = time.perf_counter() - prepared
            port = _serve.free_port()
            golive_proc = _serve.start_golive(
                config, port, _serve.serve_env(api_url), profile=args.profile
            )
            procs.append(golive_proc)
            golive = f"http://127.0.0.1:{port}"
            bare_proc, bare = _serve.spawn_bare(api_url)
            procs.append(bare_proc)
            same_proc, same = _serve.spawn_bare(api_url, process_before_response=True)
            procs.append(same_proc)
            await _serve.wait_healthy(golive, golive_proc)
            await _start_release(golive)
            ts = _first_request_ts(database)

            apps = [
                ("bare Bolt app, Bolt defaults", bare),
                ("bare Bolt app, golive's settings", same),
                ("golive", golive),
            ]
            print(
                f"ack latency: {rounds} rounds × {args.requests} signed requests per app and "
                f"scenario, {args.concurrency} concurrent clients; /golive complete: {rounds} "
                f"rounds × {per_round}, one every {args.complete_gap:g} s (releases prepared in "
                f"{prepared:.1f} s); loopback, {os.cpu_count()} CPUs"
            )
            worst = 0.0
            ok = True
            releases = _chunks(done, per_round)
            scenarios: list[tuple[str, Build | None]] = [
                ("/golive status", status_request),
                ("reaction_added", stranger_reaction(ts)),
                ("/golive complete", None),  # one prepared release per request, one at a time
            ]
            for name, build in scenarios:
                if build is not None:
                    for _, url in apps:  # warm up: connections, caches, auth.test
                        await measure(url, build, 100, args.concurrency)
                await _caught_up(golive)
                pooled: dict[str, list[float]] = {label: [] for label, _ in apps}
                walls: dict[str, float] = {label: 0.0 for label, _ in apps}
                catch_up: list[float] = []
                charts: dict[bool, list[float]] = {False: [], True: []}
                for _ in range(rounds):  # interleaved, so a noisy moment hits every app
                    channels = next(releases) if build is None else []
                    for label, url in apps:
                        started = time.perf_counter()
                        if build is not None:
                            pooled[label] += await measure(
                                url, build, args.requests, args.concurrency
                            )
                        else:
                            requests = [command("complete", channel=c) for c in channels]
                            expect = "Release completed." if url == golive else None
                            latencies = await one_by_one(url, requests, args.complete_gap, expect)
                            pooled[label] += latencies
                            if url == golive:
                                for index, latency in enumerate(latencies):
                                    # A chart waits PACE behind its announcement: none is
                                    # drawn before then in a round.
                                    drawing = index * args.complete_gap >= PACE
                                    charts[drawing].append(latency)
                        walls[label] += time.perf_counter() - started
                        if url == golive:  # its queued work must not run during the others
                            catch_up.append(await _caught_up(golive))
                for label, _ in apps:
                    print(_row(f"{name:<17} {label}", pooled[label], walls[label]))
                for drawing, label in ((False, "before charts"), (True, "charts drawn")):
                    if charts[drawing]:
                        wall = walls["golive"] * len(charts[drawing]) / len(pooled["golive"])
                        print(_row(f"{name:<17} golive, {label}", charts[drawing], wall))
                p50 = {label: statistics.median(v) for label, v in pooled.items()}
                p99 = {label: percentile(v, 99) for label, v in pooled.items()}
                best = min((label for label, _ in apps[:2]), key=lambda label: p99[label])
                ratio = p99["golive"] / p99[best]
                if build is not None:
                    worst = max(worst, ratio)
                    ok = ok and ratio <= 2.0
                ok = ok and p99["golive"] < 250
                print(
                    f"{name:<17} golive ÷ {best}: p50 ×{p50['golive'] / p50[best]:.2f}, "
                    f"p99 ×{ratio:.2f}"
                )
                drained = max(catch_up) * 1000
                print(
                    f"{name:<17} golive's work queued by a round (recorded, and delivered to "
                    f"Slack) was done ≤ {drained:.0f} ms after the round's last ack"
                )
            verdict = "meets" if ok else "MISSES"
            print(
                f"target p99 < 250 ms, and ≤ 2× the bare app for status and reactions: {verdict}"
                f" (worst of those p99 ×{worst:.2f})"
            )
            return 0 if ok else 1
        finally:
            _serve.stop(procs)


def main() -> int:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--completes", type=int, default=45, help="releases to complete")
    parser.add_argument("--complete-gap", type=float, default=0.2, help="seconds between two")
    parser.add_argument(
        "--profile", type=Path, metavar="FILE", help="run golive under cProfile, stats to FILE"
    )
    args = parser.parse_args()
    return asyncio.run(run(args))


if __name__ == "__main__":
    raise SystemExit(main())
