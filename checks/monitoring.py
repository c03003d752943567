"""Measuring a window of traffic in Prometheus and judging it against the baseline and the SLO."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx

from bot.domain.serial import dump, load
from checks.base import CheckResult, Status
from checks.http import ProviderError
from checks.judgment import (
    Baseline,
    Judgment,
    format_ms,
    format_percent,
    judge_errors,
    judge_latency,
)
from checks.prometheus import MissingData, Sample, instant, label_values
from checks.sequential import LATENCY_ALLOWED, Plan

DEFAULT_BUCKET_QUERY = 'sum(increase(http_request_duration_seconds_bucket{le="{le}"}[{window}]))'
_LE_MATCHER = 'le="{le}"'


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
    bucket_query: str = DEFAULT_BUCKET_QUERY
    tolerance: float = 1.25
    false_page_rate: float = 0.01
    min_conclusive: float = 0.8
    plan: Plan = ((30, 30.0), (60, 60.0))

    def render(self, template: str, window: timedelta) -> str:
        """A query with its window filled in."""
        return template.replace("{window}", _window_text(window))

    def bucket(self, le: str, window: timedelta) -> str:
        """The histogram bucket query for one `le` label value over `window`."""
        return self.render(self.bucket_query, window).replace("{le}", le)


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


def _requests_and_errors(
    requests: Sample | BaseException, errors: Sample | BaseException
) -> tuple[float, float, list[str]]:
    """The requests and 5xx answers as numbers, raising what went wrong. An empty 5xx answer
    counts as zero only when the requests query answered: a service that never failed has no
    5xx series at all. Anything else that is empty is missing data, never zero."""
    if isinstance(requests, BaseException):
        raise requests
    if isinstance(errors, MissingData) and errors.reason == "empty":
        notes = ["the 5xx query matched no series; counted as 0 because requests answered"]
        return requests.value, 0.0, notes
    if isinstance(errors, BaseException):
        raise errors
    return requests.value, errors.value, []


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
    requests, errors, notes = _requests_and_errors(requests_answer, errors_answer)
    p95: float | None = None
    problem = None
    if isinstance(latency_answer, ProviderError):
        problem = latency_answer.message
    elif isinstance(latency_answer, BaseException):
        raise latency_answer
    else:
        p95 = latency_answer.value
    return Measurement(requests, errors, p95, window, queries, notes, problem)


async def capture_baseline(
    client: httpx.AsyncClient, settings: Settings, window: timedelta, now: datetime
) -> CheckResult:
    """The pre-release baseline: request and 5xx counts and p95 over the baseline window."""
    started = time.monotonic()
    try:
        m, bucket = await asyncio.gather(
            measure(client, settings, window), slo_bucket(client, settings)
        )
    except ProviderError as exc:
        return exc.result("baseline", time.monotonic() - started)
    baseline = Baseline(m.requests, m.errors, m.p95, window.total_seconds(), now)
    evidence: dict[str, Any] = {
        "baseline": dump(baseline),
        "queries": m.queries,
        "slo_bucket": dump(bucket),
    }
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
    if not bucket.exact:
        return CheckResult(
            "baseline", Status.WARN, f"{summary}; {bucket.summary}", evidence, elapsed
        )
    return CheckResult("baseline", Status.PASS, summary, evidence, elapsed)


def bucket_in(evidences: Sequence[Mapping[str, Any]]) -> SloBucket | None:
    """The SLO bucket chosen with the newest baseline, if one was recorded."""
    for evidence in reversed(evidences):
        data = evidence.get("slo_bucket")
        if isinstance(data, dict):
            return load(SloBucket, data)
    return None


def baseline_in(evidences: Sequence[Mapping[str, Any]]) -> Baseline | None:
    """The newest baseline among stored `baseline` results' evidence, if any was captured."""
    for evidence in reversed(evidences):
        data = evidence.get("baseline")
        if isinstance(data, dict):
            return load(Baseline, data)
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


# -- the histogram bucket that matches the SLO ------------------------------------------------
def bucket_selector(template: str) -> str | None:
    """The series selector of the bucket query without its `le` matcher, for listing the
    buckets Prometheus has: `m_bucket{job="api",le="{le}"}` → `m_bucket{job="api"}`."""
    at = template.find(_LE_MATCHER)
    opening = template.rfind("{", 0, at)
    closing = template.find("}", at + len(_LE_MATCHER))
    if at < 0 or opening < 0 or closing < 0:
        return None
    start = opening
    while start > 0 and (template[start - 1].isalnum() or template[start - 1] in "_:"):
        start -= 1
    name = template[start:opening]
    if not name or name[0].isdigit():
        return None
    matchers = [
        m.strip()
        for m in template[opening + 1 : closing].split(",")
        if m.strip() and m.strip() != _LE_MATCHER
    ]
    return f"{name}{{{','.join(matchers)}}}" if matchers else name


@dataclass(frozen=True)
class SloBucket:
    """Which histogram bucket p95 is judged from: its `le` label as Prometheus writes it, the
    bound in seconds, whether it is the SLO itself, and the sentence that says so."""

    le: str | None
    seconds: float | None
    exact: bool
    summary: str


def _le_text(seconds: float) -> str:
    text = repr(float(seconds))
    return text[:-2] if text.endswith(".0") else text


async def slo_bucket(
    client: httpx.AsyncClient, settings: Settings, *, timeout: float = 10.0
) -> SloBucket:
    """The bucket whose `le` equals the SLO, read from Prometheus' label values.

    Without one, the nearest bucket above the SLO (p95 is then judged against that bound, which
    never pages a healthy service but misses breaches between the two); without any bucket at
    or above it, p95 cannot be judged. Each case says so in plain words.
    """
    slo = settings.slo_seconds
    selector = bucket_selector(settings.bucket_query)
    assumed = _le_text(slo)
    if selector is None:
        return SloBucket(
            assumed,
            slo,
            True,
            f'the bucket query has no `le="{{le}}"` matcher golive can list buckets by; it '
            f'assumes a bucket le="{assumed}" ({format_ms(slo)}, the SLO)',
        )
    try:
        url = settings.prometheus_url
        labels = await label_values(client, url, "le", selector, timeout=timeout)
    except ProviderError as exc:
        return SloBucket(
            assumed,
            slo,
            True,
            f"could not list the buckets of {selector} ({exc.message}); golive assumes a bucket "
            f'le="{assumed}" ({format_ms(slo)}, the SLO)',
        )
    return choose_bucket(labels, slo, selector)


def choose_bucket(labels: Sequence[str], slo: float, selector: str) -> SloBucket:
    """The bucket among `le` label values that p95 is judged from (see slo_bucket)."""
    bounds: list[tuple[float, str]] = []
    for label in labels:
        try:
            value = float(label)
        except ValueError:
            continue
        if math.isfinite(value):
            bounds.append((value, label))
    bounds.sort()
    listed = ", ".join(format_ms(v) for v, _ in bounds[:12]) or "none"
    for value, label in bounds:
        if math.isclose(value, slo, rel_tol=1e-9, abs_tol=1e-12):
            return SloBucket(
                label,
                value,
                True,
                f'p95 is judged from the bucket le="{label}" of {selector}: the share of requests '
                f"slower than the SLO {format_ms(slo)} (at most "
                f"{format_percent(LATENCY_ALLOWED)} for p95 to be within it)",
            )
    above = [(v, label) for v, label in bounds if v > slo]
    if above:
        value, label = above[0]
        return SloBucket(
            label,
            value,
            False,
            f"no bucket of {selector} matches the SLO {format_ms(slo)} (buckets: {listed}); "
            f"golive judges p95 against the nearest bucket above, {format_ms(value)}, so a p95 "
            f"between the two does not page — add a {format_ms(slo)} bucket to judge the SLO",
        )
    return SloBucket(
        None,
        None,
        False,
        f"no bucket of {selector} at or above the SLO {format_ms(slo)} (buckets: {listed}); "
        f"golive cannot judge p95 — add a {format_ms(slo)} bucket",
    )


# -- counts since monitoring began -------------------------------------------------------------
@dataclass(frozen=True)
class Since:
    """Counts since `start` (epoch seconds) evaluated at `at`: requests and 5xx, and the
    histogram's observations within the SLO bucket (`fast`) and in all (`observed`)."""

    start: float
    at: float
    requests: float
    errors: float
    fast: float | None
    observed: float | None
    queries: dict[str, str]
    notes: list[str] = field(default_factory=list)
    latency_problem: str | None = None


def since_range(start: float, now: float) -> tuple[timedelta, float]:
    """The whole seconds since `start` and the evaluation time start + that: every tick's
    range begins exactly at `start`, so consecutive answers differ only by new traffic."""
    seconds = max(math.floor(now - start), 1)
    return timedelta(seconds=seconds), start + seconds


async def measure_since(
    client: httpx.AsyncClient,
    settings: Settings,
    start: float,
    now: float,
    bucket: SloBucket | None,
    *,
    timeout: float = 10.0,
) -> Since:
    """Requests, 5xx and the SLO bucket counted since `start`, one growing range per query.

    Why one growing `increase(...[<seconds since start>s])` rather than the difference of raw
    counter values: increase() handles counter resets per series (pods restart during a
    deploy) and keeps series that stopped, which a difference of `sum(counter)` does not.
    Its extrapolation to the range's ends (at most about one scrape interval at each end) is
    not accumulated: the range always starts at `start`, so each answer is off by at most
    that much and so is any difference of two answers. A series born inside the range loses
    its first scrape's increments (Prometheus cannot know where it started): an undercount,
    on the quiet side. Missing data is MissingData/ProviderError, never zero evidence.
    """
    window, at = since_range(start, now)
    queries = {
        "requests": settings.render(settings.requests_query, window),
        "errors": settings.render(settings.errors_query, window),
    }
    if bucket is not None and bucket.le is not None:
        queries["fast"] = settings.bucket(bucket.le, window)
        queries["observed"] = settings.bucket("+Inf", window)
    url = settings.prometheus_url
    asked = await asyncio.gather(
        *(instant(client, url, q, at=at, timeout=timeout) for q in queries.values()),
        return_exceptions=True,
    )
    answers = dict(zip(queries, asked, strict=True))
    requests, errors, notes = _requests_and_errors(answers["requests"], answers["errors"])
    fast: float | None = None
    observed: float | None = None
    problem = bucket.summary if bucket is not None and bucket.le is None else None
    if bucket is None:
        problem = "the histogram's buckets are not known yet"
    for name in ("fast", "observed"):
        answer = answers.get(name)
        if answer is None:
            continue
        if isinstance(answer, ProviderError):
            problem = answer.message
        elif isinstance(answer, BaseException):
            raise answer
        elif isinstance(answer, Sample):
            if name == "fast":
                fast = answer.value
            else:
                observed = answer.value
    if problem is not None:
        fast = observed = None
    return Since(start, at, requests, errors, fast, observed, queries, notes, problem)
