"""Reaction → next request in Slack: from an owner's approving reaction to the moment FakeSlack
records the chat.postMessage of the next step's approval request, alone and with 20 releases.

    python bench/reaction_latency.py [--alone 2] [--releases 20] [--think 1.0 1.5] [--profile FILE]

Runs FakeSlack in this process (its recorded calls carry the wall-clock time they arrived) and
`golive serve` (the real command: HTTP mode, SQLite on disk, the outbox paced to one post per
second per channel, as Slack asks) in its own. Each release is driven as its owners would:
`/golive start`, then for every approval request that appears in Slack, after a think time
drawn from `--think` (seconds after the request appeared), a signed `reaction_added` by the
step's owner. The five precondition requests are posted together at the start; from the last
of them on, each approval opens the next step, and the time from the reaction leaving this
process to the next request's chat.postMessage is one sample, up to the soak's timer.

- alone: `--alone` releases one after another, each in its own channel;
- at once: `--releases` releases started together in as many release channels (the merge-freeze
  announcements of all of them also go to one shared announce channel).

Baselines measured in the same run:
- the pacing floor of each sample: the earliest golive may post the request without breaking
  the 1 s pace after the channel's previous post (its recorded time + 1 s − the reaction);
- a bare Bolt app (Bolt's defaults: ack, then the listener) that answers each reaction with one
  chat.postMessage into the reaction's channel, through the same FakeSlack: alone (one reaction
  at a time) and with as many channels, each reacting after the same think times.

For each sample it also notes when golive's first Web API call in that channel after the
reaction was recorded (the approved request's chat.update): up to there is golive's own work
(keeping the event in its inbox, the ack, the transaction with its rendering, the outbox waking
up). With `--profile FILE`,
golive runs under cProfile and its CPU time is summed by where it was spent (SQLite, store,
rendering, engine, Bolt/HTTP; every thread) and one approval by what it calls; the profile
slows it, so read those figures as shares.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import pstats
import random
import re
import signal
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _serve
import aiohttp
import yaml
from _serve import COMMANDER, command, percentile, reaction

# The approval requests of one release under the benchmarks' config, in the order they appear:
# the five preconditions at once, then one step (or stage) after another until the soak.
SEQUENCE = (
    *("ci", "incidents", "notes", "rollback", "baseline"),
    *("preflight", "freeze", "backup", "migrations"),
    *("wave-1", "wave-1", "wave-2", "wave-2", "portal", "portal"),
)
FIRST_MEASURED = SEQUENCE.index("baseline")  # approving it opens the next phase's request
BARE_ALONE = 50  # reactions to the bare app, one at a time
BARE_GAP = 0.1  # seconds between them
WAIT = 60.0  # seconds a request may take to appear before the run is called broken
_MENTION = re.compile(r"<@(U[A-Z0-9]+)>")


@dataclass(frozen=True)
class Post:
    """A chat.postMessage FakeSlack recorded: when (epoch seconds) and the message's ts."""

    at: float
    ts: str


@dataclass(frozen=True)
class Request:
    """An approval request as Slack shows it: which step, whose, and when it arrived."""

    at: float
    ts: str
    step: str
    owner: str


@dataclass(frozen=True)
class Sample:
    """One reaction → next post, in seconds from the reaction leaving this process."""

    step: str  # the step approved ("bare" for the bare app)
    total: float  # until the next request's chat.postMessage was recorded
    ack: float  # until the app's HTTP answer to the reaction arrived
    first: float  # until the first Web API call in that channel was recorded
    ahead: int  # Web API calls recorded in other channels in between (what went first)
    floor: float  # the earliest the post could go out at golive's pace


class Watch:
    """FakeSlack's recorded calls, sorted per channel as they arrive (polled every 2 ms)."""

    def __init__(self, fake: Any) -> None:
        from bot.render.messages import APPROVE_ACTION

        self.fake = fake
        self.action = APPROVE_ACTION
        self.seen = 0
        self.calls: dict[str, list[tuple[float, str]]] = defaultdict(list)
        self.posts: dict[str, list[Post]] = defaultdict(list)
        self.requests: dict[str, list[Request]] = defaultdict(list)
        self._changed = asyncio.Event()

    async def run(self) -> None:
        """Sort new calls every 2 ms until cancelled."""
        while True:
            self.scan()
            await asyncio.sleep(0.002)

    def scan(self) -> None:
        """Sort the calls recorded since the last scan; wake whoever waits."""
        new = self.fake.calls[self.seen :]
        self.seen += len(new)
        for call in new:
            channel = call.params.get("channel")
            if call.outcome != "ok" or not isinstance(channel, str):
                continue
            at = call.at.timestamp()
            self.calls[channel].append((at, call.method))
            if call.method != "chat.postMessage":
                continue
            # The k-th posted call in a channel is the k-th message FakeSlack holds there.
            message = self.fake.posts(channel)[len(self.posts[channel])]
            self.posts[channel].append(Post(at, message.ts))
            request = self._request(at, message)
            if request is not None:
                self.requests[channel].append(request)
        if new:
            changed, self._changed = self._changed, asyncio.Event()
            changed.set()

    def _request(self, at: float, message: Any) -> Request | None:
        for block in message.blocks or []:
            for element in block.get("elements") or []:
                if element.get("action_id") == self.action:
                    step = str(element["value"]).partition(":")[2]
                    owner = _MENTION.search(message.text)
                    assert owner is not None, message.text
                    return Request(at, message.ts, step, owner.group(1))
        return None

    async def until(self, ready: Callable[[], bool], what: str) -> None:
        """Wait until `ready()` holds, failing after WAIT seconds."""
        deadline = time.monotonic() + WAIT
        while not ready():
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"timed out waiting for {what}")
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except TimeoutError:
                continue

    async def request(self, channel: str, index: int) -> Request:
        """The index-th approval request in `channel`, once it has arrived."""
        await self.until(
            lambda: len(self.requests[channel]) > index, f"request {index} in {channel}"
        )
        return self.requests[channel][index]

    async def post(self, channel: str, index: int) -> Post:
        """The index-th chat.postMessage in `channel`, once it has arrived."""
        await self.until(lambda: len(self.posts[channel]) > index, f"post {index} in {channel}")
        return self.posts[channel][index]

    def sample(
        self, step: str, channel: str, sent: float, acked: float, post: Post, pace: float
    ) -> Sample:
        """The figures of one reaction (sent at `sent`, answered at `acked`) followed by `post`."""
        first = min(at for at, _ in self.calls[channel] if at >= sent)
        ahead = sum(
            1
            for other, calls in self.calls.items()
            if other != channel
            for at, _ in calls
            if sent <= at < first
        )
        earlier = [p.at for p in self.posts[channel] if p.at < post.at]
        floor = max(0.0, earlier[-1] + pace - sent) if earlier and pace else 0.0
        return Sample(step, post.at - sent, acked - sent, first - sent, ahead, floor)

    def between(self, start: float, end: float) -> dict[str, int]:
        """How many successful calls of each method were recorded in [start, end)."""
        counts: dict[str, int] = defaultdict(int)
        for calls in self.calls.values():
            for at, method in calls:
                if start <= at < end:
                    counts[method] += 1
        return dict(counts)


class Driver:
    """Plays the people: starts releases, reacts to requests, and times what follows."""

    def __init__(
        self, watch: Watch, session: aiohttp.ClientSession, think: tuple[float, float], pace: float
    ) -> None:
        self.watch = watch
        self.session = session
        self.think = think
        self.pace = pace

    async def release(self, url: str, channel: str, version: str, seed: int) -> list[Sample]:
        """One release in `channel`, approved by reaction up to the soak; its samples."""
        rng = random.Random(seed)
        answer = await _serve.send(self.session, url, command(f"start {version}", channel=channel))
        if b"started" not in answer:
            raise RuntimeError(f"could not start {version} in {channel}: {answer!r}")
        samples = []
        for index, expected in enumerate(SEQUENCE):
            request = await self.watch.request(channel, index)
            if request.step != expected:
                raise RuntimeError(f"{channel}: request {index} is {request.step}, not {expected}")
            await _sleep_until(request.at + rng.uniform(*self.think))
            sent = time.time()
            await _serve.send(self.session, url, reaction(request.owner, channel, request.ts))
            acked = time.time()
            if FIRST_MEASURED <= index < len(SEQUENCE) - 1:
                following = await self.watch.request(channel, index + 1)
                post = Post(following.at, following.ts)
                samples.append(self.watch.sample(expected, channel, sent, acked, post, self.pace))
        return samples

    async def bare(
        self, url: str, channel: str, count: int, gap: Callable[[], float]
    ) -> list[Sample]:
        """`count` reactions to the bare app in `channel`, each timed to the post it makes."""
        samples = []
        for index in range(count):
            sent = time.time()
            await _serve.send(self.session, url, reaction(COMMANDER, channel, f"{index + 1}.0"))
            acked = time.time()
            post = await self.watch.post(channel, index)
            samples.append(self.watch.sample("bare", channel, sent, acked, post, 0.0))
            await asyncio.sleep(gap())
        return samples


async def _sleep_until(when: float) -> None:
    await asyncio.sleep(max(0.0, when - time.time()))


async def _gather(jobs: Iterable[Awaitable[list[Sample]]]) -> list[Sample]:
    results = await asyncio.gather(*jobs)
    return [s for result in results for s in result]


async def _in_flight(database: Path, pending: list[int], stop: asyncio.Event) -> None:
    """golive's undelivered outbox rows, every 100 ms until `stop`, read from its database
    through a read-only connection (WAL: golive's writes never wait for it, and unlike
    /healthz it writes nothing itself)."""
    import sqlite3

    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
        while not stop.is_set():
            row = db.execute("select count(*) from outbox where status = 'pending'").fetchone()
            pending.append(int(row[0]))
            await asyncio.sleep(0.1)


HEADER = (
    f"  {'(ms; calls ahead: a count)':<46} {'n':>4} {'p50':>7} {'p99':>7} {'max':>7} │"
    " floor p50 p99 │ ack p99 │ 1st call p50 p99 │ ahead p50 p99"
)


def _line(label: str, samples: list[Sample], shift: bool = False) -> str:
    """One row; with `shift`, the figures are above each sample's pacing floor."""
    if not samples:
        return f"  {label:<46} (none)"

    def pair(values: list[float], width: int, scale: float = 1000.0) -> str:
        p50, p99 = statistics.median(values) * scale, percentile(values, 99) * scale
        return f"{p50:{width - 6}.0f} {p99:5.0f}"

    totals = [(s.total - (s.floor if shift else 0.0)) * 1000 for s in samples]
    columns = [
        f"{statistics.median(totals):7.1f} {percentile(totals, 99):7.1f} {max(totals):7.1f}",
        pair([s.floor for s in samples], 13),
        f"{percentile([s.ack for s in samples], 99) * 1000:7.0f}",
        pair([s.first for s in samples], 16),
        pair([float(s.ahead) for s in samples], 13, 1.0),
    ]
    return f"  {label:<46} {len(samples):4d} " + " │ ".join(columns)


def report(title: str, samples: list[Sample], bare: list[Sample]) -> None:
    """Print one scenario: golive's samples (all, unpaced, paced) beside the bare app's."""
    unpaced = [s for s in samples if s.floor == 0]
    paced = [s for s in samples if s.floor > 0]
    steps = sorted({s.step for s in paced}, key=SEQUENCE.index)
    print(title)
    print(HEADER)
    print(_line("golive, every sample", samples))
    print(_line("golive, not held by the pace (floor 0)", unpaced))
    print(_line("golive, held by the pace", paced))
    print(_line("  the same, above their pacing floor", paced, shift=True))
    print(_line("bare Bolt app: ack, then one chat.postMessage", bare))
    if steps:
        print(f"  (held by the pace: the requests after approving {', '.join(steps)})")


Key = tuple[str, int, str]  # (file, line, function) as pstats names a function
OTHER = "everything else (start-up imports, builtins)"
WAITS = ("select.epoll", "_thread.lock", "_thread.RLock", "time.sleep")
HTTP = ("slack_bolt", "slack_sdk", "aiohttp", "multidict", "yarl", "socket")
PLACES: tuple[tuple[str, Callable[[str, str], bool]], ...] = (
    ("waiting: sockets, locks, queues (not CPU)", lambda f, n: any(w in n for w in WAITS)),
    ("SQLite itself (sqlite3 calls)", lambda f, n: "sqlite3." in n),
    ("store: bot/store and sqlite-utils", lambda f, n: "/bot/store/" in f or "sqlite_utils" in f),
    ("JSON (decoding stored rows, encoding calls)", lambda f, n: "/json/" in f),
    ("rendering: bot/render", lambda f, n: "/bot/render/" in f),
    ("golive: engine, domain, commands, adapters", lambda f, n: f.startswith(str(_serve.ROOT))),
    ("HTTP: Bolt, slack_sdk, aiohttp, sockets", lambda f, n: any(p in f + n for p in HTTP)),
    ("asyncio's event loop", lambda f, n: "/asyncio/" in f or "_asyncio" in n),
    ("APScheduler", lambda f, n: "apscheduler" in f),
)


def profile_summary(path: Path) -> None:
    """Where golive's time went under cProfile: the whole run by place, and one approval
    (`ReleaseService.apply`) by what it calls."""
    table: dict[Key, tuple[int, int, float, float, dict[Key, tuple[int, int, float, float]]]]
    table = pstats.Stats(str(path)).stats  # type: ignore[attr-defined]
    spent: dict[str, float] = defaultdict(float)
    for (file, _, name), (_, _, own, _, _) in table.items():
        place = next((label for label, match in PLACES if match(file, name)), OTHER)
        spent[place] += own
    busy = sum(v for k, v in spent.items() if k != PLACES[0][0])
    print(f"golive under cProfile (which slows it: read shares): {busy:.1f} s busy in all,")
    print("start-up included")
    for label, seconds in sorted(spent.items(), key=lambda kv: -kv[1]):
        share = f"{seconds / busy:6.1%}" if label != PLACES[0][0] else "      "
        print(f"  {label:<46} {seconds:6.2f} s {share}")
    apply = next(k for k in table if k[0].endswith("bot/engine/service.py") and k[2] == "apply")
    calls, whole = table[apply][1], table[apply][3]
    print(f"  one ReleaseService.apply (a reaction's transaction): {whole / calls * 1000:.2f} ms")
    parts = [
        (callee, edge[3])
        for callee, (_, _, _, _, callers) in table.items()
        for caller, edge in callers.items()
        if caller == apply
    ]
    for (file, _, name), seconds in sorted(parts, key=lambda kv: -kv[1])[:8]:
        where = f"{Path(file).parent.name}/{Path(file).name}:{name}"
        print(f"    {where:<44} {seconds / calls * 1000:6.2f} ms")


async def run(args: argparse.Namespace) -> int:
    """Start FakeSlack, golive and the bare app; drive every scenario; print the figures."""
    with tempfile.TemporaryDirectory(prefix="golive-reaction-") as tmp:
        return await _run(args, Path(tmp))


async def _run(args: argparse.Namespace, tmp: Path) -> int:
    from bot.adapters.slack.serve import PACE
    from bot.sandbox import FakeSlack

    alone = [f"C0SOLO{n:04d}" for n in range(args.alone)]
    busy = [f"C0BUSY{n:04d}" for n in range(args.releases)]
    think = (args.think[0], args.think[1])
    async with (
        FakeSlack() as fake,
        aiohttp.ClientSession() as session,
    ):
        watch = Watch(fake)
        watcher = asyncio.create_task(watch.run())
        api_url = f"{fake.url}/api/"
        config = tmp / "golive.yml"
        config.write_text(yaml.safe_dump(_serve.golive_config(alone + busy, tmp / "golive.db")))
        port = _serve.free_port()
        log = (tmp / "golive.log").open("wb")
        golive_proc = _serve.start_golive(
            config, port, _serve.serve_env(api_url), stderr=log, profile=args.profile
        )
        bare_proc, bare = _serve.spawn_bare(api_url, post=True)
        golive = f"http://127.0.0.1:{port}"
        driver = Driver(watch, session, think, PACE)
        try:
            await _serve.wait_healthy(golive, golive_proc)
            print(
                f"reaction → next approval request recorded by FakeSlack; golive paces posts to "
                f"{PACE:g} s per channel; owners react {think[0]:g}–{think[1]:g} s after a request "
                f"appears; loopback, {os.cpu_count()} CPUs"
            )
            began = time.perf_counter()
            # Interleaved: bare alone, golive alone, bare at once, golive at once.
            bare_alone = await driver.bare(bare, "C0BARESOLO", BARE_ALONE, lambda: BARE_GAP)
            solo: list[Sample] = []
            for n, channel in enumerate(alone):
                solo += await driver.release(golive, channel, f"v1.{n}.0", seed=n)
            rng = random.Random(99)
            bare_busy = await _gather(
                driver.bare(bare, f"C0BAREBUSY{n:04d}", 10, lambda: rng.uniform(*think))
                for n in range(args.releases)
            )
            pending: list[int] = []
            stop = asyncio.Event()
            sampler = asyncio.create_task(_in_flight(tmp / "golive.db", pending, stop))
            start = time.time()
            together = await _gather(
                driver.release(golive, channel, f"v2.{n}.0", seed=100 + n)
                for n, channel in enumerate(busy)
            )
            end = time.time()
            stop.set()
            await sampler
            wall = time.perf_counter() - began
        finally:
            watcher.cancel()
            await session.close()  # no idle keep-alive connection holds golive's shutdown
            golive_proc.send_signal(signal.SIGTERM)
            # FakeSlack runs on this loop: keep serving while golive finishes its deliveries.
            await asyncio.to_thread(golive_proc.wait, 30)
            log.close()
            await asyncio.to_thread(_serve.stop, [bare_proc])
    report(f"alone: {args.alone} release(s) one after another", solo, bare_alone)
    report(f"at once: {args.releases} releases in {args.releases} channels", together, bare_busy)
    calls = watch.between(start, end)
    print(
        f"in flight while the {args.releases} releases ran ({end - start:.0f} s): golive's "
        f"outbox held up to {max(pending)} undelivered messages (mean "
        f"{statistics.mean(pending):.1f}, sampled every 0.1 s); FakeSlack recorded "
        + ", ".join(f"{n} {m}" for m, n in sorted(calls.items(), key=lambda kv: -kv[1]))
        + f" ({sum(calls.values()) / (end - start):.1f} calls/s)"
    )
    print(f"benchmark wall time {wall:.0f} s")
    if args.profile:
        profile_summary(args.profile)
    lines = (tmp / "golive.log").read_text().splitlines()
    errors = [n for n, line in enumerate(lines) if " ERROR " in line]
    if errors:
        first = "\n".join(lines[errors[0] : errors[0] + 20])
        print(f"golive logged {len(errors)} errors; the first:\n{first}")
        return 1
    return 0


def main() -> int:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alone", type=int, default=2, help="releases run one after another")
    parser.add_argument("--releases", type=int, default=20, help="releases run at once")
    parser.add_argument(
        "--think",
        type=float,
        nargs=2,
        default=(1.0, 1.5),
        metavar=("MIN", "MAX"),
        help="seconds an owner takes to react after a request appears",
    )
    parser.add_argument(
        "--profile", type=Path, metavar="FILE", help="run golive under cProfile, stats to FILE"
    )
    args = parser.parse_args()
    if args.alone < 1 or args.releases < 1 or not 0 <= args.think[0] <= args.think[1]:
        parser.error("--alone and --releases must be ≥ 1, and 0 ≤ think MIN ≤ MAX")
    return asyncio.run(run(args))


if __name__ == "__main__":
    raise SystemExit(main())
