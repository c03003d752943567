"""Judgment simulation: golive's alerting as it runs, on simulated traffic scraped by Prometheus.

Every simulated release has a pre-release hour (the baseline), a 15-minute soak ticking every
30 s and an hour of heightened monitoring ticking every minute — golive's defaults, read from
bot.config. Traffic is Poisson per second (drawn per scrape interval, which is the same thing
for counters only seen at scrapes); Prometheus scrapes the counters every 15 s at a random
phase, and every query is answered the way Prometheus' increase() answers it: the samples
inside the range, extrapolated to its ends (extrapolatedRate, with its 1.1 × interval
threshold and the zero-floor for counters). Both rules are golive's own code:

- today's rule (the previous release): every tick judges the last 5 minutes with judge_errors
  (the exact conditional binomial test at `significance` and `min_error_increase`) or p95 by
  histogram_quantile against the SLO, and AlertTracker pages after `breach_ticks` (2) bad ticks;
- the sequential test: checks.watch.start_errors_test / start_latency_test / advance (the same
  functions the soak job calls) fed with one growing increase() range since the soak began,
  and AlertTracker with one tick.

A false page is any page of a release whose traffic never changed. Detection delay is from the
change (5 minutes into the soak) to the page. "Today at equal false pages" re-tunes today's
`significance` so that it pages clean releases of that row as often as the target (1 %), then
measures its delay: today's rule pages at a level iff two consecutive conclusive ticks both
have p < level and the minimum increase (this closed form is checked against AlertTracker at
the shipped level). Seeded and reproducible: `python bench/judgment_sim.py [--scale 1] [--seed]`.
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import statistics
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from bot.domain.config import MonitoringConfig
from bot.sandbox.prometheus import histogram_quantile
from checks.base import Status
from checks.judgment import AlertTracker, Baseline, Judgment, judge_errors, judge_latency
from checks.monitoring import Since, choose_bucket
from checks.sequential import Cusum
from checks.watch import advance, start_errors_test, start_latency_test

MON = MonitoringConfig()
SOAK = MON.soak.duration.total_seconds()
SOAK_TICK = MON.soak.interval.total_seconds()
HIGH = MON.heightened.duration.total_seconds()
HIGH_TICK = MON.heightened.interval.total_seconds()
WINDOW = MON.window.total_seconds()
BASE = MON.baseline_window.total_seconds()
SLO = MON.slo_p95.total_seconds()
PLAN = ((round(SOAK / SOAK_TICK), SOAK_TICK), (round(HIGH / HIGH_TICK), HIGH_TICK))
TICKS = [SOAK_TICK * i for i in range(1, PLAN[0][0] + 1)] + [
    SOAK + HIGH_TICK * i for i in range(1, PLAN[1][0] + 1)
]
CHANGE_AT = 300.0  # the rise starts five minutes into the soak
VOLUMES = (200, 1_000, 10_000, 100_000)  # requests per 5 minutes
BASE_RATIOS = (0.01, 0.001)
SCRAPE = 15.0
DRIFT = 0.30  # ±30 % of the baseline's 5xx ratio, slowly (a two-hour period)
DRIFT_PERIOD = 7_200.0
T0 = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)
CLIENT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
SLO_BUCKETS = tuple(sorted((*CLIENT_BUCKETS, SLO)))
LATENCY_SIGMA = 0.5
Z95 = 1.6448536269514722


# -- traffic and Prometheus ------------------------------------------------------------------
@dataclass(frozen=True)
class Cell:
    """One row of a table: traffic, what changes, how many releases."""

    kind: str  # clean | drift | x2 | x5 | lat | latx
    volume: int
    ratio: float
    releases: int
    seed: int
    scrape: float = SCRAPE
    buckets: tuple[float, ...] = ()
    p95: float = 0.0  # true p95 (latency cells), before and after the change
    tolerance: float = MON.tolerance


def _mean_ratio(cell: Cell, start: np.ndarray, end: np.ndarray, rng: np.random.Generator) -> Any:
    """The mean 5xx ratio over each scrape interval (start, end], per release."""
    steps = 15
    offsets = (np.arange(steps) + 0.5) / steps
    t = start[..., None] + (end - start)[..., None] * offsets
    base = np.full_like(t, cell.ratio)
    if cell.kind == "drift":
        phase = rng.uniform(0, 2 * math.pi, t.shape[0])[:, None, None]
        wave = 1 + DRIFT * np.sin(2 * math.pi * t / DRIFT_PERIOD + phase)
        base = np.where(t > 0, base * wave, base)
    elif cell.kind in ("x2", "x5"):
        factor = 2.0 if cell.kind == "x2" else 5.0
        base = np.where(t > CHANGE_AT, base * factor, base)
    return base.mean(axis=-1)


@dataclass
class Scrapes:
    """Counters as Prometheus stored them: one row per release, one column per scrape."""

    first: np.ndarray  # time of each release's first scrape
    interval: float
    requests: np.ndarray
    errors: np.ndarray
    buckets: np.ndarray | None = None  # (release, scrape, bucket) cumulative in le, +Inf last


def scrape(cell: Cell, rng: np.random.Generator) -> Scrapes:
    """Simulate the traffic of `cell.releases` releases and what Prometheus scraped of it."""
    interval = cell.scrape
    begin = -BASE - 2 * interval
    count = int((TICKS[-1] - begin) / interval) + 3
    first = begin + rng.uniform(0, interval, cell.releases)
    times = first[:, None] + interval * np.arange(count)[None, :]
    rate = cell.volume / 300.0
    offset = rate * 86_400.0  # the service has been up for a day: counters are not near zero
    if cell.kind in ("lat", "latx"):
        requests = rng.poisson(rate * interval, times.shape)
        per = rng.multinomial(requests, bucket_shares(cell.buckets, cell.p95))
        if cell.kind == "latx":
            slower = rng.multinomial(requests, bucket_shares(cell.buckets, cell.p95 * 1.5))
            per = np.where((times > CHANGE_AT)[..., None], slower, per)
        cumulative = np.cumsum(np.cumsum(per, axis=-1), axis=1) + int(offset)
        total = np.cumsum(requests, axis=1) + offset
        return Scrapes(first, interval, total, np.zeros_like(total), cumulative)
    start = np.concatenate([times[:, :1] - interval, times[:, :-1]], axis=1)
    ratio = _mean_ratio(cell, start, times, rng)
    errors = rng.poisson(rate * interval * ratio)
    fine = rng.poisson(rate * interval * (1 - ratio))
    requests = np.cumsum(errors + fine, axis=1) + offset
    return Scrapes(first, interval, requests, np.cumsum(errors, axis=1) + offset * cell.ratio)


def bucket_shares(bounds: Sequence[float], p95: float) -> list[float]:
    """The share of log-normal latencies (p95 given, σ = 0.5) in each bucket, +Inf last."""
    mu = math.log(p95) - Z95 * LATENCY_SIGMA
    cdf = [
        0.5 * (1 + math.erf((math.log(b) - mu) / (LATENCY_SIGMA * math.sqrt(2)))) for b in bounds
    ]
    shares = [hi - lo for lo, hi in zip([0.0, *cdf], cdf, strict=False)] + [1.0 - cdf[-1]]
    return [max(x, 0.0) for x in shares]


def increase(counter: np.ndarray, s: Scrapes, start: float, end: float) -> np.ndarray:
    """Prometheus' increase(counter[end-start]) evaluated at `end`, per release (NaN: no
    result, fewer than two samples in the range). Mirrors promql's extrapolatedRate."""
    k1 = np.floor((start - s.first) / s.interval).astype(int) + 1  # first sample after start
    k2 = np.floor((end - s.first) / s.interval).astype(int)  # last sample at or before end
    rows = np.arange(counter.shape[0])
    last = counter.shape[1] - 1
    c1 = counter[rows, np.clip(k1, 0, last)].astype(float)
    c2 = counter[rows, np.clip(k2, 0, last)].astype(float)
    raw = c2 - c1
    sampled = (k2 - k1) * s.interval
    average = s.interval
    to_start = s.first + k1 * s.interval - start
    to_end = end - (s.first + k2 * s.interval)
    threshold = 1.1 * average
    to_start = np.where(to_start >= threshold, average / 2, to_start)
    with np.errstate(divide="ignore", invalid="ignore"):
        to_zero = sampled * (c1 / raw)
        to_start = np.where((raw > 0) & (c1 >= 0), np.minimum(to_start, to_zero), to_start)
        to_end = np.where(to_end >= threshold, average / 2, to_end)
        value = raw * (sampled + to_start + to_end) / sampled
    return np.where(k2 - k1 >= 1, value, np.nan)


# -- the two rules on one release --------------------------------------------------------------
@dataclass
class Release:
    """What happened to one simulated release under both rules."""

    new_page: float | None = None  # seconds after soak start of the sequential test's page
    old_page: float | None = None  # today's rule at the shipped significance
    old_levels: list[tuple[float, float]] = field(default_factory=list)  # (tick, p or inf)
    soak_conclusive: int = 0
    soak_ticks: int = 0
    soak_last: bool = False


def _first_open(tracker: AlertTracker, judgment: Judgment, at: float) -> tuple[AlertTracker, bool]:
    tracker, actions = tracker.observe(judgment, T0 + timedelta(seconds=at))
    return tracker, any(a.kind == "open" for a in actions)


def run_errors(cell: Cell) -> list[Release]:
    """Both 5xx rules on every release of a cell."""
    rng = np.random.default_rng(cell.seed)
    s = scrape(cell, rng)
    base_n = increase(s.requests, s, -BASE, 0.0)
    base_e = increase(s.errors, s, -BASE, 0.0)
    cumulative = [(increase(s.requests, s, 0, t), increase(s.errors, s, 0, t)) for t in TICKS]
    windows = [
        (increase(s.requests, s, t - WINDOW, t), increase(s.errors, s, t - WINDOW, t))
        for t in TICKS
    ]
    out = []
    for r in range(cell.releases):
        baseline = Baseline(float(base_n[r]), float(base_e[r]), None, BASE, T0)
        test = errors_test(baseline, cell.tolerance)
        new = AlertTracker("sim", "errors", breach_ticks=1, error_ticks=MON.error_ticks)
        old = AlertTracker("sim", "errors", breach_ticks=MON.breach_ticks)
        release = Release()
        for i, t in enumerate(TICKS):
            (n, e), (wn, we) = cumulative[i], windows[i]
            if release.new_page is None:
                if math.isnan(n[r]) or math.isnan(wn[r]):
                    judged = Judgment.error("errors", "no samples in the range")
                else:
                    since = Since(0.0, t, float(n[r]), float(e[r]), None, None, {})
                    verdicts = advance(
                        test,
                        "not simulated here",
                        since,
                        bucket=None,
                        slo_seconds=SLO,
                        window_requests=float(wn[r]),
                        min_requests=MON.min_requests,
                        window="5m",
                        window_errors=float(we[r]),
                    )
                    test = verdicts.errors_test or test
                    judged = verdicts.errors
                if t <= SOAK:
                    release.soak_ticks += 1
                    ok = judged.status in (Status.PASS, Status.FAIL)
                    release.soak_conclusive += ok
                    release.soak_last = ok
                new, opened = _first_open(new, judged, t)
                if opened:
                    release.new_page = t
            if math.isnan(wn[r]):
                continue
            old_judged = judge_errors(
                float(wn[r]),
                float(we[r]),
                baseline,
                min_requests=MON.min_requests,
                min_increase=MON.min_error_increase,
                significance=MON.significance,
            )
            ev = old_judged.evidence
            if old_judged.status is not Status.INCONCLUSIVE:
                large = ev["ratio"] - ev["baseline_ratio"] >= MON.min_error_increase - 1e-12
                release.old_levels.append((t, ev["p_value"] if large else math.inf))
            if release.old_page is None:
                old, opened = _first_open(old, old_judged, t)
                if opened:
                    release.old_page = t
        assert release.old_page == old_page_at(release.old_levels, MON.significance)
        out.append(release)
    return out


def errors_test(baseline: Baseline, tolerance: float) -> Cusum | str:
    """The 5xx test golive starts at soak start, with the shipped settings."""
    return start_errors_test(
        baseline,
        start=0.0,
        min_requests=MON.min_requests,
        min_increase=MON.min_error_increase,
        tolerance=tolerance,
        false_page_rate=MON.false_page_rate,
        plan=PLAN,
    )


def old_page_at(levels: Sequence[tuple[float, float]], level: float) -> float | None:
    """When today's rule pages at `level`: the second of two consecutive conclusive ticks both
    below it (inconclusive ticks neither extend nor reset the streak, as in AlertTracker)."""
    for (_, a), (t, b) in itertools.pairwise(levels):
        if max(a, b) < level:
            return t
    return None


def critical_level(levels: Sequence[tuple[float, float]]) -> float:
    """The lowest level at which today's rule would page this release."""
    pairs = [max(a, b) for (_, a), (_, b) in itertools.pairwise(levels)]
    return min(pairs, default=math.inf)


def run_latency(cell: Cell) -> list[Release]:
    """Both p95 rules on every release of a latency cell."""
    rng = np.random.default_rng(cell.seed)
    s = scrape(cell, rng)
    assert s.buckets is not None
    labels = [repr(b) for b in cell.buckets] + ["+Inf"]
    bucket = choose_bucket(labels, SLO, "http_request_duration_seconds_bucket")
    index = labels.index(bucket.le) if bucket.le is not None else None
    bounds = (*cell.buckets, math.inf)
    base_n = increase(s.requests, s, -BASE, 0.0)
    out = []
    per_tick = []
    for t in TICKS:
        fast = increase(s.buckets[:, :, index], s, 0, t) if index is not None else None
        observed = increase(s.buckets[:, :, -1], s, 0, t)
        window = [increase(s.buckets[:, :, j], s, t - WINDOW, t) for j in range(len(bounds))]
        per_tick.append((fast, observed, window))
    for r in range(cell.releases):
        test: Cusum | str = start_latency_test(
            float(base_n[r]) / BASE, start=0.0, false_page_rate=MON.false_page_rate, plan=PLAN
        )
        new = AlertTracker("sim", "latency", breach_ticks=1, error_ticks=MON.error_ticks)
        old = AlertTracker("sim", "latency", breach_ticks=MON.breach_ticks)
        release = Release()
        for t, (fast, observed, window) in zip(TICKS, per_tick, strict=True):
            requests = float(window[-1][r])
            if release.new_page is None and fast is not None:
                since = Since(0.0, t, 0.0, 0.0, float(fast[r]), float(observed[r]), {})
                verdicts = advance(
                    "not simulated here",
                    test,
                    since,
                    bucket=bucket,
                    slo_seconds=SLO,
                    window_requests=requests,
                    min_requests=MON.min_requests,
                    window="5m",
                )
                test = verdicts.latency_test or test
                new, opened = _first_open(new, verdicts.latency, t)
                release.new_page = t if opened else None
            if release.old_page is None:
                pairs = [(b, float(w[r]) / WINDOW) for b, w in zip(bounds, window, strict=True)]
                p95 = histogram_quantile(0.95, pairs)
                judged = judge_latency(p95, SLO, requests=requests, min_requests=MON.min_requests)
                old, opened = _first_open(old, judged, t)
                release.old_page = t if opened else None
        out.append(release)
    return out


def run(cell: Cell) -> tuple[Cell, list[Release]]:
    """One cell in a worker process."""
    runner = run_latency if cell.kind.startswith("lat") else run_errors
    return cell, runner(cell)


# -- figures ---------------------------------------------------------------------------------
def share(count: float, total: int) -> str:
    """A percentage of releases."""
    return f"{count / total:.1%}" if total else "—"


def delay(pages: Sequence[float | None], releases: int) -> str:
    """Median minutes from the change to the page, and the share paged within the soak."""
    after = [p - CHANGE_AT for p in pages if p is not None and p > CHANGE_AT]
    if not after:
        return f"{'never':>7} {'0%':>5}"
    soak = sum(1 for p in pages if p is not None and CHANGE_AT < p <= SOAK)
    missed = releases - len(after)
    median = statistics.median(after + [math.inf] * missed)
    text = "never" if math.isinf(median) else f"{median / 60:.1f}m"
    return f"{text:>7} {soak / releases:>5.0%}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run every cell (two processes) and print the tables."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every release count")
    parser.add_argument("--seed", type=int, default=20261120)
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    args = parser.parse_args(argv)
    started = time.perf_counter()

    def n(count: int) -> int:
        return max(int(count * args.scale), 20)

    cells: list[Cell] = []
    for i, (volume, ratio) in enumerate((v, r) for r in BASE_RATIOS for v in VOLUMES):
        seed = args.seed + 100 * i
        cells += [
            Cell("clean", volume, ratio, n(1_000), seed + 1),
            Cell("drift", volume, ratio, n(500), seed + 2),
            Cell("x2", volume, ratio, n(200), seed + 3),
            Cell("x5", volume, ratio, n(200), seed + 4),
        ]
    cells.append(Cell("clean", 1_000, 0.01, n(1_000), args.seed + 5_000, scrape=60.0))
    for i, volume in enumerate(VOLUMES):
        for j, buckets in enumerate((CLIENT_BUCKETS, SLO_BUCKETS)):
            seed = args.seed + 7_000 + 10 * i + j
            cells.append(Cell("lat", volume, 0.0, n(500), seed, buckets=buckets, p95=0.9 * SLO))
        cells.append(
            Cell("latx", volume, 0.0, n(200), args.seed + 8_000 + i, buckets=SLO_BUCKETS, p95=0.36)
        )
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        results = dict(pool.map(run, sorted(cells, key=lambda c: -c.releases)))
    report(results, args, time.perf_counter() - started)
    return 0


def report(results: dict[Cell, list[Release]], args: Any, elapsed: float) -> None:
    """Print the tables."""
    target = MON.false_page_rate

    def find(kind: str, volume: int, ratio: float, **more: Any) -> tuple[Cell, list[Release]]:
        for cell, releases in results.items():
            if (cell.kind, cell.volume, cell.ratio) == (kind, volume, ratio) and all(
                getattr(cell, k) == v for k, v in more.items()
            ):
                return cell, releases
        raise KeyError((kind, volume, ratio, more))

    print(
        f"Judgment simulation (seed {args.seed}, scale {args.scale:g}): baseline {BASE / 60:.0f}m, "
        f"soak {SOAK / 60:.0f}m ticking every {SOAK_TICK:.0f}s, heightened {HIGH / 60:.0f}m every "
        f"{HIGH_TICK:.0f}s, Prometheus scraping every {SCRAPE:.0f}s at a random phase, "
        f"increase() extrapolation."
    )
    print(
        f"Today: window {WINDOW / 60:.0f}m, significance {MON.significance}, breach_ticks "
        f"{MON.breach_ticks}, min_error_increase {MON.min_error_increase:.1%}, min_requests "
        f"{MON.min_requests}. New: sequential test, false_page_rate {target:.0%}, tolerance "
        f"{MON.tolerance:g}x."
    )
    print()
    print("5xx: clean releases paged (soak + heightened hour)        ratio drifting ±30 %")
    header = (
        f"{'req/5m':>8} {'base':>5} {'releases':>8} {'today':>7} {'new':>6}"
        f"{'releases':>12} {'today':>7} {'new':>6}   {'soak: evidence':>15}"
    )
    print(header)
    print("-" * len(header))
    levels: dict[tuple[int, float], float] = {}
    for ratio in BASE_RATIOS:
        for volume in VOLUMES:
            _, clean = find("clean", volume, ratio, scrape=SCRAPE)
            _, drift = find("drift", volume, ratio)
            critical = sorted(critical_level(r.old_levels) for r in clean)
            # today's significance re-tuned so that it pages `target` of clean releases
            k = max(int(target * len(clean)), 1)
            levels[(volume, ratio)] = critical[k - 1] if k <= len(critical) else math.inf
            enough = sum(
                1
                for r in clean
                if r.soak_ticks and r.soak_last and r.soak_conclusive >= 0.8 * r.soak_ticks
            )
            print(
                f"{volume:>8,} {ratio:>5.1%} {len(clean):>8,} "
                f"{share(sum(r.old_page is not None for r in clean), len(clean)):>7} "
                f"{share(sum(r.new_page is not None for r in clean), len(clean)):>6}"
                f"{len(drift):>12,} "
                f"{share(sum(r.old_page is not None for r in drift), len(drift)):>7} "
                f"{share(sum(r.new_page is not None for r in drift), len(drift)):>6}"
                f"   {share(enough, len(clean)):>9} enough"
            )
    _, slow_scrape = find("clean", 1_000, 0.01, scrape=60.0)
    print(
        f"{'with a 1m scrape interval: 1,000 req/5m, 1.0%':<45} "
        f"today {share(sum(r.old_page is not None for r in slow_scrape), len(slow_scrape))}, "
        f"new {share(sum(r.new_page is not None for r in slow_scrape), len(slow_scrape))}"
    )
    print()
    print(
        f"5xx rises {CHANGE_AT / 60:.0f}m into the soak: median minutes from the change to the "
        f"page (unpaged releases count as never), share paged within the soak"
    )
    print(
        f"today* = today's rule with significance re-tuned to page {target:.0%} of clean releases"
    )
    header = (
        f"{'req/5m':>8} {'base':>5} | {'2x today':>13} {'2x today*':>13} {'2x new':>13} | "
        f"{'5x today':>13} {'5x today*':>13} {'5x new':>13} | {'today* level':>12}"
    )
    print(header)
    print("-" * len(header))
    for ratio in BASE_RATIOS:
        for volume in VOLUMES:
            level = levels[(volume, ratio)]
            row = f"{volume:>8,} {ratio:>5.1%} |"
            for kind in ("x2", "x5"):
                _, rel = find(kind, volume, ratio)
                tuned = [old_page_at(r.old_levels, level) for r in rel]
                row += (
                    f" {delay([r.old_page for r in rel], len(rel))}"
                    f" {delay(tuned, len(rel))}"
                    f" {delay([r.new_page for r in rel], len(rel))} |"
                )
            row += f" {'any' if math.isinf(level) else f'{level:.2g}':>12}"
            print(row)
    print()
    print(f"p95 (SLO {SLO * 1000:.0f} ms): true p95 at 90 % of the SLO, releases paged")
    header = f"{'req/5m':>8} | {'client default buckets':>24} | {'with a 400 ms bucket':>22} |"
    header += f" {'p95 ×1.5 at 5m: today / new':>30}"
    print(header)
    print("-" * len(header))
    for volume in VOLUMES:
        row = f"{volume:>8,} |"
        for buckets in (CLIENT_BUCKETS, SLO_BUCKETS):
            _, rel = find("lat", volume, 0.0, buckets=buckets)
            today = share(sum(r.old_page is not None for r in rel), len(rel))
            new = share(sum(r.new_page is not None for r in rel), len(rel))
            row += (
                f" today {today:>6} new {new:>6} |"
                if buckets == SLO_BUCKETS
                else (f" today {today:>6}  new {new:>6}  |")
            )
        _, rel = find("latx", volume, 0.0)
        row += (
            f" {delay([r.old_page for r in rel], len(rel))} / "
            f"{delay([r.new_page for r in rel], len(rel))}"
        )
        print(row)
    print()
    print("What golive tells on-call at soak start (a rise it is built for, paged in 95 %):")
    for ratio in BASE_RATIOS:
        row = f"  baseline {ratio:.1%}:"
        for volume in VOLUMES:
            requests = volume * BASE / 300
            test = errors_test(Baseline(requests, requests * ratio, None, BASE, T0), MON.tolerance)
            assert isinstance(test, Cusum)
            seen = test.detect95_seconds
            row += f"  {volume:,}/5m → {'never' if seen is None else f'{seen / 60:.0f}m'}"
            row += f" (to {test.alarm:.2%})"
        print(row)
    print(f"\n({elapsed:.0f}s)")


if __name__ == "__main__":
    raise SystemExit(main())
