"""One monitoring tick's judgment: the sequential tests of 5xx and p95, in plain words.

Pure functions over counts (no I/O), shared by the soak job and by bench/judgment_sim.py so the
benchmark judges exactly what golive judges. A tick reads the counts since monitoring began
(checks.monitoring.measure_since), advances each signal's test (checks.sequential.Cusum) and
turns it into a Judgment the AlertTracker consumes:

- FAIL while the test is alarmed (its statistic reached the threshold, and has not yet fallen
  back to half of it);
- INCONCLUSIVE when fewer than `min_requests` requests arrived in the configured window — too
  little traffic to call the release clean, although the counts still go into the test;
- PASS otherwise. ERROR when Prometheus could not answer: missing data is never zero evidence.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.domain.events import Evidence
from checks.base import Status
from checks.judgment import (
    Baseline,
    Judgment,
    Signal,
    format_count,
    format_ms,
    format_percent,
    format_window,
)
from checks.monitoring import Since, SloBucket
from checks.sequential import (
    LATENCY_ALARM,
    LATENCY_ALLOWED,
    RECOVER,
    TEST_NAME,
    Cusum,
    Plan,
    baseline_bound,
    calibrate,
    error_levels,
)

CONCLUSIVE = frozenset({Status.PASS.value, Status.FAIL.value, Status.WARN.value})


def start_errors_test(
    baseline: Baseline | None,
    *,
    start: float,
    min_requests: int,
    min_increase: float,
    tolerance: float,
    false_page_rate: float,
    plan: Plan,
) -> Cusum | str:
    """The 5xx test against the baseline, or why there is none (said to people as it is)."""
    if baseline is None:
        return "no baseline was captured, so an increase cannot be judged"
    if baseline.requests < min_requests:
        return (
            f"the baseline has only {format_count(baseline.requests)} requests in "
            f"{baseline.window} (need ≥ {min_requests:,}) — cannot judge 5xx against it"
        )
    expected, reference, alarm, shape = error_levels(
        baseline.requests, baseline.errors, min_increase, tolerance
    )
    # No change means up to `tolerance` × the baseline — or more, as far as a thin baseline's
    # true rate may plausibly lie above its estimate. The statistic is built against that level
    # and its threshold simulated at it, so neither a slowly wandering ratio nor an unlucky
    # baseline pages; a page is then worth it from half as much again at least.
    reference = min(expected * max(tolerance, baseline_bound(shape, false_page_rate)), 0.9)
    alarm = min(max(alarm, 1.5 * reference), (1.0 + reference) / 2.0)
    rate = baseline.requests / baseline.window_seconds
    chosen = calibrate(
        truth=reference,
        a=reference,
        b=alarm,
        rate=rate,
        plan=plan,
        false_page_rate=false_page_rate,
    )
    return Cusum(
        "errors",
        start,
        expected,
        reference,
        alarm,
        chosen.threshold,
        detect95_seconds=chosen.detect95_seconds,
        false_page_rate=false_page_rate,
    )


def start_latency_test(
    rate: float | None, *, start: float, false_page_rate: float, plan: Plan
) -> Cusum | str:
    """The p95 test (at most 5 % slower than the SLO, a page from 10 %), or why there is none."""
    if rate is None or rate <= 0:
        return "no traffic to size the p95 test by yet"
    chosen = calibrate(
        truth=LATENCY_ALLOWED,
        a=LATENCY_ALLOWED,
        b=LATENCY_ALARM,
        rate=rate,
        plan=plan,
        false_page_rate=false_page_rate,
    )
    return Cusum(
        "latency",
        start,
        LATENCY_ALLOWED,
        LATENCY_ALLOWED,
        LATENCY_ALARM,
        chosen.threshold,
        detect95_seconds=chosen.detect95_seconds,
        false_page_rate=false_page_rate,
    )


def _span(test: Cusum) -> tuple[str, float, float]:
    seconds, total, bad = test.since_change()
    if test.statistic > 0.0:
        return f"in the last {format_window(max(seconds, 1.0))}", total, bad
    return f"since monitoring began {format_window(max(seconds, 1.0))} ago", total, bad


def _evidence(test: Cusum, total: float, bad: float) -> dict[str, Any]:
    return {
        "test": TEST_NAME,
        "statistic": round(test.statistic, 3),
        "threshold": round(test.threshold, 3),
        "false_page_rate": test.false_page_rate,
        "reference": test.reference,
        "alarm_level": test.alarm,
        "since_requests": round(total, 3),
        "since_bad": round(bad, 3),
        "since_expected": round(total * test.expected, 3),
        "cumulative_requests": round(test.total, 3),
        "cumulative_bad": round(test.bad, 3),
    }


def _tail(test: Cusum, what: str) -> str:
    share = f"{test.false_page_rate:.0%}" if test.false_page_rate is not None else "the"
    if test.alarmed and test.statistic >= test.threshold:
        return (
            f"elevated: the evidence for {what} is {test.statistic:.1f}, at or above the "
            f"threshold {test.threshold:.1f} (set for {share} false pages per release)"
        )
    if test.alarmed:
        return (
            f"still elevated: the evidence for {what} is {test.statistic:.1f}; it recovers "
            f"at {RECOVER * test.threshold:.1f} (half the threshold {test.threshold:.1f})"
        )
    return f"no rise: evidence {test.statistic:.1f} < threshold {test.threshold:.1f}"


def _quiet(window_requests: float | None, min_requests: int, window: str) -> str | None:
    if window_requests is None or window_requests >= min_requests:
        return None
    return f"only {format_count(window_requests)} requests in {window} (need ≥ {min_requests:,})"


def judge_errors_test(
    test: Cusum,
    *,
    window_requests: float | None,
    min_requests: int,
    window: str,
    query: str | None = None,
    requests_query: str | None = None,
) -> Judgment:
    """The 5xx verdict of a test that has just been advanced, explained."""
    span, total, bad = _span(test)
    ratio = bad / total if total > 0 else 0.0
    head = (
        f"5xx {format_percent(max(ratio, 0.0))} {span} ({format_count(max(bad, 0))} of "
        f"{format_count(max(total, 0))}) vs baseline {format_percent(test.expected)} "
        f"({format_count(max(total, 0) * test.expected)} expected)"
    )
    evidence = {
        "signal": "errors",
        **({"query": query} if query else {}),
        **({"requests_query": requests_query} if requests_query else {}),
        **_evidence(test, total, bad),
        "baseline_ratio": test.expected,
        "ratio": ratio,
        "window": window,
        "window_requests": window_requests,
        "min_requests": min_requests,
    }
    quiet = _quiet(window_requests, min_requests, window)
    rise = f"a rise to {format_percent(test.alarm)}"
    return _verdict("errors", test, head, rise, quiet, evidence, ("elevated", "no_rise"))


def _verdict(
    signal: Signal,
    test: Cusum,
    head: str,
    what: str,
    quiet: str | None,
    evidence: dict[str, Any],
    reasons: tuple[str, str],
) -> Judgment:
    """FAIL while alarmed, INCONCLUSIVE on a quiet window, PASS otherwise — with the reason."""
    if test.alarmed:
        evidence["reason"] = reasons[0]
        return Judgment(signal, Status.FAIL, f"{head} — {_tail(test, what)}", evidence)
    if quiet is not None:
        evidence["reason"] = "too_little_traffic"
        return Judgment(signal, Status.INCONCLUSIVE, f"{head} — {quiet} — inconclusive", evidence)
    evidence["reason"] = reasons[1]
    return Judgment(signal, Status.PASS, f"{head} — {_tail(test, what)}", evidence)


def judge_latency_test(
    test: Cusum,
    *,
    slo_seconds: float,
    bucket: SloBucket,
    window_requests: float | None,
    min_requests: int,
    window: str,
    query: str | None = None,
    p95_seconds: float | None = None,
) -> Judgment:
    """The p95 verdict (the share slower than the SLO bucket) of an advanced test, explained."""
    span, total, slow = _span(test)
    bound = bucket.seconds if bucket.seconds is not None else slo_seconds
    against = format_ms(bound)
    if not bucket.exact:
        against += f" (the nearest bucket above the SLO {format_ms(slo_seconds)})"
    share = slow / total if total > 0 else 0.0
    head = (
        f"p95: {format_percent(max(share, 0.0))} of {format_count(max(total, 0))} requests "
        f"{span} slower than {against}, where p95 within the SLO allows "
        f"{format_percent(test.expected)}"
    )
    evidence: dict[str, Any] = {
        "signal": "latency",
        **({"query": query} if query else {}),
        **_evidence(test, total, slow),
        "slo_seconds": slo_seconds,
        "bucket_seconds": bound,
        "bucket_exact": bucket.exact,
        "slow_share": share,
        "window": window,
        "window_requests": window_requests,
        "min_requests": min_requests,
        **({"p95_seconds": p95_seconds} if p95_seconds is not None else {}),
    }
    quiet = _quiet(window_requests, min_requests, window)
    above = f"more than {format_percent(test.alarm)} slower"
    return _verdict("latency", test, head, above, quiet, evidence, ("above_slo", "within_slo"))


@dataclass(frozen=True)
class Verdicts:
    """One tick's tests after the update and their verdicts."""

    errors_test: Cusum | None
    latency_test: Cusum | None
    errors: Judgment
    latency: Judgment


def advance(
    errors_test: Cusum | str,
    latency_test: Cusum | str,
    since: Since,
    *,
    bucket: SloBucket | None,
    slo_seconds: float,
    window_requests: float | None,
    min_requests: int,
    window: str,
    p95_seconds: float | None = None,
    window_errors: float | None = None,
) -> Verdicts:
    """Feed the counts since monitoring began to both tests and judge them.

    A breach also recovers when the last `window` had at least `min_requests` requests and is
    back at the no-change level (5xx at most baseline × tolerance; p95 at most the SLO): once
    the trouble has stopped, the evidence of the spike need not fade first. The test then
    starts afresh, so a new breach needs new evidence.
    """
    errors_out: Cusum | None = None
    latency_out: Cusum | None = None
    enough = window_requests is not None and window_requests >= min_requests
    if isinstance(errors_test, str):
        errors = Judgment("errors", Status.INCONCLUSIVE, f"5xx: {errors_test}", {})
    else:
        errors_out = errors_test.update(since.requests, since.errors, since.at)
        if (
            errors_out.alarmed
            and enough
            and window_errors is not None
            and window_requests is not None
            and window_errors <= errors_out.reference * window_requests
        ):
            errors_out = errors_out.recovered()
        errors = judge_errors_test(
            errors_out,
            window_requests=window_requests,
            min_requests=min_requests,
            window=window,
            query=since.queries.get("errors"),
            requests_query=since.queries.get("requests"),
        )
    if since.notes:
        errors = Judgment(
            errors.signal, errors.status, errors.summary, {**errors.evidence, "notes": since.notes}
        )
    if isinstance(latency_test, str):
        latency = Judgment("latency", Status.INCONCLUSIVE, f"p95: {latency_test}", {})
    elif since.latency_problem is not None or since.fast is None or since.observed is None:
        problem = since.latency_problem or "no histogram data"
        latency = Judgment.error("latency", problem, {"query": since.queries.get("fast")})
        latency_out = latency_test
    else:
        assert bucket is not None
        latency_out = latency_test.update(since.observed, since.observed - since.fast, since.at)
        if (
            latency_out.alarmed
            and enough
            and p95_seconds is not None
            and p95_seconds <= (bucket.seconds if bucket.seconds is not None else slo_seconds)
        ):
            latency_out = latency_out.recovered()
        latency = judge_latency_test(
            latency_out,
            slo_seconds=slo_seconds,
            bucket=bucket,
            window_requests=window_requests,
            min_requests=min_requests,
            window=window,
            query=since.queries.get("fast"),
            p95_seconds=p95_seconds,
        )
    return Verdicts(errors_out, latency_out, errors, latency)


# -- enough evidence to widen ---------------------------------------------------------------
def evidence_of(ticks: Sequence[Mapping[str, Any]], needed: float) -> Evidence:
    """The evidence of stored ticks, each given by its verdicts (signal → judgment): a tick is
    conclusive when every signal passed or failed."""

    def conclusive(verdicts: Mapping[str, Any]) -> bool:
        statuses = [v.get("status") for v in verdicts.values() if isinstance(v, Mapping)]
        return bool(statuses) and all(s in CONCLUSIVE for s in statuses)

    flags = [conclusive(t) for t in ticks]
    return Evidence(sum(flags), len(flags), bool(flags) and flags[-1], needed)


# -- what the monitoring can see ------------------------------------------------------------
def _seen(test: Cusum, what: str) -> str:
    if test.detect95_seconds is None:
        return f"{what} is not paged reliably (95 %) even by the end of heightened monitoring"
    return f"{what} is paged within {format_window(test.detect95_seconds)} in 95 % of releases"


def sight_note(
    errors_test: Cusum | str, latency_test: Cusum | str, soak_seconds: float
) -> tuple[str, bool]:
    """What the soak can see at the baseline's traffic, and whether it is shorter than the time
    a doubling of 5xx needs to be seen with 95 % probability (then on-call must be told)."""
    lines = []
    short = False
    if isinstance(errors_test, Cusum):
        double = errors_test.alarm <= 2.0 * errors_test.expected * 1.0001
        thin = errors_test.alarm <= 1.5 * errors_test.reference * 1.0001
        why = (
            "the baseline has too few errors to tell a doubling from its own uncertainty"
            if thin
            else "it is below min_error_increase"
        )
        rise = (
            f"a doubling of 5xx (to {format_percent(errors_test.alarm)})"
            if double
            else f"a rise of 5xx to {format_percent(errors_test.alarm)} (a doubling, to "
            f"{format_percent(2 * errors_test.expected)}, does not page: {why})"
        )
        lines.append(_seen(errors_test, rise))
        seen = errors_test.detect95_seconds
        short = seen is None or seen > soak_seconds
    else:
        lines.append(f"5xx cannot be judged: {errors_test}")
    if isinstance(latency_test, Cusum):
        slow = f"p95 above the SLO ({format_percent(latency_test.alarm)} of requests slower)"
        lines.append(_seen(latency_test, slow))
    text = "; ".join(lines)
    return text[0].upper() + text[1:], short
