"""Judgment maths: the exact test, 5xx and p95 verdicts, and the sentences that explain them."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest

from bot.domain.serial import dump, load
from checks.base import CheckResult, Status
from checks.judgment import (
    TEST_NAME,
    Baseline,
    Judgment,
    binomial_upper_tail,
    format_p,
    judge_errors,
    judge_latency,
    log_binomial_upper_tail,
)

CAPTURED = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
DEFAULTS = {"min_requests": 200, "min_increase": 0.005, "significance": 0.01}


def baseline(requests: float, errors: float, p95: float | None = 0.12) -> Baseline:
    """A one-hour baseline captured at a fixed time."""
    return Baseline(requests, errors, p95, 3600.0, CAPTURED)


def exact_tail(k: int, n: int, p: Fraction) -> float:
    """P(X >= k), X ~ Binomial(n, p), summed term by term in exact rational arithmetic."""
    return float(sum(math.comb(n, j) * p**j * (1 - p) ** (n - j) for j in range(k, n + 1)))


def brute_log_tail(k: int, n: int, p: float) -> float:
    """ln P(X >= k) by log-sum-exp over every term, each from lgamma (no recurrence)."""
    logs = [
        math.lgamma(n + 1)
        - math.lgamma(j + 1)
        - math.lgamma(n - j + 1)
        + j * math.log(p)
        + (n - j) * math.log1p(-p)
        for j in range(k, n + 1)
    ]
    top = max(logs)
    return top + math.log(sum(math.exp(x - top) for x in logs))


@dataclass(frozen=True)
class Case:
    """One table row: window and baseline counts, settings, and the verdict they must give."""

    name: str
    requests: int
    errors: int
    base_requests: int
    base_errors: int
    expected: Status
    reason: str
    min_increase: float = 0.005
    min_requests: int = 200


# fmt: off
CASES = [
    Case("one error in 40 requests", 40, 1, 12_000, 120, Status.INCONCLUSIVE,
         "too_little_traffic"),
    Case("199 requests is still too few", 199, 30, 12_000, 120, Status.INCONCLUSIVE,
         "too_little_traffic"),
    Case("1% → 1.2% at 100k: significant but below +0.5 pts", 100_000, 1_200, 1_200_000,
         12_000, Status.PASS, "below_min_increase"),
    Case("1% → 5% at 10k", 10_000, 500, 120_000, 1_200, Status.FAIL, "elevated"),
    Case("0 baseline errors, 1 error in 10k", 10_000, 1, 120_000, 0, Status.PASS,
         "not_significant"),
    Case("0 baseline errors, 1 error in 200", 200, 1, 2_400, 0, Status.PASS, "not_significant"),
    Case("doubling 1% → 2% at 10k per window", 10_000, 200, 120_000, 1_200, Status.FAIL,
         "elevated"),
    Case("doubling 1% → 2% at 10k, baseline as large as the window", 10_000, 200, 10_000, 100,
         Status.FAIL, "elevated"),
    Case("1% → 1.3% at 100k with no minimum increase", 100_000, 1_300, 1_200_000, 12_000,
         Status.FAIL, "elevated", min_increase=0.0),
    Case("same 1% at 1M requests", 1_000_000, 10_000, 12_000_000, 120_000, Status.PASS,
         "not_significant"),
    Case("1% → 2% at 1M requests", 1_000_000, 20_000, 12_000_000, 120_000, Status.FAIL,
         "elevated"),
    Case("below the baseline", 10_000, 50, 120_000, 1_200, Status.PASS, "not_significant"),
    Case("1% → 1.4% at 1k: +0.4 pts is noise", 1_000, 14, 12_000, 120, Status.PASS,
         "not_significant"),
    Case("baseline with too few requests", 10_000, 500, 150, 0, Status.INCONCLUSIVE,
         "baseline_too_small"),
]
# fmt: on


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_error_verdicts(case: Case) -> None:
    """Each table row gives its verdict and names the reason in the evidence."""
    judged = judge_errors(
        case.requests,
        case.errors,
        baseline(case.base_requests, case.base_errors),
        min_requests=case.min_requests,
        min_increase=case.min_increase,
        significance=0.01,
    )
    assert (judged.status, judged.evidence["reason"]) == (case.expected, case.reason), (
        judged.summary
    )


P_VALUE_CASES = [
    (1_000, 20, 12_000, 120),
    (200, 5, 2_400, 24),
    (500, 0, 6_000, 60),
    (300, 9, 300, 3),
    (10_000, 1, 120_000, 0),
    (250, 3, 300, 2),
]


@pytest.mark.parametrize("counts", P_VALUE_CASES)
def test_p_values_match_an_exact_binomial_sum(counts: tuple[int, int, int, int]) -> None:
    """The reported p-value is P(X ≥ e1), X ~ Binomial(e1+e0, n1/(n1+n0)), summed exactly."""
    n1, e1, n0, e0 = counts
    judged = judge_errors(n1, e1, baseline(n0, e0), **DEFAULTS)
    expected = exact_tail(e1, e1 + e0, Fraction(n1, n1 + n0))
    assert judged.evidence["p_value"] == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("n", [1, 2, 7, 30, 61])
@pytest.mark.parametrize("p", [0.001, 0.05, 0.3, 0.5, 0.93])
def test_binomial_tail_matches_exact_sums_for_every_k(n: int, p: float) -> None:
    """For small n the tail equals the exact rational sum at every k, both sides of the mean."""
    exact_p = Fraction(p)
    for k in range(0, n + 2):
        expected = exact_tail(k, n, exact_p) if k <= n else 0.0
        assert binomial_upper_tail(k, n, p) == pytest.approx(expected, rel=1e-10, abs=1e-300)


@pytest.mark.parametrize(
    ("k", "n", "p"),
    [
        (20_000, 130_000, 1 / 13),
        (10_400, 130_000, 1 / 13),
        (9_900, 130_000, 1 / 13),
        (2_500, 20_000, 0.1),
        (1, 200_000, 5e-7),
    ],
)
def test_binomial_tail_is_right_for_large_counts(k: int, n: int, p: float) -> None:
    """At 10^5–10^6 the log tail matches a term-by-term log-sum-exp, far into underflow."""
    assert log_binomial_upper_tail(k, n, p) == pytest.approx(brute_log_tail(k, n, p), rel=1e-9)


def test_tiny_p_values_are_reported_in_log_form() -> None:
    """A p-value below the float range still has an exponent in the evidence and the summary."""
    judged = judge_errors(1_000_000, 50_000, baseline(12_000_000, 120_000), **DEFAULTS)
    assert judged.status is Status.FAIL
    assert judged.evidence["p_value"] == 0.0
    log10_p = judged.evidence["log10_p_value"]
    assert math.isfinite(log10_p) and log10_p < -1000
    assert f"p=1e{math.floor(log10_p) + 1}" in judged.summary or "e-" in judged.summary


def test_a_failing_summary_explains_itself() -> None:
    """The FAIL sentence gives ratio, counts, window, baseline, p-value and the increase rule."""
    judged = judge_errors(
        10_000,
        480,
        baseline(120_000, 1_200),
        window=timedelta(minutes=5),
        query='sum(increase(http_requests_total{status=~"5.."}[5m]))',
        **DEFAULTS,
    )
    assert judged.summary.startswith(
        "5xx 4.8% (480 of 10,000 in 5m) vs baseline 1.0% — significantly higher (p="
    )
    assert judged.summary.endswith("and +3.8 pts ≥ +0.5 pts")
    evidence = judged.evidence
    assert evidence["test"] == TEST_NAME and "binomial" in TEST_NAME
    assert evidence["query"].startswith("sum(increase(")
    assert (evidence["window"], evidence["requests"], evidence["errors"]) == ("5m", 10_000, 480)
    assert evidence["ratio"] == pytest.approx(0.048)
    assert evidence["baseline_ratio"] == pytest.approx(0.01)
    assert evidence["threshold"] == pytest.approx(0.015)
    assert evidence["significance"] == 0.01 and evidence["p_value"] < 1e-40


def test_pass_and_inconclusive_summaries_say_why() -> None:
    """PASS names the missing condition; INCONCLUSIVE names the traffic needed."""
    small = judge_errors(100_000, 1_200, baseline(1_200_000, 12_000), **DEFAULTS)
    assert "significantly higher" in small.summary
    assert "but only +0.2 pts < +0.5 pts" in small.summary
    quiet = judge_errors(40, 1, baseline(12_000, 120), window=300, **DEFAULTS)
    assert quiet.summary == (
        "5xx: only 40 requests in 5m (need ≥ 200 to judge); 1 error — inconclusive"
    )
    noise = judge_errors(1_000, 12, baseline(12_000, 120), **DEFAULTS)
    assert "not significantly higher (p=" in noise.summary


def test_prometheus_counts_are_rounded_and_capped() -> None:
    """increase() extrapolates: counts are rounded, and errors above requests are capped."""
    judged = judge_errors(1_000.4, 1_200.6, baseline(12_000.2, 119.7), **DEFAULTS)
    assert (judged.evidence["requests"], judged.evidence["errors"]) == (1_000, 1_000)
    assert judged.evidence["baseline_errors"] == 120


@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf])
def test_impossible_counts_are_errors(bad: float) -> None:
    """A negative or non-finite count is an ERROR verdict, never a pass."""
    judged = judge_errors(1_000, bad, baseline(12_000, 120), **DEFAULTS)
    assert judged.status is Status.ERROR and "5xx count" in judged.summary


def test_latency_against_the_slo() -> None:
    """p95 above the SLO fails, at or below passes, and the sentence shows both in ms."""
    over = judge_latency(0.512, 0.4, window=timedelta(minutes=5), query="histogram_quantile(...)")
    assert over.status is Status.FAIL
    assert over.summary == "p95 512 ms over 5m > SLO 400 ms"
    assert over.evidence["p95_seconds"] == 0.512 and over.evidence["slo_seconds"] == 0.4
    assert judge_latency(0.4, 0.4).status is Status.PASS
    assert judge_latency(0.12, 0.4).summary == "p95 120 ms ≤ SLO 400 ms"


def test_latency_from_too_little_traffic_is_inconclusive() -> None:
    """With request counts given, a p95 of fewer than min_requests requests is inconclusive."""
    judged = judge_latency(0.9, 0.4, requests=12, min_requests=200)
    assert judged.status is Status.INCONCLUSIVE and "only 12 requests" in judged.summary
    assert judge_latency(math.nan, 0.4).status is Status.ERROR


def test_baseline_and_judgment_round_trip() -> None:
    """Baseline and Judgment survive dump → load; a judgment becomes a CheckResult."""
    base = baseline(12_000, 120, None)
    assert load(Baseline, dump(base)) == base
    assert base.ratio == 0.01 and base.window == "1h"
    judged = judge_errors(10_000, 480, base, **DEFAULTS)
    assert load(Judgment, dump(judged)) == judged
    result = judged.result()
    assert isinstance(result, CheckResult)
    assert (result.name, result.status, result.summary) == ("5xx", Status.FAIL, judged.summary)
    error = Judgment.error("latency", "Prometheus has no data for p95")
    assert error.status is Status.ERROR and error.summary.startswith("p95: no verdict")


def test_p_value_formatting() -> None:
    """p-values read naturally: two digits when large, mantissa and exponent when tiny."""
    assert format_p(0.2134) == "p=0.21"
    assert format_p(0.0042) == "p=0.0042"
    assert format_p(1e-40, -40.0) == "p=1e-40"
    assert format_p(0.0, -400.3) == "p=5e-401"
    assert format_p(9.6e-5) == "p=1e-4"
