"""Monitoring verdicts: 5xx against the baseline, p95 against the SLO, and alert decisions.

Pure functions and data, no I/O: the soak job measures (checks.prometheus), judges here, feeds
the verdict to an AlertTracker and persists the tracker's JSON with the actions it returned.

5xx uses the exact conditional binomial test for comparing two Poisson rates
(Przyborowski & Wilenski, 1940): with e1 errors in n1 window requests and e0 errors in n0
baseline requests, conditional on e = e1 + e0 the window's share of the errors is
Binomial(e, n1 / (n1 + n0)) when both periods have the same error rate. The one-sided p-value
is P(X >= e1). It is exact for counts (no normal approximation to break at 1 error or to
overflow at 10^6 requests); for binomial proportions it is slightly conservative, which is the
right side to err on when the outcome is a page.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Annotated, Any, ClassVar, Literal

from bot.domain.serial import Moment, Seconds, stored_as
from checks.base import CheckResult, Status
from checks.verification import (
    CSV_QUICKBOOKS,
    CSV_XERO,
    FINANCE_CRITERION,
    INVOICE,
    RBAC_CRITERION,
    RBAC_NAMES,
)

TEST_NAME = "exact conditional binomial test (one-sided, two Poisson rates)"
Signal = Literal["errors", "latency"]
SIGNAL_NAMES: dict[str, str] = {"errors": "5xx", "latency": "p95"}
_LN10 = math.log(10.0)
_TAIL_EPSILON = 1e-17


# -- formatting ------------------------------------------------------------------------------
def format_window(seconds: float) -> str:
    """A window as Prometheus writes durations: 10s, 5m, 1h, 1h30m (400ms below a second)."""
    ms = round(seconds * 1000)
    if ms < 1000:
        return f"{ms}ms"
    rest, parts = ms // 1000, []
    for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            parts.append(f"{rest // size}{unit}")
            rest %= size
    return "".join(parts)


def format_percent(fraction: float) -> str:
    """A fraction as a percentage for people: 4.8%, 1.0%, 0.01%, 0%."""
    value = fraction * 100.0
    if value == 0:
        return "0%"
    if abs(value) < 0.1:
        return f"{value:.2g}%"
    return f"{value:.1f}%"


def format_points(fraction: float) -> str:
    """A difference of two percentages in points, signed: +3.8 pts, -0.2 pts, +0.05 pts."""
    value = fraction * 100.0
    text = f"{value:+.2g}" if 0 < abs(value) < 0.1 else f"{value:+.1f}"
    return f"{text} pts"


def format_p(p_value: float, log10_p: float | None = None) -> str:
    """A p-value short enough for a sentence: p=0.21, p=0.004, p=3e-12, p=1e-400."""
    if p_value >= 0.001:
        return f"p={p_value:.2g}"
    exponent10 = log10_p if log10_p is not None else math.log10(max(p_value, 5e-324))
    exponent = math.floor(exponent10)
    mantissa = round(10 ** (exponent10 - exponent))
    if mantissa >= 10:
        mantissa, exponent = 1, exponent + 1
    return f"p={mantissa}e{exponent}"


def format_count(value: float) -> str:
    """A count with thousands separators (10,000)."""
    return f"{round(value):,}"


def format_ms(seconds: float) -> str:
    """Seconds as milliseconds for people: 512 ms, 1,250 ms."""
    return f"{seconds * 1000:,.0f} ms"


# -- the exact test --------------------------------------------------------------------------
def _log_pmf(k: int, n: int, log_p: float, log_q: float) -> float:
    return (
        math.lgamma(n + 1)
        - math.lgamma(k + 1)
        - math.lgamma(n - k + 1)
        + k * log_p
        + (n - k) * log_q
    )


def log_binomial_upper_tail(k: int, n: int, p: float) -> float:
    """ln P(X >= k) for X ~ Binomial(n, p), summed stably from the largest term (no scipy)."""
    if not 0.0 <= p <= 1.0 or n < 0:
        raise ValueError(f"need n >= 0 and 0 <= p <= 1, got n={n}, p={p}")
    if k <= 0:
        return 0.0
    if k > n or p == 0.0:
        return -math.inf
    if p == 1.0:
        return 0.0
    log_p, log_q = math.log(p), math.log1p(-p)
    if k > n * p:
        # At or above the mode the terms only shrink: sum upwards until they stop mattering.
        odds, total, term, j = p / (1.0 - p), 1.0, 1.0, k
        while j < n:
            term *= (n - j) / (j + 1) * odds
            total += term
            if term < total * _TAIL_EPSILON:
                break
            j += 1
        return _log_pmf(k, n, log_p, log_q) + math.log(total)
    # Below the mean the upper tail is large: 1 - P(X <= k-1), the lower tail summed downwards.
    inverse_odds, total, term, j = (1.0 - p) / p, 1.0, 1.0, k - 1
    while j > 0:
        term *= j / (n - j + 1) * inverse_odds
        total += term
        if term < total * _TAIL_EPSILON:
            break
        j -= 1
    lower = math.exp(_log_pmf(k - 1, n, log_p, log_q)) * total
    return math.log1p(-lower) if lower < 1.0 else -math.inf


def binomial_upper_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p); may underflow to 0.0 (use the log form for size)."""
    return math.exp(log_binomial_upper_tail(k, n, p))


def rate_increase_log_p(
    window_requests: int, window_errors: int, baseline_requests: int, baseline_errors: int
) -> float:
    """ln p of the one-sided exact conditional binomial test: is the window's rate higher?"""
    total_errors = window_errors + baseline_errors
    share = window_requests / (window_requests + baseline_requests)
    return log_binomial_upper_tail(window_errors, total_errors, share)


# -- baseline and verdicts -------------------------------------------------------------------
@dataclass(frozen=True)
class Baseline:
    """Pre-release traffic: request and 5xx counts and p95 over `window_seconds`."""

    requests: float
    errors: float
    p95_seconds: float | None
    window_seconds: float
    captured_at: Moment

    @property
    def ratio(self) -> float | None:
        """The baseline 5xx proportion, or None without requests."""
        return self.errors / self.requests if self.requests > 0 else None

    @property
    def window(self) -> str:
        """The baseline window as a Prometheus duration (1h)."""
        return format_window(self.window_seconds)


@dataclass(frozen=True)
class Judgment:
    """One tick's verdict on one signal, with the sentence and the figures behind it."""

    signal: Signal
    status: Status
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The signal as people say it: 5xx or p95."""
        return SIGNAL_NAMES[self.signal]

    def result(self, name: str | None = None, duration: float = 0.0) -> CheckResult:
        """This verdict as a CheckResult (named `5xx`/`p95` unless told otherwise)."""
        return CheckResult(name or self.name, self.status, self.summary, self.evidence, duration)

    @classmethod
    def error(
        cls, signal: Signal, message: str, evidence: dict[str, Any] | None = None
    ) -> Judgment:
        """An ERROR verdict: the bot could not measure (Prometheus down, missing data)."""
        name = SIGNAL_NAMES[signal]
        return cls(signal, Status.ERROR, f"{name}: no verdict — {message}", dict(evidence or {}))


def _window_fields(window: timedelta | float | None) -> dict[str, Any]:
    if window is None:
        return {}
    seconds = window.total_seconds() if isinstance(window, timedelta) else float(window)
    return {"window": format_window(seconds), "window_seconds": seconds}


def _count(value: float, what: str) -> int | str:
    """A non-negative count rounded to an integer (increase() extrapolates), or the problem."""
    if not math.isfinite(value):
        return f"the {what} count is not a number ({value})"
    if value < 0:
        return f"the {what} count is negative ({value:g})"
    return round(value)


def judge_errors(
    requests: float,
    errors: float,
    baseline: Baseline,
    *,
    min_requests: int,
    min_increase: float,
    significance: float,
    window: timedelta | float | None = None,
    query: str | None = None,
    requests_query: str | None = None,
) -> Judgment:
    """FAIL when the window's 5xx share is significantly above the baseline's and by min_increase.

    The test is the one-sided exact conditional binomial test for two Poisson rates (see the
    module docstring). Fewer than `min_requests` requests in the window, or in the baseline, is
    INCONCLUSIVE — never PASS. Counts are rounded to integers (Prometheus' increase()
    extrapolates); errors above requests are capped at requests.
    """
    span = _window_fields(window)
    in_window = f" in {span['window']}" if span else ""
    evidence: dict[str, Any] = {
        "signal": "errors",
        "test": TEST_NAME,
        **({"query": query} if query else {}),
        **({"requests_query": requests_query} if requests_query else {}),
        **span,
        "min_requests": min_requests,
        "min_increase": min_increase,
        "significance": significance,
        "baseline_requests": baseline.requests,
        "baseline_errors": baseline.errors,
        "baseline_window": baseline.window,
    }
    counts = [
        _count(requests, "request"),
        _count(errors, "5xx"),
        _count(baseline.requests, "baseline request"),
        _count(baseline.errors, "baseline 5xx"),
    ]
    problems = [c for c in counts if isinstance(c, str)]
    if problems:
        return Judgment("errors", Status.ERROR, f"5xx: no verdict — {problems[0]}", evidence)
    n1, e1, n0, e0 = (int(c) for c in counts)
    e1, e0 = min(e1, n1), min(e0, n0)
    ratio = e1 / n1 if n1 else None
    evidence.update(requests=n1, errors=e1, ratio=ratio, baseline_requests=n0, baseline_errors=e0)
    if n0 < min_requests:
        evidence["reason"] = "baseline_too_small"
        return Judgment(
            "errors",
            Status.INCONCLUSIVE,
            f"5xx: the baseline has only {format_count(n0)} requests in {baseline.window} "
            f"(need ≥ {min_requests:,}) — cannot judge 5xx against it",
            evidence,
        )
    base_ratio = e0 / n0
    threshold = base_ratio + min_increase
    evidence.update(baseline_ratio=base_ratio, threshold=threshold)
    if n1 < min_requests:
        evidence["reason"] = "too_little_traffic"
        errors_text = "1 error" if e1 == 1 else f"{format_count(e1)} errors"
        return Judgment(
            "errors",
            Status.INCONCLUSIVE,
            f"5xx: only {format_count(n1)} requests{in_window} (need ≥ {min_requests:,} to "
            f"judge); {errors_text} — inconclusive",
            evidence,
        )
    assert ratio is not None
    log_p = rate_increase_log_p(n1, e1, n0, e0)
    p_value = math.exp(log_p)
    evidence.update(p_value=p_value, log10_p_value=log_p / _LN10)
    significant = p_value < significance
    increase = ratio - base_ratio
    large_enough = increase >= min_increase - 1e-12
    p_text = format_p(p_value, log_p / _LN10)
    head = (
        f"5xx {format_percent(ratio)} ({format_count(e1)} of {format_count(n1)}{in_window}) "
        f"vs baseline {format_percent(base_ratio)}"
    )
    if significant and large_enough:
        evidence["reason"] = "elevated"
        status = Status.FAIL
        tail = (
            f"significantly higher ({p_text}) and {format_points(increase)} ≥ "
            f"{format_points(min_increase)}"
        )
    elif significant:
        evidence["reason"] = "below_min_increase"
        status = Status.PASS
        tail = (
            f"significantly higher ({p_text}) but only {format_points(increase)} < "
            f"{format_points(min_increase)}"
        )
    else:
        evidence["reason"] = "not_significant"
        status = Status.PASS
        tail = f"not significantly higher ({p_text} ≥ {significance:g})"
    return Judgment("errors", status, f"{head} — {tail}", evidence)


def judge_latency(
    p95_seconds: float,
    slo_seconds: float,
    *,
    window: timedelta | float | None = None,
    query: str | None = None,
    requests: float | None = None,
    min_requests: int | None = None,
) -> Judgment:
    """FAIL when this tick's p95 is above the SLO (a breach needs consecutive FAIL ticks).

    With `requests` and `min_requests` both given, a quieter window is INCONCLUSIVE: a p95 of
    a handful of requests is noise.
    """
    span = _window_fields(window)
    in_window = f" over {span['window']}" if span else ""
    evidence: dict[str, Any] = {
        "signal": "latency",
        **({"query": query} if query else {}),
        **span,
        "p95_seconds": p95_seconds,
        "slo_seconds": slo_seconds,
        **({"requests": requests} if requests is not None else {}),
        **({"min_requests": min_requests} if min_requests is not None else {}),
    }
    if not math.isfinite(p95_seconds) or p95_seconds < 0:
        return Judgment(
            "latency", Status.ERROR, f"p95: no verdict — not a latency ({p95_seconds})", evidence
        )
    if requests is not None and min_requests is not None and requests < min_requests:
        evidence["reason"] = "too_little_traffic"
        return Judgment(
            "latency",
            Status.INCONCLUSIVE,
            f"p95 {format_ms(p95_seconds)}{in_window} from only {format_count(requests)} "
            f"requests (need ≥ {min_requests:,}) — inconclusive",
            evidence,
        )
    head = f"p95 {format_ms(p95_seconds)}{in_window}"
    if p95_seconds > slo_seconds:
        evidence["reason"] = "above_slo"
        return Judgment("latency", Status.FAIL, f"{head} > SLO {format_ms(slo_seconds)}", evidence)
    evidence["reason"] = "within_slo"
    return Judgment("latency", Status.PASS, f"{head} ≤ SLO {format_ms(slo_seconds)}", evidence)


# -- alerting --------------------------------------------------------------------------------
ActionKind = Literal["open", "remind", "recover", "blind", "sight"]
ACTION_KINDS: tuple[ActionKind, ...] = ("open", "remind", "recover", "blind", "sight")


@dataclass(frozen=True)
class AlertAction:
    """Something to tell people: a breach opened, persists, recovered; the bot went blind, sees."""

    kind: ActionKind
    release: str
    signal: str
    at: Moment
    dedup_key: str
    breach: int
    since: Moment | None = None
    summary: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def duration(self) -> timedelta | None:
        """How long the breach (or blindness) has lasted at this action."""
        return None if self.since is None else self.at - self.since


@dataclass(frozen=True)
class AlertTracker:
    """Per (release, signal): turns a stream of tick verdicts into alert actions. Immutable.

    `observe(verdict, now)` returns the next tracker and the actions; persist both in one
    transaction. Rules:
    - FAIL extends the fail streak; at `breach_ticks` consecutive FAILs a breach opens (`open`,
      once per breach). While it is open, a FAIL tick at least `realert` after the last alert
      gives `remind`.
    - PASS (or WARN) resets the fail streak and, with a breach open, closes it (`recover`).
    - INCONCLUSIVE and ERROR carry no evidence about the signal: they neither extend nor reset
      the fail streak, neither open nor close a breach, and do not remind. A traffic dip
      between two failing ticks therefore does not restart the count, and only a measured
      PASS closes a breach that was opened on measured FAILs.
    - ERROR extends the error streak; at `error_ticks` consecutive errors `blind` (once);
      the next tick that is not an ERROR gives `sight` before anything else it causes.
    - A tick at or before the last observed tick is ignored, so replaying a tick after a crash
      (the persisted state already counts it) cannot open a breach twice.
    """

    # The stored state's format: 2 since the sequential test, 1 before it (read alike).
    SERIAL_VERSION: ClassVar[int] = 2
    SERIAL_READS: ClassVar[tuple[int, ...]] = (1, 2)

    release: str
    signal: str
    breach_ticks: int = 2
    error_ticks: int = 3
    realert: Annotated[Seconds, stored_as("realert_seconds")] = timedelta(minutes=10)
    fail_streak: int = 0
    error_streak: int = 0
    breaches: int = 0
    open_since: Moment | None = None
    last_alert_at: Moment | None = None
    blind_since: Moment | None = None
    last_tick_at: Moment | None = None
    # The signal's sequential test (checks.sequential.Cusum, dumped), persisted with the
    # alert state in the same transaction so a restart continues it.
    test: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.breach_ticks < 1 or self.error_ticks < 1:
            raise ValueError("breach_ticks and error_ticks must be at least 1")
        if self.realert <= timedelta(0):
            raise ValueError("realert must be positive")

    @property
    def is_open(self) -> bool:
        """True while a breach is open (alerted and not yet recovered)."""
        return self.open_since is not None

    @property
    def is_blind(self) -> bool:
        """True after the blind alert until data returns."""
        return self.blind_since is not None

    @property
    def dedup_key(self) -> str:
        """The PagerDuty dedup key: one per release and signal."""
        return f"golive/{self.release}/{self.signal}"

    def observe(
        self, verdict: Status | Judgment, now: datetime
    ) -> tuple[AlertTracker, list[AlertAction]]:
        """The tracker after one tick's verdict at `now`, and the actions that tick causes."""
        if self.last_tick_at is not None and now <= self.last_tick_at:
            return self, []
        judgment = verdict if isinstance(verdict, Judgment) else None
        status = verdict.status if isinstance(verdict, Judgment) else Status(verdict)
        summary = judgment.summary if judgment is not None else ""
        evidence = dict(judgment.evidence) if judgment is not None else {}
        state = replace(self, last_tick_at=now)
        actions: list[AlertAction] = []

        def act(kind: ActionKind, since: datetime | None) -> None:
            actions.append(
                AlertAction(
                    kind,
                    self.release,
                    self.signal,
                    now,
                    self.dedup_key,
                    state.breaches,
                    since,
                    summary,
                    evidence,
                )
            )

        if status is Status.ERROR:
            state = replace(state, error_streak=state.error_streak + 1)
            if state.error_streak >= state.error_ticks and state.blind_since is None:
                state = replace(state, blind_since=now)
                act("blind", now)
            return state, actions
        if state.blind_since is not None:
            act("sight", state.blind_since)
            state = replace(state, blind_since=None)
        state = replace(state, error_streak=0)
        if status is Status.INCONCLUSIVE:
            return state, actions
        if status.ok:
            if state.open_since is not None:
                act("recover", state.open_since)
            state = replace(state, fail_streak=0, open_since=None, last_alert_at=None)
            return state, actions
        # FAIL
        state = replace(state, fail_streak=state.fail_streak + 1)
        if state.open_since is None:
            if state.fail_streak >= state.breach_ticks:
                state = replace(
                    state, breaches=state.breaches + 1, open_since=now, last_alert_at=now
                )
                act("open", now)
        elif state.last_alert_at is None or now - state.last_alert_at >= state.realert:
            state = replace(state, last_alert_at=now)
            act("remind", state.open_since)
        return state, actions


# -- success criteria of the money paths (runbook §6) ----------------------------------------
def _criterion(
    name: str, claim: str, parts: Sequence[str], results: Sequence[CheckResult]
) -> CheckResult:
    by_name = {r.name: r for r in results}
    found = [(part, by_name.get(part)) for part in parts]
    evidence: dict[str, Any] = {
        "parts": {part: (r.status.value if r else "missing") for part, r in found},
        "summaries": {part: r.summary for part, r in found if r is not None},
    }
    failed = [r for _, r in found if r is not None and r.status is Status.FAIL]
    if failed:
        return CheckResult(
            name,
            Status.FAIL,
            f"not met — {claim}: " + "; ".join(f"{r.name}: {r.summary}" for r in failed),
            evidence,
        )
    undecided = [
        f"{part}: {r.summary}" if r is not None else f"{part} was not run"
        for part, r in found
        if r is None or not r.status.ok
    ]
    if undecided:
        return CheckResult(
            name, Status.ERROR, f"undecided — {claim}: " + "; ".join(undecided), evidence
        )
    return CheckResult(name, Status.PASS, f"met — {claim}", evidence)


def finance_operations(results: Sequence[CheckResult]) -> CheckResult:
    """§6: finance can generate an invoice and download both CSV mappings (invoice and csv-*)."""
    return _criterion(
        FINANCE_CRITERION,
        "finance can generate an invoice and download both CSV mappings",
        (INVOICE, CSV_XERO, CSV_QUICKBOOKS),
        results,
    )


def rbac_summary(results: Sequence[CheckResult]) -> CheckResult:
    """§6: no auth/RBAC regression on the protected monetization endpoints (every rbac:* row)."""
    return _criterion(
        RBAC_CRITERION,
        "no auth or RBAC regression on the protected monetization endpoints",
        RBAC_NAMES,
        results,
    )
