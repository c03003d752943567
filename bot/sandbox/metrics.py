"""Request metrics of the simulated service: counters, a latency histogram, snapshots, traffic."""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import math
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.domain.clock import Now

BUCKETS: tuple[float, ...] = (
    0.05,
    0.1,
    0.15,
    0.2,
    0.25,
    0.3,
    0.4,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    10.0,
)
LATENCY_SIGMA = 0.5  # spread of the log-normal latency model
_Z95 = 1.6448536269514722  # standard normal 95th percentile


@dataclass(frozen=True)
class Snapshot:
    """Counter values at one instant: requests per status and cumulative histogram buckets."""

    at: datetime
    requests: dict[str, int]
    buckets: tuple[int, ...]  # cumulative, one per BUCKETS bound plus +Inf last
    duration_sum: float

    @property
    def count(self) -> int:
        """Observations in the histogram (its +Inf bucket)."""
        return self.buckets[-1]


class RequestMetrics:
    """`http_requests_total{status}` and `http_request_duration_seconds`, with a snapshot series.

    Snapshots are what a scraper would have seen; the Prometheus-compatible fake computes
    increase/rate from them. Status "200" and "500" series exist from the start (initialised at 0).
    """

    def __init__(
        self,
        clock: Now,
        *,
        buckets: tuple[float, ...] = BUCKETS,
        initial_statuses: tuple[str, ...] = ("200", "500"),
        retention: timedelta = timedelta(hours=6),
    ) -> None:
        """Counters start at zero at `clock()`; snapshots older than `retention` are dropped."""
        self.clock = clock
        self.bounds = buckets
        self.requests: dict[str, int] = dict.fromkeys(initial_statuses, 0)
        self._bucket_counts = [0] * (len(buckets) + 1)
        self.duration_sum = 0.0
        self.created_at = clock()
        self.series: list[Snapshot] = []
        self.retention = retention
        self.pruned = False

    def observe(self, status: int | str, seconds: float) -> None:
        """Count one served request with its status and duration."""
        key = str(status)
        self.requests[key] = self.requests.get(key, 0) + 1
        self._bucket_counts[bisect.bisect_left(self.bounds, seconds)] += 1
        self.duration_sum += seconds

    def cumulative_buckets(self) -> tuple[int, ...]:
        """Current cumulative bucket counts (le order, +Inf last)."""
        total, out = 0, []
        for count in self._bucket_counts:
            total += count
            out.append(total)
        return tuple(out)

    def snapshot(self, at: datetime | None = None) -> Snapshot:
        """Record the current values, timestamped `at` or by the clock (a "scrape")."""
        moment = at or self.clock()
        snap = Snapshot(moment, dict(self.requests), self.cumulative_buckets(), self.duration_sum)
        self.series.append(snap)
        horizon = snap.at - self.retention
        if self.series[0].at < horizon:
            self.series = [s for s in self.series if s.at >= horizon]
            self.pruned = True
        return snap

    def zero(self) -> Snapshot:
        """The all-zero values the counters started from."""
        return Snapshot(
            self.created_at, dict.fromkeys(self.requests, 0), (0,) * (len(self.bounds) + 1), 0.0
        )

    def window(self, end: datetime, seconds: float) -> tuple[Snapshot, Snapshot] | None:
        """(start, end) snapshots bounding (end - seconds, end]; None when no sample lies inside."""
        start_at = end - timedelta(seconds=seconds)
        last = bisect.bisect_right(self.series, end, key=lambda s: s.at) - 1
        if last < 0 or self.series[last].at <= start_at:
            return None
        first = bisect.bisect_right(self.series, start_at, key=lambda s: s.at) - 1
        start = self.series[first] if first >= 0 else self.series[0] if self.pruned else self.zero()
        return start, self.series[last]

    def exposition(self) -> str:
        """The Prometheus text exposition format 0.0.4 of the current values."""
        lines = [
            "# HELP http_requests_total Requests served by the simulated service, by status code.",
            "# TYPE http_requests_total counter",
        ]
        lines += [
            f'http_requests_total{{status="{s}"}} {n}' for s, n in sorted(self.requests.items())
        ]
        lines += [
            "# HELP http_request_duration_seconds Time spent serving a request.",
            "# TYPE http_request_duration_seconds histogram",
        ]
        cumulative = self.cumulative_buckets()
        labels = [repr(b) for b in self.bounds] + ["+Inf"]
        lines += [
            f'http_request_duration_seconds_bucket{{le="{le}"}} {n}'
            for le, n in zip(labels, cumulative, strict=True)
        ]
        lines.append(f"http_request_duration_seconds_sum {self.duration_sum!r}")
        lines.append(f"http_request_duration_seconds_count {cumulative[-1]}")
        return "\n".join(lines) + "\n"


@dataclass
class TrafficProfile:
    """Simulated load: requests per second, share of 5xx answers, 95th percentile latency."""

    rate: float = 20.0
    error_ratio: float = 0.005
    p95: float = 0.12

    def validate(self) -> None:
        """Raise ValueError for impossible values."""
        if self.rate < 0 or not 0 <= self.error_ratio <= 1 or self.p95 <= 0:
            raise ValueError("rate >= 0, 0 <= error_ratio <= 1 and p95 > 0 are required")


@dataclass
class TrafficGenerator:
    """Adds simulated requests to RequestMetrics, stepped manually or by a background task."""

    metrics: RequestMetrics
    profile: TrafficProfile = field(default_factory=TrafficProfile)
    seed: int = 7
    tick: float = 1.0
    _rng: random.Random = field(init=False)
    _carry: float = field(init=False, default=0.0)
    _task: asyncio.Task[None] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def advance(self, seconds: float) -> int:
        """Add `seconds` worth of traffic now and take a snapshot; returns the requests added."""
        count = self._generate(seconds)
        self.metrics.snapshot()
        return count

    def backfill(self, seconds: float, step: float = 15.0) -> int:
        """Pretend the service has run for `seconds` already: past traffic with past snapshots."""
        if self.metrics.series:
            raise RuntimeError("backfill must come before any snapshot")
        now = self.metrics.clock()
        self.metrics.created_at = now - timedelta(seconds=seconds)
        total, steps = 0, max(int(seconds // step), 1)
        for i in range(1, steps + 1):
            total += self._generate(seconds / steps)
            self.metrics.snapshot(now - timedelta(seconds=seconds * (steps - i) / steps))
        return total

    def _generate(self, seconds: float) -> int:
        if seconds < 0:
            raise ValueError("seconds must not be negative")
        expected = self.profile.rate * seconds + self._carry
        count = int(expected)
        self._carry = expected - count
        mu = math.log(self.profile.p95) - _Z95 * LATENCY_SIGMA
        rng, ratio = self._rng, self.profile.error_ratio
        for _ in range(count):
            status = "500" if rng.random() < ratio else "200"
            self.metrics.observe(status, rng.lognormvariate(mu, LATENCY_SIGMA))
        return count

    @property
    def running(self) -> bool:
        """True while the background task runs."""
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start adding traffic every `tick` seconds of real time on the running loop."""
        if not self.running:
            self.metrics.snapshot()
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stop the background task (the counters keep their values)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            await asyncio.sleep(self.tick)
            now = loop.time()
            self.advance(now - last)
            last = now
