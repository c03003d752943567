"""Measuring a window of traffic in Prometheus and judging it against the baseline and the SLO."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx

from checks.base import CheckResult, Status
from checks.http import ProviderError
from checks.judgment import Baseline, Judgment, judge_errors, judge_latency
from checks.prometheus import MissingData, instant


def _window_text(window: timedelta) -> str:
    seconds = int(window.total_seconds())
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


@dataclass(frozen=True)
class Settings:
    """What the monitoring needs from the config (query templates carry `{window}`)."""

    prometheus_url: str
    requests_query: str
    errors_query: str
    latency_query: str
    slo_seconds: float
    min_requests: int
    min_increase: float
    significance: float

    def render(self, template: str, window: timedelta) -> str:
        """A query with its window filled in."""
        return template.replace("{window}", _window_text(window))


@dataclass(frozen=True)
class Measurement:
    """One window's figures; `p95` is None when Prometheus had no latency data."""

    requests: float
    errors: float
    p95: float | None
    window: timedelta
    queries: dict[str, str]
    notes: list[str] = field(default_factory=list)
    latency_problem: str | None = None

    @property
    def ratio(self) -> float | None:
        """5xx share of requests, or None without requests."""
        return self.errors / self.requests if self.requests > 0 else None


async def measure(
    client: httpx.AsyncClient, settings: Settings, window: timedelta, *, timeout: float = 10.0
) -> Measurement:
    """Requests, 5xx and p95 over `window`; ProviderError/MissingData when they cannot be read.

    An empty answer to the 5xx query counts as zero errors only when the requests query did
    answer: a service that never failed has no 5xx series at all. Anything else that is empty
    is missing data, never zero.
    """
    queries = {
        "requests": settings.render(settings.requests_query, window),
        "errors": settings.render(settings.errors_query, window),
        "latency": settings.render(settings.latency_query, window),
    }
    url = settings.prometheus_url
    asked = await asyncio.gather(
        *(instant(client, url, q, timeout=timeout) for q in queries.values()),
        return_exceptions=True,
    )
    requests_answer, errors_answer, latency_answer = asked
    if isinstance(requests_answer, BaseException):
        raise requests_answer
    notes = []
    if isinstance(errors_answer, MissingData) and errors_answer.reason == "empty":
        errors = 0.0
        notes.append("the 5xx query matched no series; counted as 0 because requests answered")
    elif isinstance(errors_answer, BaseException):
        raise errors_answer
    else:
        errors = errors_answer.value
    p95: float | None = None
    problem = None
    if isinstance(latency_answer, ProviderError):
        problem = latency_answer.message
    elif isinstance(latency_answer, BaseException):
        raise latency_answer
    else:
        p95 = latency_answer.value
    return Measurement(requests_answer.value, errors, p95, window, queries, notes, problem)


async def capture_baseline(
    client: httpx.AsyncClient, settings: Settings, window: timedelta, now: datetime
) -> CheckResult:
    """The pre-release baseline: request and 5xx counts and p95 over the baseline window."""
    started = time.monotonic()
    try:
        m = await measure(client, settings, window)
    except ProviderError as exc:
        return exc.result("baseline", time.monotonic() - started)
    baseline = Baseline(m.requests, m.errors, m.p95, window.total_seconds(), now)
    evidence: dict[str, Any] = {"baseline": baseline.to_dict(), "queries": m.queries}
    if m.notes:
        evidence["notes"] = m.notes
    ratio = f"{m.ratio:.2%}" if m.ratio is not None else "n/a"
    p95 = f"{m.p95 * 1000:.0f}ms" if m.p95 is not None else "unknown"
    summary = (
        f"baseline over {_window_text(window)}: {m.requests:,.0f} requests, "
        f"{m.errors:,.0f} 5xx ({ratio}), p95 {p95}"
    )
    elapsed = time.monotonic() - started
    if m.requests < settings.min_requests:
        return CheckResult(
            "baseline",
            Status.INCONCLUSIVE,
            f"{summary} — too little traffic to judge 5xx against (need ≥ "
            f"{settings.min_requests:,})",
            evidence,
            elapsed,
        )
    return CheckResult("baseline", Status.PASS, summary, evidence, elapsed)


def baseline_in(evidences: Sequence[Mapping[str, Any]]) -> Baseline | None:
    """The newest baseline among stored `baseline` results' evidence, if any was captured."""
    for evidence in reversed(evidences):
        data = evidence.get("baseline")
        if isinstance(data, dict):
            return Baseline.from_dict(data)
    return None


def judge(
    m: Measurement, settings: Settings, baseline: Baseline | None
) -> tuple[Judgment, Judgment]:
    """The 5xx and p95 verdicts of one measurement."""
    if baseline is None:
        errors = Judgment(
            "errors",
            Status.INCONCLUSIVE,
            "5xx: no baseline was captured, so an increase cannot be judged",
            {"queries": m.queries},
        )
    else:
        errors = judge_errors(
            m.requests,
            m.errors,
            baseline,
            min_requests=settings.min_requests,
            min_increase=settings.min_increase,
            significance=settings.significance,
            window=m.window,
            query=m.queries["errors"],
            requests_query=m.queries["requests"],
        )
    if m.notes:
        errors = Judgment(
            errors.signal, errors.status, errors.summary, {**errors.evidence, "notes": m.notes}
        )
    if m.p95 is None:
        latency = Judgment.error(
            "latency", m.latency_problem or "no latency data", {"query": m.queries["latency"]}
        )
    else:
        latency = judge_latency(
            m.p95,
            settings.slo_seconds,
            window=m.window,
            query=m.queries["latency"],
            requests=m.requests,
            min_requests=settings.min_requests,
        )
    return errors, latency


async def judge_window(
    client: httpx.AsyncClient, settings: Settings, window: timedelta, baseline: Baseline | None
) -> tuple[Measurement | None, Judgment, Judgment]:
    """Measure and judge; when Prometheus cannot answer, both verdicts are ERROR with why."""
    try:
        m = await measure(client, settings, window)
    except ProviderError as exc:
        evidence = {**exc.evidence, "window": _window_text(window)}
        return (
            None,
            Judgment.error("errors", exc.message, evidence),
            Judgment.error("latency", exc.message, evidence),
        )
    errors, latency = judge(m, settings, baseline)
    return m, errors, latency
