"""A real Prometheus scraping the simulated service: default queries, judgment, charts."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from bot.domain.config import MonitoringConfig
from bot.render.chart import SoakSample, render_soak_chart
from checks.base import Status
from checks.judgment import Baseline, Judgment, judge_errors, judge_latency
from checks.prometheus import instant, range_query
from tests.monitoring.realprom import LiveService, RealPrometheus, eventually

pytestmark = pytest.mark.slow

WINDOW = timedelta(seconds=10)
CONFIG = MonitoringConfig()
REQUESTS = CONFIG.render(CONFIG.requests_query, WINDOW)
ERRORS = CONFIG.render(CONFIG.errors_query, WINDOW)
P95 = CONFIG.render(CONFIG.latency_p95_query, WINDOW)
RATE = 200.0  # requests per second of the live_service fixture
JUDGE = {
    "min_requests": CONFIG.min_requests,
    "min_increase": CONFIG.min_error_increase,
    "significance": CONFIG.significance,
}


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client for the Prometheus API."""
    async with httpx.AsyncClient(timeout=5.0) as http:
        yield http


async def clean_for(
    seconds: float, service: LiveService, prometheus: RealPrometheus, *fields: str
) -> None:
    """Wait until `fields` (default all) of the traffic have been clean and scraped `seconds`."""
    since = service.clean_since(*fields)
    assert since is not None, "another test left the traffic changed"
    start = max(since, prometheus.up_at)

    async def long_enough() -> bool:
        return time.time() - start >= seconds

    await eventually(long_enough, timeout=seconds + 5, what=f"{seconds:g}s of clean data")


async def measure(
    client: httpx.AsyncClient, url: str, at: float | None = None
) -> tuple[float, float]:
    """(requests, errors) over WINDOW at `at` (default now) with the default queries."""
    moment = at if at is not None else time.time()
    requests = await instant(client, url, REQUESTS, at=moment)
    errors = await instant(client, url, ERRORS, at=moment)
    return requests.value, errors.value


async def baseline_at(client: httpx.AsyncClient, url: str, at: float) -> Baseline:
    """A baseline from the default queries over WINDOW ending at `at`."""
    requests, errors = await measure(client, url, at)
    p95 = await instant(client, url, P95, at=at)
    return Baseline(
        requests, errors, p95.value, WINDOW.total_seconds(), datetime.fromtimestamp(at, UTC)
    )


async def test_default_queries_return_sane_numbers(
    real_prometheus: RealPrometheus, live_service: LiveService, client: httpx.AsyncClient
) -> None:
    """The three default queries (10s window) give ~2000 requests, ~0.1% 5xx and p95 ~120 ms."""
    await clean_for(WINDOW.total_seconds() + 1, live_service, real_prometheus)
    requests = await instant(client, real_prometheus.url, REQUESTS)
    errors = await instant(client, real_prometheus.url, ERRORS)
    p95 = await instant(client, real_prometheus.url, P95)
    expected = RATE * WINDOW.total_seconds()
    assert 0.7 * expected <= requests.value <= 1.3 * expected, requests
    assert 0 <= errors.value <= 0.01 * requests.value, (errors, requests)
    assert 0.08 <= p95.value <= 0.2, p95
    assert abs(requests.at - time.time()) < 5 and requests.series == 1


async def test_a_clean_run_passes(
    real_prometheus: RealPrometheus, live_service: LiveService, client: httpx.AsyncClient
) -> None:
    """Five consecutive 1s ticks of clean traffic all PASS against an earlier clean baseline."""
    await clean_for(WINDOW.total_seconds() + 7, live_service, real_prometheus, "error_ratio")
    now = time.time()
    baseline = await baseline_at(client, real_prometheus.url, now - 6)
    verdicts: list[Judgment] = []
    for tick in range(5):
        requests, errors = await measure(client, real_prometheus.url, now - 4 + tick)
        verdicts.append(judge_errors(requests, errors, baseline, window=WINDOW, **JUDGE))
    assert [v.status for v in verdicts] == [Status.PASS] * 5, [v.summary for v in verdicts]


async def test_range_queries_feed_the_soak_chart(
    real_prometheus: RealPrometheus, live_service: LiveService, client: httpx.AsyncClient
) -> None:
    """query_range gives one point per step for ratio and p95, and the chart renders them."""
    url = real_prometheus.url
    await clean_for(WINDOW.total_seconds() + 3, live_service, real_prometheus)
    end = time.time()
    start = end - 3
    ratio_query = f"({ERRORS}) / ({REQUESTS})"
    ratios = await range_query(client, url, ratio_query, start, end, 1)
    p95s = await range_query(client, url, P95, start, end, timedelta(seconds=1))
    assert 3 <= len(ratios) <= 4 and 3 <= len(p95s) <= 4
    assert all(0 <= v < 0.01 for _, v in ratios) and all(0.05 < v < 0.3 for _, v in p95s)
    samples = [
        SoakSample(datetime.fromtimestamp(t, UTC), r, p)
        for (t, r), (_, p) in zip(ratios, p95s, strict=False)
    ]
    png = render_soak_chart(samples, baseline_ratio=0.001, slo_seconds=0.4, title="live")
    assert png.startswith(b"\x89PNG\r\n\x1a\n")


async def test_an_error_spike_fails_within_a_few_scrapes_and_recovers(
    real_prometheus: RealPrometheus, live_service: LiveService, client: httpx.AsyncClient
) -> None:
    """0.1% → 5% 5xx makes judge_errors FAIL within a few 1s scrapes; back again, it PASSes."""
    url = real_prometheus.url
    await clean_for(WINDOW.total_seconds() + 1, live_service, real_prometheus, "error_ratio")
    baseline = await baseline_at(client, url, time.time())
    assert baseline.ratio is not None and baseline.ratio < 0.01

    async def verdict() -> Judgment:
        requests, errors = await measure(client, url)
        return judge_errors(requests, errors, baseline, window=WINDOW, query=ERRORS, **JUDGE)

    assert (await verdict()).status is Status.PASS
    live_service.set_traffic(error_ratio=0.05)
    try:

        async def failing() -> Judgment | None:
            judged = await verdict()
            return judged if judged.status is Status.FAIL else None

        failed = await eventually(failing, timeout=15, what="judge_errors to FAIL")
        delay = time.time() - live_service.changed_at["error_ratio"]
    finally:
        live_service.restore()
    assert delay < 8, f"took {delay:.1f}s: {failed.summary}"
    assert failed.evidence["query"] == ERRORS and failed.evidence["p_value"] < 0.01
    # Against the baseline the verdict judged by (whole counts of what Prometheus extrapolated).
    judged_base = failed.evidence["baseline_ratio"]
    assert abs(judged_base - baseline.ratio) < 0.002
    assert failed.evidence["ratio"] >= judged_base + CONFIG.min_error_increase

    async def passing() -> Judgment | None:
        judged = await verdict()
        return judged if judged.status is Status.PASS else None

    await eventually(passing, timeout=WINDOW.total_seconds() + 10, what="recovery to PASS")


async def test_a_latency_spike_fails_the_slo(
    real_prometheus: RealPrometheus, live_service: LiveService, client: httpx.AsyncClient
) -> None:
    """p95 120 ms → 800 ms makes judge_latency FAIL against the 400 ms SLO within a few scrapes."""
    url = real_prometheus.url
    slo = CONFIG.slo_p95.total_seconds()
    await clean_for(WINDOW.total_seconds() + 1, live_service, real_prometheus, "p95")
    before = judge_latency((await instant(client, url, P95)).value, slo, window=WINDOW)
    assert before.status is Status.PASS, before.summary
    live_service.set_traffic(p95=0.8)
    try:

        async def failing() -> Judgment | None:
            judged = judge_latency((await instant(client, url, P95)).value, slo, window=WINDOW)
            return judged if judged.status is Status.FAIL else None

        failed = await eventually(failing, timeout=15, what="judge_latency to FAIL")
        delay = time.time() - live_service.changed_at["p95"]
    finally:
        live_service.restore()
    assert delay < 8, f"took {delay:.1f}s: {failed.summary}"
    assert failed.evidence["p95_seconds"] > slo
