"""A sequential test per release: a one-sided binomial CUSUM on non-overlapping counts.

Why not one test per tick: a tick that judges a sliding 5-minute window every 30 s re-judges 90 %
of the data the previous tick judged, so "two bad ticks in a row" is nearly one piece of
evidence counted twice, and over 90 ticks a release is judged dozens of times at a level meant
for one test. Here every request counts exactly once: each tick adds the errors (or slow
requests) and requests that arrived since the previous tick.

The test (Page, 1954; the binomial form as in Reynolds & Stoumbos, 1999): with a no-change
level `a` and a rise worth paging for `b > a`, each request contributes the log-likelihood ratio
of "rate b" against "rate a" — ln(b/a) for an error, ln((1-b)/(1-a)) for a success — and

    S = max(0, S + errors · ln(b(1-a) / (a(1-b))) - requests · ln((1-a) / (1-b)))

pages when S reaches a threshold h. S is the evidence for a rise since the last moment it was
zero (the change point), so a page reads as "since 14:02, 48 errors in 2,000 requests where the
baseline predicts 20". The ratio is linear in the counts, so fractional counts from Prometheus'
increase() extrapolation are used as they are: the sum over ticks telescopes to the total.

The threshold is not a constant. golive chooses h so that a release without a change pages with
probability `false_page_rate` over its whole monitoring (soak plus heightened hour, at the
configured tick intervals and the baseline's traffic), by a seeded simulation of exactly that
plan. The baseline's own uncertainty moves the no-change level instead: it is the larger of
`tolerance` × the baseline and the baseline's upper credible bound (Jeffreys prior, so a
baseline with no errors is not certainty). Drawing the true rate from the posterior inside the
simulation was tried first: with a thin baseline a few per cent of draws sit above the page
level, and the threshold that keeps them quiet for an hour is in the hundreds — a test that
never pages. The simulation draws Poisson counts, whose variance is slightly above the
binomial's, so the chosen threshold errs on the quiet side. Results are cached per (rounded)
plan.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import ClassVar

# The test and its calibration.
TEST_NAME = "sequential binomial test (one-sided CUSUM on the counts since monitoring began)"
CALIBRATION_PATHS = 20_000
CALIBRATION_SEED = 20_261_120
MIN_EVENTS = 3  # never page on fewer bad requests than this since the change point
# After a page the statistic is held at most CAP·h, and the breach recovers once it falls to
# RECOVER·h: recovery needs about one threshold's worth of evidence for "back to normal", and a
# rate hovering at the threshold cannot flap between open and recovered every tick. (A breach
# also recovers when the last window's traffic is back at the no-change level: checks.watch.)
CAP = 1.5
RECOVER = 0.5
# p95 within the SLO means at most 5 % of requests slower than it; a page is worth it from 10 %.
LATENCY_ALLOWED = 0.05
LATENCY_ALARM = 0.10

Plan = tuple[tuple[int, float], ...]
"""The monitoring a threshold is chosen for: (number of ticks, seconds per tick) per period."""


def llr_weights(a: float, b: float) -> tuple[float, float]:
    """(per bad request, per request) weights of the binomial log-likelihood ratio b vs a."""
    if not 0.0 < a < b < 1.0:
        raise ValueError(f"need 0 < a < b < 1, got a={a}, b={b}")
    jump = math.log(b * (1.0 - a)) - math.log(a * (1.0 - b))
    drift = math.log1p(-a) - math.log1p(-b)
    return jump, drift


def _round_sig(value: float, step: float = 0.02) -> float:
    """`value` rounded on a logarithmic grid (2 % steps): nearby plans share one calibration."""
    if value <= 0:
        return 0.0
    return math.exp(round(math.log(value) / step) * step)


@dataclass(frozen=True)
class Calibration:
    """The threshold for one plan, and how fast the test sees the rise it is built for."""

    threshold: float
    false_page_rate: float
    # Seconds from the start of monitoring until a rise to `b` from the start is paged in 95 %
    # of simulated releases; None when that does not happen within the plan.
    detect95_seconds: float | None
    detect50_seconds: float | None


@functools.lru_cache(maxsize=256)
def _calibrate(
    truth: float,
    shape: float | None,
    a: float,
    b: float,
    rate: float,
    plan: Plan,
    alpha: float,
    paths: int,
    seed: int,
) -> Calibration:
    import numpy as np  # only when a threshold is chosen: most ticks never need numpy

    jump, drift = llr_weights(a, b)
    rng = np.random.default_rng(seed)
    ticks = [(float(seconds) * rate) for count, seconds in plan for _ in range(count)]
    # Under no change: the true rate is `truth`, or a draw from the baseline's posterior.
    scale = rng.gamma(shape, 1.0 / shape, paths) if shape else np.ones(paths)
    stat = np.zeros(paths)
    peak = np.zeros(paths)
    for requests in ticks:
        errors = rng.poisson(requests * truth * scale)
        stat = np.maximum(0.0, stat + errors * jump - requests * drift)
        np.maximum(peak, stat, out=peak)
    ordered = np.sort(peak)[::-1]
    allowed = min(math.floor(alpha * paths), paths - 1)
    # The smallest threshold no more than `allowed` simulated clean releases reach.
    threshold = float(ordered[allowed]) * (1.0 + 1e-9) + 1e-9
    # Floors: never on fewer than MIN_EVENTS bad requests, and never below ln(1/alpha) — the
    # level at which one excursion of the statistic alone could page with probability alpha.
    # At high traffic the simulated clean statistic almost never leaves zero, so without the
    # second floor a threshold of 1-2 would page on any small departure from the model (a
    # slow drift, bursty errors) that the Poisson simulation does not contain.
    threshold = max(threshold, (MIN_EVENTS - 1) * jump + 1e-9, math.log(1.0 / alpha))
    reached = float(np.mean(peak >= threshold))
    # How long a rise to `b` from the first tick takes to be paged (fewer paths suffice).
    sight = max(paths // 5, 1_000)
    stat = np.zeros(sight)
    when = np.full(sight, np.inf)
    elapsed = 0.0
    for count, seconds in plan:
        for _ in range(count):
            elapsed += seconds
            requests = seconds * rate
            errors = rng.poisson(requests * b, sight)
            stat = np.maximum(0.0, stat + errors * jump - requests * drift)
            when = np.where(np.isinf(when) & (stat >= threshold), elapsed, when)
    times = np.sort(when)

    def quantile(q: float) -> float | None:  # nearest rank; None when not paged by then
        value = float(times[min(math.ceil(q * sight) - 1, sight - 1)])
        return value if math.isfinite(value) else None

    return Calibration(threshold, reached, quantile(0.95), quantile(0.5))


def calibrate(
    *,
    truth: float,
    a: float,
    b: float,
    rate: float,
    plan: Plan,
    false_page_rate: float,
    shape: float | None = None,
    paths: int = CALIBRATION_PATHS,
    seed: int = CALIBRATION_SEED,
) -> Calibration:
    """The threshold that pages a release whose rate stays at `truth` with probability at most
    `false_page_rate` over `plan` at `rate` requests per second (cached on a 2 % grid).

    `shape` (the baseline's errors + ½) makes the true rate uncertain, Gamma-distributed around
    `truth` as the baseline's posterior; None treats `truth` as known (the latency SLO).
    """
    if rate <= 0 or not plan:
        raise ValueError("calibration needs traffic and at least one tick")
    return _calibrate(
        _round_sig(truth),
        None if shape is None or shape > 5_000 else _round_sig(shape, 0.05),
        _round_sig(a),
        _round_sig(b),
        _round_sig(rate, 0.05),
        tuple((int(n), float(s)) for n, s in plan),
        float(false_page_rate),
        int(paths),
        int(seed),
    )


# -- the running test -------------------------------------------------------------------------
def _iso(value: float) -> str:
    return datetime.fromtimestamp(value, UTC).isoformat()


@dataclass(frozen=True)
class Cusum:
    """The state of one signal's sequential test for one release; immutable, JSON-ready.

    Counts are cumulative since `start` (epoch seconds) as Prometheus reports them; `at_cp`,
    `total_cp` and `bad_cp` are the counts at the change point (the last time the statistic
    was zero). `reference` is the no-change level (baseline × tolerance, or 5 % slow) and
    `alarm` the rise worth paging for; `expected` is what the baseline predicts per request.
    """

    SERIAL_VERSION: ClassVar[int] = 1  # the stored state's format
    SERIAL_READS: ClassVar[tuple[int, ...]] = (1,)

    signal: str
    start: float
    expected: float
    reference: float
    alarm: float
    threshold: float
    statistic: float = 0.0
    alarmed: bool = False
    total: float = 0.0
    bad: float = 0.0
    at: float | None = None
    at_cp: float | None = None
    total_cp: float = 0.0
    bad_cp: float = 0.0
    updates: int = 0
    detect95_seconds: float | None = None
    false_page_rate: float | None = None

    @property
    def weights(self) -> tuple[float, float]:
        """(per bad request, per request) increments of the statistic."""
        return llr_weights(self.reference, self.alarm)

    def update(self, total: float, bad: float, at: float) -> Cusum:
        """The test after the counts since `start` reached (total, bad) at `at`.

        Only the increase since the previous update is new evidence. Increments may be
        slightly negative (Prometheus' extrapolation), which the linear statistic absorbs.
        """
        jump, drift = self.weights
        new_total, new_bad = total - self.total, bad - self.bad
        statistic = self.statistic + new_bad * jump - new_total * drift
        at_cp, total_cp, bad_cp = self.at_cp, self.total_cp, self.bad_cp
        if statistic <= 0.0:
            statistic, at_cp, total_cp, bad_cp = 0.0, at, total, bad
        elif at_cp is None:
            at_cp, total_cp, bad_cp = self.start, 0.0, 0.0
        alarmed = self.alarmed
        if not alarmed and statistic >= self.threshold:
            alarmed = True
        if alarmed:
            statistic = min(statistic, CAP * self.threshold)
            if statistic <= RECOVER * self.threshold:
                alarmed = False
        return replace(
            self,
            statistic=statistic,
            alarmed=alarmed,
            total=total,
            bad=bad,
            at=at,
            at_cp=at_cp,
            total_cp=total_cp,
            bad_cp=bad_cp,
            updates=self.updates + 1,
        )

    def recovered(self) -> Cusum:
        """The test after on-call has seen the breach end: evidence starts afresh from now."""
        return replace(
            self,
            statistic=0.0,
            alarmed=False,
            at_cp=self.at,
            total_cp=self.total,
            bad_cp=self.bad,
        )

    def since_change(self) -> tuple[float, float, float]:
        """(seconds, requests, bad requests) since the change point — or since the start when
        the statistic is zero, so a clean verdict shows everything it has seen."""
        if self.statistic > 0.0 and self.at_cp is not None and self.at is not None:
            return self.at - self.at_cp, self.total - self.total_cp, self.bad - self.bad_cp
        end = self.at if self.at is not None else self.start
        return end - self.start, self.total, self.bad


def error_levels(
    baseline_requests: float, baseline_errors: float, min_increase: float, tolerance: float
) -> tuple[float, float, float, float]:
    """(expected, reference, alarm, posterior shape) for 5xx against a baseline.

    The expected 5xx share is the posterior mean under a Jeffreys prior, (e0 + ½) / n0, so a
    baseline without errors still expects some; no change means up to `tolerance` × that; a
    page is worth it from twice the baseline, or `min_increase` above it when that is more.
    """
    if baseline_requests <= 0:
        raise ValueError("a baseline without requests cannot predict anything")
    errors = min(max(baseline_errors, 0.0), baseline_requests)
    shape = errors + 0.5
    expected = min(shape / baseline_requests, 0.5)
    reference = min(expected * tolerance, 0.9)
    alarm = min(max(2.0 * expected, expected + min_increase), 0.99)
    if alarm <= reference:
        alarm = min((reference + 1.0) / 2.0, 0.999)
    return expected, reference, alarm, shape


@functools.lru_cache(maxsize=512)
def _upper_factor(shape: float, level: float, seed: int) -> float:
    import numpy as np

    draws = np.random.default_rng(seed).gamma(shape, 1.0 / shape, CALIBRATION_PATHS)
    return float(np.quantile(draws, level))


def baseline_bound(shape: float, false_page_rate: float) -> float:
    """How far above its estimate the baseline's true 5xx rate may plausibly lie: the
    (1 - false_page_rate) quantile of its posterior, as a factor of the posterior mean
    (about 1.2 for 120 baseline errors, 2.3 for 4, 6.6 for none)."""
    return _upper_factor(_round_sig(shape, 0.05), 1.0 - false_page_rate, CALIBRATION_SEED)


def plan_seconds(plan: Sequence[tuple[int, float]]) -> float:
    """The whole monitoring time a plan covers."""
    return sum(n * s for n, s in plan)
