"""The simulated service's metrics: exposition format, served-request counting, traffic."""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import AsyncIterator

import httpx
import pytest

from bot.sandbox import FakeClock, FakeProduct, TrafficProfile, histogram_quantile

SAMPLE = re.compile(
    r'^(?P<name>[a-z_]+)(?:\{(?P<label>[a-z]+)="(?P<value>[^"]+)"\})? (?P<num>\S+)$'
)


@pytest.fixture
async def product(clock: FakeClock) -> AsyncIterator[FakeProduct]:
    """A FakeProduct on the frozen clock with the generator stopped."""
    async with FakeProduct(clock=clock) as fake:
        yield fake


def parse(text: str) -> dict[tuple[str, str | None], float]:
    """Samples of a text exposition keyed by (metric name, label value)."""
    samples = {}
    for line in text.splitlines():
        if line.startswith("#"):
            assert re.match(r"^# (HELP|TYPE) [a-z_]+ .+$", line), line
            continue
        match = SAMPLE.match(line)
        assert match, line
        samples[(match["name"], match["value"])] = float(match["num"])
    return samples


def quantile_of(product: FakeProduct, q: float) -> float:
    """histogram_quantile over the product's current cumulative buckets."""
    bounds = [*product.metrics.bounds, math.inf]
    return histogram_quantile(
        q, list(zip(bounds, product.metrics.cumulative_buckets(), strict=True))
    )


async def test_metrics_exposition_counts_served_requests(
    product: FakeProduct, client: httpx.AsyncClient
) -> None:
    """/metrics is Prometheus text 0.0.4 and counts each served request by status."""
    await client.get(f"{product.url}/health/billing-api")
    await client.get(f"{product.url}/health/billing-api")
    await client.get(f"{product.url}/health/unknown")
    response = await client.get(f"{product.url}/metrics")
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert "# TYPE http_requests_total counter" in response.text
    assert "# TYPE http_request_duration_seconds histogram" in response.text
    samples = parse(response.text)
    assert samples[("http_requests_total", "200")] == 2
    assert samples[("http_requests_total", "404")] == 1
    assert samples[("http_requests_total", "500")] == 0
    buckets = [v for (name, _), v in samples.items() if name.endswith("_bucket")]
    assert buckets == sorted(buckets)
    assert samples[("http_request_duration_seconds_bucket", "+Inf")] == 3
    assert samples[("http_request_duration_seconds_count", None)] == 3
    assert ("http_request_duration_seconds_bucket", "0.05") in samples
    assert ("http_request_duration_seconds_bucket", "10.0") in samples


def test_advance_is_exact_and_deterministic(clock: FakeClock) -> None:
    """advance(s) adds rate×s requests now; the same seed gives the same numbers."""
    first, second = FakeProduct(clock=clock, seed=3), FakeProduct(clock=clock, seed=3)
    assert first.advance(60) == 1200
    second.advance(60)
    assert first.metrics.exposition() == second.metrics.exposition()
    assert first.advance(0.025) + first.advance(0.025) == 1  # fractions carry over
    assert len(first.metrics.series) == 3


@pytest.mark.parametrize(("p95", "low", "high"), [(0.12, 0.1, 0.15), (0.8, 0.75, 1.0)])
def test_latency_follows_the_p95_target(
    clock: FakeClock, p95: float, low: float, high: float
) -> None:
    """Generated latencies put the 95th percentile in the bucket that holds the target."""
    product = FakeProduct(clock=clock, traffic=TrafficProfile(rate=50, error_ratio=0.0, p95=p95))
    product.advance(300)
    assert low <= quantile_of(product, 0.95) <= high


def test_error_ratio_is_honoured(clock: FakeClock) -> None:
    """The share of 5xx answers follows error_ratio (seeded, so the count is stable)."""
    product = FakeProduct(clock=clock)
    product.set_traffic(rate=100, error_ratio=0.1)
    product.advance(100)
    errors, total = product.metrics.requests["500"], sum(product.metrics.requests.values())
    assert total == 10_000
    assert 900 <= errors <= 1100


async def test_generator_runs_in_background_until_stopped(product: FakeProduct) -> None:
    """start_traffic() snapshots at once and keeps adding traffic until stop_traffic()."""
    product.traffic.tick = 0.01
    product.start_traffic()
    assert product.traffic.running
    assert len(product.metrics.series) == 1

    async def grown() -> None:
        while len(product.metrics.series) < 4:
            await asyncio.sleep(0.01)

    await asyncio.wait_for(grown(), timeout=5)
    await product.stop_traffic()
    assert not product.traffic.running
    count = len(product.metrics.series)
    await asyncio.sleep(0.05)
    assert len(product.metrics.series) == count


async def test_traffic_control_endpoint(product: FakeProduct, client: httpx.AsyncClient) -> None:
    """POST /_sandbox/traffic changes rate, 5xx ratio and p95; bad values are 400."""
    response = await client.post(
        f"{product.url}/_sandbox/traffic", json={"rate": 5, "error_ratio": 0.5, "p95": 2.0}
    )
    assert response.json() == {"rate": 5.0, "error_ratio": 0.5, "p95": 2.0, "running": False}
    assert product.traffic.profile == TrafficProfile(5.0, 0.5, 2.0)
    bad = await client.post(f"{product.url}/_sandbox/traffic", json={"error_ratio": 3})
    assert bad.status_code == 400


def test_backfill_builds_history(clock: FakeClock) -> None:
    """backfill() pretends the service ran for a while: past snapshots up to now."""
    product = FakeProduct(clock=clock)
    added = product.traffic.backfill(3600, step=60)
    assert added == 72_000
    series = product.metrics.series
    assert len(series) == 60
    assert series[-1].at == clock()
    assert (series[-1].at - series[0].at).total_seconds() == 3540
