"""checks.prometheus: numbers out of the query API, and every kind of missing data as an error."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from bot.sandbox import FakeClock, FakeProduct, FakePrometheus
from checks.http import ProviderError
from checks.prometheus import MissingData, instant, range_query

START = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
REQUESTS = "sum(increase(http_requests_total[1m]))"
ERRORS = 'sum(increase(http_requests_total{status=~"5.."}[1m]))'
P95 = "histogram_quantile(0.95, sum(rate(http_request_duration_seconds_bucket[1m])) by (le))"


@pytest.fixture
def manual_clock() -> FakeClock:
    """A clock frozen at 2026-11-20 09:30 UTC."""
    return FakeClock(START)


@pytest.fixture
async def prometheus(manual_clock: FakeClock) -> AsyncIterator[FakePrometheus]:
    """The sandbox's FakePrometheus over real HTTP, answering from a FakeProduct's counters."""
    async with FakePrometheus(FakeProduct(clock=manual_clock)) as fake:
        yield fake


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """A plain httpx client."""
    async with httpx.AsyncClient(timeout=5.0) as http:
        yield http


def traffic(product: FakeProduct, clock: FakeClock) -> None:
    """One minute of traffic: 100 × 200 at 30 ms and 3 × 500 at 500 ms, snapshotted around it."""
    product.metrics.snapshot()
    clock.advance(60)
    for _ in range(100):
        product.metrics.observe(200, 0.03)
    for _ in range(3):
        product.metrics.observe(500, 0.5)
    product.metrics.snapshot()


async def test_instant_queries_give_value_time_and_series(
    prometheus: FakePrometheus, client: httpx.AsyncClient, manual_clock: FakeClock
) -> None:
    """Requests, 5xx and p95 come back as numbers with Prometheus' evaluation time."""
    traffic(prometheus.product, manual_clock)
    requests = await instant(client, prometheus.url, REQUESTS)
    errors = await instant(client, prometheus.url, ERRORS, at=manual_clock())
    p95 = await instant(client, prometheus.url, P95)
    assert (requests.value, errors.value) == (103, 3)
    assert requests.series == 1 and requests.query == REQUESTS
    assert requests.time == manual_clock() and errors.at == manual_clock().timestamp()
    assert 0.0 < p95.value <= 0.05  # 97% of requests took 30 ms


async def test_the_evaluation_time_is_sent(
    prometheus: FakePrometheus, client: httpx.AsyncClient, manual_clock: FakeClock
) -> None:
    """`at` becomes the `time` parameter: a minute before the traffic there is no data."""
    traffic(prometheus.product, manual_clock)
    before = manual_clock() - timedelta(minutes=2)
    with pytest.raises(MissingData) as raised:
        await instant(client, prometheus.url, REQUESTS, at=before)
    assert raised.value.reason == "empty"
    assert prometheus.requests_to("/api/v1/query")[-1].param("time") == f"{before.timestamp():.3f}"


async def test_an_empty_vector_is_missing_data_not_zero(
    prometheus: FakePrometheus, client: httpx.AsyncClient
) -> None:
    """No sample in the window → MissingData saying the result was empty."""
    with pytest.raises(MissingData) as raised:
        await instant(client, prometheus.url, REQUESTS)
    assert raised.value.reason == "empty"
    assert "no data" in raised.value.message and REQUESTS in raised.value.message
    assert isinstance(raised.value, ProviderError)


async def test_nan_is_missing_data(
    prometheus: FakePrometheus, client: httpx.AsyncClient, manual_clock: FakeClock
) -> None:
    """p95 of a window without requests is NaN → MissingData, never a number."""
    prometheus.product.metrics.snapshot()
    manual_clock.advance(30)
    prometheus.product.metrics.snapshot()
    with pytest.raises(MissingData) as raised:
        await instant(client, prometheus.url, P95)
    assert raised.value.reason == "not_finite" and "NaN" in raised.value.message


async def test_a_bad_query_is_refused_with_prometheus_words(
    prometheus: FakePrometheus, client: httpx.AsyncClient
) -> None:
    """A 400 bad_data answer is MissingData quoting errorType and error."""
    with pytest.raises(MissingData) as raised:
        await instant(client, prometheus.url, "sum(nonsense[")
    assert raised.value.reason == "error_status"
    assert "bad_data" in raised.value.message
    assert raised.value.evidence["status_code"] == 400


async def test_an_unavailable_prometheus_is_an_error(
    prometheus: FakePrometheus, client: httpx.AsyncClient
) -> None:
    """`down` (503 with an error body) → an error saying Prometheus is unavailable."""
    prometheus.down = True
    with pytest.raises(ProviderError, match="unavailable"):
        await instant(client, prometheus.url, REQUESTS)


async def test_an_unreachable_prometheus_is_a_provider_error(
    prometheus: FakePrometheus, client: httpx.AsyncClient
) -> None:
    """A stopped Prometheus (connection refused) → ProviderError 'could not reach'."""
    url = prometheus.url
    await prometheus.stop()
    with pytest.raises(ProviderError, match="could not reach Prometheus") as raised:
        await instant(client, url, REQUESTS)
    assert not isinstance(raised.value, MissingData)


@pytest.mark.parametrize(
    ("mode", "words"),
    [
        ("html", "HTML page instead of JSON"),
        ("garbage", "malformed JSON"),
        ("500", "HTTP 500"),
        ("503", "HTTP 503"),
    ],
)
async def test_broken_answers_are_provider_errors(
    prometheus: FakePrometheus, client: httpx.AsyncClient, mode: Any, words: str
) -> None:
    """An HTML login page, truncated JSON, a bare 500 or a plain-text 503 each say so."""
    prometheus.set_fault(mode)
    with pytest.raises(ProviderError, match=words):
        await instant(client, prometheus.url, REQUESTS)


async def test_range_queries_give_points(
    prometheus: FakePrometheus, client: httpx.AsyncClient, manual_clock: FakeClock
) -> None:
    """query_range returns (time, value) per step; start/end/step go on the wire."""
    traffic(prometheus.product, manual_clock)
    end = manual_clock()
    points = await range_query(
        client, prometheus.url, REQUESTS, end - timedelta(seconds=30), end, timedelta(seconds=15)
    )
    assert len(points) == 3 and points[-1][1] == 103
    assert points[-1][0] == end.timestamp()
    asked = prometheus.requests_to("/api/v1/query_range")[-1]
    assert asked.param("step") == "15"


async def test_an_empty_range_is_missing_data(
    prometheus: FakePrometheus, client: httpx.AsyncClient, manual_clock: FakeClock
) -> None:
    """A range with no data at all → MissingData (empty)."""
    end = manual_clock()
    with pytest.raises(MissingData) as raised:
        await range_query(client, prometheus.url, REQUESTS, end - timedelta(minutes=5), end, 60)
    assert raised.value.reason == "empty"


# -- answers a real Prometheus can give but the sandbox does not: a mock transport ------------
def mock_client(body: Any, status: int = 200) -> httpx.AsyncClient:
    """A client whose every request is answered with `body` as JSON."""

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            status, content=json.dumps(body).encode(), headers={"content-type": "application/json"}
        )

    return httpx.AsyncClient(transport=httpx.MockTransport(answer))


def vector(*values: Any) -> dict[str, Any]:
    """A success envelope with one series per value."""
    result = [
        {"metric": {"pod": f"p{i}"}, "value": [1700000000.5, v]} for i, v in enumerate(values)
    ]
    return {"status": "success", "data": {"resultType": "vector", "result": result}}


def matrix(*series: list[Any]) -> dict[str, Any]:
    """A success envelope with one matrix series per list of values."""
    result = [
        {"metric": {}, "values": [[1700000000 + i, v] for i, v in enumerate(values)]}
        for values in series
    ]
    return {"status": "success", "data": {"resultType": "matrix", "result": result}}


MISSING: list[tuple[str, Any, str, Callable[[str], bool]]] = [
    ("several series", vector("1", "2"), "several_series", lambda m: "2 series" in m),
    ("+Inf", vector("+Inf"), "not_finite", lambda m: "+Inf" in m),
    ("-Inf", vector("-Inf"), "not_finite", lambda m: "-Inf" in m),
    ("a word", vector("lots"), "not_a_number", lambda m: "'lots'" in m),
    ("null", vector(None), "not_a_number", lambda m: "None" in m),
    (
        "status error",
        {"status": "error", "errorType": "execution", "error": "boom"},
        "error_status",
        lambda m: "execution: boom" in m,
    ),
    ("no status", {"data": {}}, "bad_shape", lambda m: "envelope" in m),
    ("matrix for an instant query", matrix(["1"]), "bad_shape", lambda m: "matrix" in m),
    ("no data field", {"status": "success"}, "bad_shape", lambda m: "resultType" in m),
]


@pytest.mark.parametrize(
    ("body", "reason", "says"), [m[1:] for m in MISSING], ids=[m[0] for m in MISSING]
)
async def test_unusable_instant_answers_are_missing_data(
    body: Any, reason: str, says: Callable[[str], bool]
) -> None:
    """Each way a JSON answer lacks one usable number is MissingData naming that way."""
    async with mock_client(body) as http:
        with pytest.raises(MissingData) as raised:
            await instant(http, "http://prometheus.test", "sum(up)")
    assert raised.value.reason == reason
    assert says(raised.value.message), raised.value.message


async def test_a_scalar_result_is_a_number() -> None:
    """A scalar result (e.g. `scalar(...)`) is read like a one-series vector."""
    body = {"status": "success", "data": {"resultType": "scalar", "result": [1700000000, "4"]}}
    async with mock_client(body) as http:
        sample = await instant(http, "http://prometheus.test", "scalar(sum(up))")
    assert (sample.value, sample.at) == (4.0, 1700000000.0)


async def test_range_gaps_are_dropped_and_several_series_refused() -> None:
    """NaN points in a range are gaps (left out); several series or only NaN is MissingData."""
    async with mock_client(matrix(["1", "NaN", "3"])) as http:
        points = await range_query(http, "http://p.test", "q", 0, 2, 1)
    assert points == [(1700000000.0, 1.0), (1700000002.0, 3.0)]
    async with mock_client(matrix(["1"], ["2"])) as http:
        with pytest.raises(MissingData, match="2 series"):
            await range_query(http, "http://p.test", "q", 0, 2, 1)
    async with mock_client(matrix(["NaN", "NaN"])) as http:
        with pytest.raises(MissingData, match="only NaN"):
            await range_query(http, "http://p.test", "q", 0, 2, 1)
