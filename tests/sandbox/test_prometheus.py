"""FakePrometheus answers golive's PromQL queries from the product's counter snapshots."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from bot.sandbox import FakeClock, FakeProduct, FakePrometheus, histogram_quantile

REQUESTS = "sum(increase(http_requests_total[{w}]))"
ERRORS = 'sum(increase(http_requests_total{{status=~"5.."}}[{w}]))'
P95 = "histogram_quantile(0.95, sum(rate(http_request_duration_seconds_bucket[{w}])) by (le))"


@pytest.fixture
async def prometheus(clock: FakeClock) -> AsyncIterator[FakePrometheus]:
    """A FakePrometheus over a fresh FakeProduct (no samples yet) on the frozen clock."""
    product = FakeProduct(clock=clock)
    async with FakePrometheus(product) as fake:
        yield fake


async def instant(
    client: httpx.AsyncClient, prometheus: FakePrometheus, query: str, **params: Any
) -> list[Any]:
    """The result list of an instant query; asserts the success envelope."""
    response = await client.get(f"{prometheus.url}/api/v1/query", params={"query": query, **params})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "success"
    assert body["data"]["resultType"] == "vector"
    result: list[Any] = body["data"]["result"]
    return result


def value(result: list[Any]) -> float:
    """The single sample value of a one-element vector."""
    [sample] = result
    assert sample["metric"] == {}
    return float(sample["value"][1])


def two_minutes_of_traffic(product: FakeProduct, clock: FakeClock) -> None:
    """Snapshots at t0 (nothing), t0+60 (100×200, 3×500), t0+120 (+50×200, +1×503)."""
    product.metrics.snapshot()
    clock.advance(60)
    for _ in range(100):
        product.metrics.observe(200, 0.03)
    for _ in range(3):
        product.metrics.observe(500, 0.5)
    product.metrics.snapshot()
    clock.advance(60)
    for _ in range(50):
        product.metrics.observe(200, 0.03)
    product.metrics.observe(503, 0.03)
    product.metrics.snapshot()


async def test_no_data_is_an_empty_vector(
    prometheus: FakePrometheus, client: httpx.AsyncClient
) -> None:
    """With no sample in the window every query returns an empty vector, not zero."""
    for template in (REQUESTS, ERRORS, P95):
        assert await instant(client, prometheus, template.format(w="5m")) == []


async def test_increase_over_windows(
    prometheus: FakePrometheus, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    """increase() is the counter difference across the window; 5xx matches 500 and 503."""
    two_minutes_of_traffic(prometheus.product, clock)
    assert value(await instant(client, prometheus, REQUESTS.format(w="30s"))) == 51
    assert value(await instant(client, prometheus, REQUESTS.format(w="1m"))) == 51
    assert value(await instant(client, prometheus, REQUESTS.format(w="2m"))) == 154
    assert value(await instant(client, prometheus, REQUESTS.format(w="1h"))) == 154
    assert value(await instant(client, prometheus, ERRORS.format(w="1m"))) == 1
    assert value(await instant(client, prometheus, ERRORS.format(w="5m"))) == 4
    later = clock().timestamp() + 600
    assert await instant(client, prometheus, REQUESTS.format(w="5m"), time=later) == []
    earlier = await instant(
        client, prometheus, REQUESTS.format(w="1m"), time=clock().timestamp() - 60
    )
    assert value(earlier) == 103
    assert earlier[0]["value"][0] == pytest.approx(clock().timestamp() - 60)


async def test_histogram_quantile_matches_hand_computation(
    prometheus: FakePrometheus, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    """p95 interpolates linearly inside the bucket: 50/30/10/10 at ≤.05/≤.1/≤.15/≤.3 → 0.275."""
    metrics = prometheus.product.metrics
    metrics.snapshot()
    clock.advance(60)
    for seconds, count in ((0.03, 50), (0.08, 30), (0.12, 10), (0.3, 10)):
        for _ in range(count):
            metrics.observe(200, seconds)
    metrics.snapshot()
    # rank 95 of 100 falls in (0.25, 0.3] holding 10, 5 past its start: 0.25 + 0.05 * 5/10
    assert value(await instant(client, prometheus, P95.format(w="1m"))) == pytest.approx(0.275)
    median = P95.format(w="1m").replace("0.95", "0.5")
    assert value(await instant(client, prometheus, median)) == pytest.approx(0.05)


def test_histogram_quantile_edge_cases() -> None:
    """As in Prometheus: first bucket starts at 0, +Inf gives the last finite bound, no data NaN."""
    buckets = [(0.1, 10.0), (0.2, 30.0), (math.inf, 40.0)]
    assert histogram_quantile(0.5, buckets) == pytest.approx(0.15)
    assert histogram_quantile(0.05, buckets) == pytest.approx(0.02)
    assert histogram_quantile(0.99, buckets) == 0.2
    assert math.isnan(histogram_quantile(0.5, [(0.1, 0.0), (math.inf, 0.0)]))
    assert histogram_quantile(1.5, buckets) == math.inf


async def test_quiet_window_is_zero_and_nan(
    prometheus: FakePrometheus, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    """Samples without traffic give 0 requests and a NaN quantile (data, but nothing served)."""
    prometheus.product.metrics.snapshot()
    clock.advance(30)
    prometheus.product.metrics.snapshot()
    assert (await instant(client, prometheus, REQUESTS.format(w="1m")))[0]["value"][1] == "0"
    assert (await instant(client, prometheus, P95.format(w="1m")))[0]["value"][1] == "NaN"


@pytest.mark.parametrize(
    "query",
    [
        "sum( increase( http_requests_total[5m] ) )",
        'sum(increase(http_requests_total{status=~"5.."}[5m]))\n',
        "histogram_quantile(0.95,sum by (le) (rate(http_request_duration_seconds_bucket[5m])))",
    ],
)
async def test_whitespace_and_form_post(
    prometheus: FakePrometheus, client: httpx.AsyncClient, clock: FakeClock, query: str
) -> None:
    """Whitespace differences are tolerated and a form-encoded POST works like GET."""
    two_minutes_of_traffic(prometheus.product, clock)
    response = await client.post(f"{prometheus.url}/api/v1/query", data={"query": query})
    assert response.json()["status"] == "success"
    assert len(response.json()["data"]["result"]) == 1


@pytest.mark.parametrize(
    "query", ["up", "sum(rate(foo_total[5m]))", REQUESTS.format(w="5minutes"), ""]
)
async def test_other_queries_are_bad_data(
    prometheus: FakePrometheus, client: httpx.AsyncClient, query: str
) -> None:
    """Anything but the supported shapes is 400 bad_data."""
    response = await client.get(f"{prometheus.url}/api/v1/query", params={"query": query})
    assert response.status_code == 400
    body = response.json()
    assert (body["status"], body["errorType"]) == ("error", "bad_data")
    assert body["error"]


async def test_query_range_matrix(
    prometheus: FakePrometheus, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    """query_range evaluates at each step and returns a matrix; points with no data are left out."""
    two_minutes_of_traffic(prometheus.product, clock)
    end = clock().timestamp()
    params = {"query": REQUESTS.format(w="1m"), "start": str(end - 180), "end": str(end)}
    params["step"] = "60s"
    body = (await client.get(f"{prometheus.url}/api/v1/query_range", params=params)).json()
    assert body["data"]["resultType"] == "matrix"
    [series] = body["data"]["result"]
    assert [v for _, v in series["values"]] == ["0", "103", "51"]
    assert series["values"][-1][0] == pytest.approx(end)
    bad = await client.get(f"{prometheus.url}/api/v1/query_range", params={**params, "step": "0"})
    assert bad.json()["errorType"] == "bad_data"


async def test_down_switch_and_stop(prometheus: FakePrometheus, client: httpx.AsyncClient) -> None:
    """down=True answers 503 unavailable; stop() refuses connections."""
    prometheus.down = True
    response = await client.get(
        f"{prometheus.url}/api/v1/query", params={"query": REQUESTS.format(w="5m")}
    )
    assert response.status_code == 503
    assert response.json()["errorType"] == "unavailable"
    await prometheus.stop()
    with pytest.raises(httpx.ConnectError):
        await client.get(f"{prometheus.url}/api/v1/query", params={"query": "x"})


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("sum(rate(http_requests_total[1m]))", 51 / 60),
        ('sum(increase(http_requests_total{status="503"}[1m]))', 1),
        ('sum(increase(http_requests_total{status!~"5.."}[2m]))', 150),
    ],
)
async def test_rate_and_other_status_matchers(
    prometheus: FakePrometheus,
    client: httpx.AsyncClient,
    clock: FakeClock,
    query: str,
    expected: float,
) -> None:
    """rate() divides the increase by the window; =, != , =~ and !~ status matchers filter."""
    two_minutes_of_traffic(prometheus.product, clock)
    assert value(await instant(client, prometheus, query)) == pytest.approx(expected)


async def test_label_values_and_bucket_counts(
    prometheus: FakePrometheus, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    """GET /api/v1/label/le/values lists the histogram's bucket bounds for a series selector,
    as Prometheus does; one bucket's increase counts the requests within it."""
    two_minutes_of_traffic(prometheus.product, clock)
    url = f"{prometheus.url}/api/v1/label/le/values"
    answer = await client.get(url, params={"match[]": "http_request_duration_seconds_bucket"})
    body = answer.json()
    assert body["status"] == "success" and "0.4" in body["data"] and "+Inf" in body["data"]
    none = await client.get(url, params={"match[]": "http_requests_total"})
    assert none.json()["data"] == []
    statuses = await client.get(f"{prometheus.url}/api/v1/label/status/values")
    assert statuses.json()["data"] == ["200", "500", "503"]
    bucket = 'sum(increase(http_request_duration_seconds_bucket{{le="{le}"}}[{w}]))'
    assert value(await instant(client, prometheus, bucket.format(le="0.4", w="2m"))) == 151
    assert value(await instant(client, prometheus, bucket.format(le="+Inf", w="2m"))) == 154
    assert await instant(client, prometheus, bucket.format(le="0.45", w="2m")) == []


async def test_golive_reads_the_buckets_and_finds_the_slo(
    prometheus: FakePrometheus, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    """checks.prometheus.label_values and slo_bucket against the fake's real HTTP API: the
    400 ms bucket is found; an SLO without a bucket falls back to the nearest above, said so."""
    from checks.monitoring import Settings, slo_bucket
    from checks.prometheus import label_values

    two_minutes_of_traffic(prometheus.product, clock)
    labels = await label_values(
        client, prometheus.url, "le", "http_request_duration_seconds_bucket"
    )
    assert labels[-1] == "+Inf" or "+Inf" in labels

    def settings(slo: float) -> Settings:
        return Settings(prometheus.url, "", "", "", slo, 200, 0.005, 0.01)

    exact = await slo_bucket(client, settings(0.4))
    assert (exact.le, exact.exact) == ("0.4", True)
    above = await slo_bucket(client, settings(0.45))
    assert (above.le, above.exact) == ("0.5", False) and "nearest bucket above" in above.summary
    prometheus.down = True
    assumed = await slo_bucket(client, settings(0.4))
    assert assumed.le == "0.4" and "could not list the buckets" in assumed.summary
