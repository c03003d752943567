"""Judgment simulation: false pages and detection delay of the 5xx judgment, on Poisson traffic.

For each volume (requests per window) it simulates clean soaks (5xx at the baseline rate
throughout) and soaks whose 5xx rate doubles from tick CHANGE_TICK, runs judge_errors and
AlertTracker with golive's default settings, and prints:
- the false-page rate: soaks with any `open` while the rate equals the baseline;
- the detection delay: ticks from the change to the `open`, counting the first changed tick
  as 1 (so breach_ticks=2 cannot do better than 2), median and p95 over detected soaks;
- whether a single 5xx at low traffic pages.

Model: each tick judges its own, non-overlapping window (requests ~ Poisson(volume), 5xx ~
Poisson(requests × rate)); the baseline is BASELINE_WINDOWS windows long (1h / 5m = 12), drawn
afresh for every soak. Pure Python, seeded: `python bench/judgment_sim.py [--soaks N] [--seed S]`.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from checks.base import Status
from checks.judgment import AlertTracker, Baseline, judge_errors

VOLUMES = (100, 1_000, 10_000)
BASE_RATE = 0.01
TICKS = 30
CHANGE_TICK = 10  # the first tick at the doubled rate (0-based)
BASELINE_WINDOWS = 12
# golive's defaults (bot.domain.config.MonitoringConfig)
MIN_REQUESTS = 200
MIN_INCREASE = 0.005
SIGNIFICANCE = 0.01
T0 = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)
TICK = timedelta(seconds=30)


def poisson(rng: random.Random, lam: float) -> int:
    """A Poisson(lam) draw: multiplication method below 30, Hörmann's PTRS above (exact)."""
    if lam <= 0:
        return 0
    if lam < 30:
        limit, k, product = math.exp(-lam), 0, rng.random()
        while product > limit:
            k += 1
            product *= rng.random()
        return k
    slam, loglam = math.sqrt(lam), math.log(lam)
    b = 0.931 + 2.53 * slam
    a = -0.059 + 0.02483 * b
    inv_alpha = 1.1239 + 1.1328 / (b - 3.4)
    v_r = 0.9277 - 3.6224 / (b - 2)
    while True:
        u = rng.random() - 0.5
        v = rng.random()
        us = 0.5 - abs(u)
        k = math.floor((2 * a / us + b) * u + lam + 0.43)
        if us >= 0.07 and v <= v_r:
            return k
        if k < 0 or (us < 0.013 and v > us):
            continue
        if math.log(v) + math.log(inv_alpha) - math.log(a / (us * us) + b) <= (
            -lam + k * loglam - math.lgamma(k + 1)
        ):
            return k


def verdicts(rng: random.Random, volume: int, doubled_from: int | None) -> list[Status]:
    """One soak's per-tick 5xx verdicts against a freshly drawn baseline."""
    base_requests = poisson(rng, volume * BASELINE_WINDOWS)
    base_errors = poisson(rng, base_requests * BASE_RATE)
    baseline = Baseline(base_requests, base_errors, None, 3600.0, T0)
    out = []
    for tick in range(TICKS):
        rate = BASE_RATE * (2 if doubled_from is not None and tick >= doubled_from else 1)
        requests = poisson(rng, volume)
        errors = poisson(rng, requests * rate)
        judged = judge_errors(
            requests,
            errors,
            baseline,
            min_requests=MIN_REQUESTS,
            min_increase=MIN_INCREASE,
            significance=SIGNIFICANCE,
        )
        out.append(judged.status)
    return out


def first_open(statuses: Sequence[Status], breach_ticks: int) -> int | None:
    """The tick index of the first `open` an AlertTracker gives for this verdict stream."""
    tracker = AlertTracker("sim", "errors", breach_ticks=breach_ticks)
    for index, status in enumerate(statuses):
        tracker, actions = tracker.observe(status, T0 + index * TICK)
        if any(a.kind == "open" for a in actions):
            return index
    return None


def percentile(values: Sequence[int], q: float) -> float:
    """The q-quantile (nearest rank) of values."""
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))])


@dataclass
class Outcome:
    """Figures for one volume and one breach_ticks setting."""

    false_pages: int = 0
    early_pages: int = 0  # doubling soaks paged before the change
    delays: list[int] = field(default_factory=list)
    missed: int = 0
    inconclusive_ticks: int = 0
    ticks: int = 0


def simulate(volume: int, soaks: int, seed: int) -> dict[int, Outcome]:
    """Clean and doubling soaks at one volume; outcomes for breach_ticks 2 (default) and 1."""
    rng = random.Random(f"{seed}/{volume}")
    outcomes = {2: Outcome(), 1: Outcome()}
    for _ in range(soaks):
        clean = verdicts(rng, volume, None)
        doubled = verdicts(rng, volume, CHANGE_TICK)
        for breach_ticks, outcome in outcomes.items():
            outcome.ticks += len(clean)
            outcome.inconclusive_ticks += clean.count(Status.INCONCLUSIVE)
            if first_open(clean, breach_ticks) is not None:
                outcome.false_pages += 1
            opened = first_open(doubled, breach_ticks)
            if opened is not None and opened < CHANGE_TICK:
                outcome.early_pages += 1
                opened = first_open(doubled[CHANGE_TICK:], breach_ticks)
                opened = None if opened is None else opened + CHANGE_TICK
            if opened is None:
                outcome.missed += 1
            else:
                outcome.delays.append(opened - CHANGE_TICK + 1)
    return outcomes


def single_error_pages() -> list[tuple[str, bool]]:
    """Does one 5xx per window at low traffic ever page? (quiet baseline with no errors)."""
    cases = []
    for volume in (50, 200, 400, 1_000):
        baseline = Baseline(volume * BASELINE_WINDOWS, 0, None, 3600.0, T0)
        statuses = [
            judge_errors(
                volume,
                1,
                baseline,
                min_requests=MIN_REQUESTS,
                min_increase=MIN_INCREASE,
                significance=SIGNIFICANCE,
            ).status
            for _ in range(TICKS)
        ]
        paged = any(first_open(statuses, b) is not None for b in (1, 2))
        cases.append((f"{volume} req/window, 1 error every window, 0 in baseline", paged))
    return cases


def describe(delays: Sequence[int]) -> str:
    """Median and p95 of detection delays, or a dash."""
    if not delays:
        return "     —      —"
    return f"{statistics.median(delays):6.1f} {percentile(delays, 0.95):6.0f}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the simulation and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--soaks", type=int, default=1_000, help="soaks per kind and volume")
    parser.add_argument("--seed", type=int, default=20261120)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    print(
        f"5xx judgment simulation: {args.soaks:,} clean + {args.soaks:,} doubling soaks per "
        f"volume, {TICKS} ticks each, baseline {BASE_RATE:.0%} over {BASELINE_WINDOWS} windows, "
        f"rate ×2 from tick {CHANGE_TICK + 1}"
    )
    print(
        f"settings: min_requests {MIN_REQUESTS}, min_error_increase {MIN_INCREASE:.1%}, "
        f"significance {SIGNIFICANCE}, seed {args.seed}"
    )
    print()
    header = (
        f"{'req/window':>10} {'breach_ticks':>12} {'false pages':>12} {'inconcl.':>9} "
        f"{'detected':>9} {'median':>6} {'p95':>6} {'≤2 ticks':>9}"
    )
    print(header)
    print("-" * len(header))
    for volume in VOLUMES:
        outcomes = simulate(volume, args.soaks, args.seed)
        for breach_ticks in (2, 1):
            o = outcomes[breach_ticks]
            detected = len(o.delays)
            within_two = sum(1 for d in o.delays if d <= 2)
            print(
                f"{volume:>10,} {breach_ticks:>12} {o.false_pages / args.soaks:>12.2%} "
                f"{o.inconclusive_ticks / o.ticks:>9.0%} {detected / args.soaks:>9.1%} "
                f"{describe(o.delays)} {within_two / args.soaks:>9.1%}"
            )
    print()
    print("delay = ticks from the change to the page, the first changed tick counting as 1")
    print("inconcl. = share of clean ticks judged inconclusive (fewer than min_requests)")
    print()
    for label, paged in single_error_pages():
        print(f"single error at low traffic pages: {'yes' if paged else 'no'}  ({label})")
    print(f"\n({time.perf_counter() - started:.1f}s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
