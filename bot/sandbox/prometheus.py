"""FakePrometheus: the Prometheus HTTP query API, answering golive's queries from FakeProduct."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from aiohttp import web

from bot.domain.clock import Now
from bot.sandbox.base import FakeServer, json_response
from bot.sandbox.metrics import RequestMetrics, Snapshot
from bot.sandbox.product import FakeProduct

MAX_POINTS = 11_000
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
_DURATION = re.compile(r"^(?:\d+(?:ms|s|m|h|d|w|y))+$")
_COUNTER = re.compile(
    r"^sum\((?P<fn>increase|rate)\(http_requests_total(?:\{(?P<matchers>[^}]*)\})?"
    r"\[(?P<window>[0-9a-z]+)\]\)\)$"
)
_BUCKET_RATE = r"(?:increase|rate)\(http_request_duration_seconds_bucket\[(?P<{name}>[0-9a-z]+)\]\)"
_QUANTILE = re.compile(
    r"^histogram_quantile\((?P<q>[-+0-9.eE]+),(?:sum\("
    + _BUCKET_RATE.format(name="w1")
    + r"\)by\(le\)|sumby\(le\)\("
    + _BUCKET_RATE.format(name="w2")
    + r"\))\)$"
)
_BUCKET = re.compile(
    r'^sum\((?P<fn>increase|rate)\(http_request_duration_seconds_bucket\{le="(?P<le>[^"]*)"\}'
    r"\[(?P<window>[0-9a-z]+)\]\)\)$"
)
_MATCHER = re.compile(r'^(?P<label>[a-zA-Z_]\w*)(?P<op>=~|!~|!=|=)"(?P<value>(?:[^"\\]|\\.)*)"$')


class BadQuery(ValueError):
    """A query or parameter this endpoint cannot answer (HTTP 400, errorType bad_data)."""


def parse_duration(text: str) -> float:
    """Seconds in a Prometheus duration such as 30s, 5m, 1h30m."""
    if not _DURATION.match(text):
        raise BadQuery(f'not a valid duration string: "{text}"')
    seconds = sum(int(n) * _UNITS[u] for n, u in re.findall(r"(\d+)(ms|s|m|h|d|w|y)", text))
    if seconds <= 0:
        raise BadQuery(f'duration must be greater than 0: "{text}"')
    return float(seconds)


def parse_time(text: str) -> datetime:
    """A Prometheus API timestamp: unix seconds (float) or RFC 3339."""
    try:
        return datetime.fromtimestamp(float(text), UTC)
    except (ValueError, OverflowError):
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadQuery(f'cannot parse "{text}" to a valid timestamp') from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def format_value(value: float) -> str:
    """A sample value as Prometheus writes it: shortest form, no exponent, NaN/+Inf/-Inf."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    text = repr(float(value))
    if "e" in text:
        text = format(Decimal(text), "f")
    return text[:-2] if text.endswith(".0") else text


def histogram_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float:
    """Prometheus' histogram_quantile over (upper bound, cumulative count) pairs, +Inf last."""
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    ordered = sorted(buckets)
    if len(ordered) < 2 or not math.isinf(ordered[-1][0]):
        return math.nan
    total = ordered[-1][1]
    if total <= 0:
        return math.nan
    rank = q * total
    index = next(i for i, (_, count) in enumerate(ordered) if count >= rank)
    if index == len(ordered) - 1:
        return ordered[-2][0]
    upper, count = ordered[index]
    if index == 0 and upper <= 0:
        return upper
    lower, below = (0.0, 0.0) if index == 0 else ordered[index - 1]
    return lower + (upper - lower) * ((rank - below) / (count - below))


@dataclass(frozen=True)
class Query:
    """A parsed query: a function of the (start, end) snapshots of a window, or None (no series)."""

    window: float
    evaluate: Callable[[Snapshot, Snapshot, tuple[float, ...]], float | None]


def _label_test(op: str, value: str) -> Callable[[str], bool]:
    if op == "=":
        return lambda label: label == value
    if op == "!=":
        return lambda label: label != value
    try:
        pattern = re.compile(value)
    except re.error as exc:
        raise BadQuery(f"invalid regular expression {value!r}: {exc}") from None
    if op == "=~":
        return lambda label: pattern.fullmatch(label) is not None
    return lambda label: pattern.fullmatch(label) is None


def _status_filter(matchers: str | None) -> Callable[[str], bool]:
    tests: list[Callable[[str], bool]] = []
    for part in filter(None, (matchers or "").split(",")):
        found = _MATCHER.match(part)
        if found is None or found["label"] != "status":
            raise BadQuery(f"unsupported label matcher {part!r} (only status is known)")
        tests.append(_label_test(found["op"], found["value"]))
    return lambda status: all(test(status) for test in tests)


def parse_query(text: str) -> Query:
    """Understand golive's default queries (any window, whitespace-insensitive) or raise."""
    compact = re.sub(r"\s+", "", text)
    counter = _COUNTER.match(compact)
    if counter:
        window = parse_duration(counter["window"])
        wanted = _status_filter(counter["matchers"])
        per = window if counter["fn"] == "rate" else 1.0

        def increase(start: Snapshot, end: Snapshot, _: tuple[float, ...]) -> float | None:
            series = [s for s in end.requests if wanted(s)]
            if not series:
                return None
            return sum(end.requests[s] - start.requests.get(s, 0) for s in series) / per

        return Query(window, increase)
    bucket = _BUCKET.match(compact)
    if bucket:
        window = parse_duration(bucket["window"])
        per = window if bucket["fn"] == "rate" else 1.0
        le = bucket["le"]

        def in_bucket(start: Snapshot, end: Snapshot, bounds: tuple[float, ...]) -> float | None:
            index = _bucket_index(le, bounds)
            if index is None:
                return None  # no series carries that le label
            return (end.buckets[index] - start.buckets[index]) / per

        return Query(window, in_bucket)
    quantile = _QUANTILE.match(compact)
    if quantile:
        window = parse_duration(quantile["w1"] or quantile["w2"])
        try:
            q = float(quantile["q"])
        except ValueError:
            raise BadQuery(f"invalid quantile {quantile['q']!r}") from None

        def p_quantile(start: Snapshot, end: Snapshot, bounds: tuple[float, ...]) -> float:
            pairs = [
                (b, (e - s) / window)
                for b, s, e in zip((*bounds, math.inf), start.buckets, end.buckets, strict=True)
            ]
            return histogram_quantile(q, pairs)

        return Query(window, p_quantile)
    raise BadQuery(
        f"unsupported query {text!r}: this sandbox answers sum(increase(http_requests_total"
        '[W])), its status=~"5.." variant, sum(increase(http_request_duration_seconds_bucket'
        '{le="L"}[W])) and histogram_quantile over http_request_duration_seconds_bucket'
    )


def _bucket_index(le: str, bounds: tuple[float, ...]) -> int | None:
    """Which cumulative bucket an `le` label value names (exact label match, as PromQL does)."""
    labels = [_le_label(b) for b in bounds] + ["+Inf"]
    return labels.index(le) if le in labels else None


def _le_label(bound: float) -> str:
    """The `le` label of a bucket bound as the exposition writes it (0.4, 1.0, 2.5)."""
    return repr(float(bound))


def evaluate(metrics: RequestMetrics, query: Query, at: datetime) -> float | None:
    """The query's value at `at`, or None when there is no data in its window."""
    pair = metrics.window(at, query.window)
    return None if pair is None else query.evaluate(*pair, metrics.bounds)


class FakePrometheus(FakeServer):
    """`/api/v1/query` and `/api/v1/query_range` computed from a FakeProduct's metric snapshots.

    No sample in the window → an empty result (missing data, never zero). `down = True`
    answers 503 unavailable; `stop()` closes the port.
    """

    def __init__(self, product: FakeProduct, *, clock: Now | None = None) -> None:
        """Answer from `product.metrics`; `clock` (default the product's) is "now" for queries."""
        super().__init__(clock=clock or product.clock)
        self.product = product
        self.down = False
        self.queries: list[str] = []

    def add_routes(self, app: web.Application) -> None:
        """The query endpoints (GET or form POST), build info and readiness."""
        for path, handler in (("/api/v1/query", self._query), ("/api/v1/query_range", self._range)):
            app.router.add_get(path, handler)
            app.router.add_post(path, handler)
        app.router.add_get("/api/v1/label/{name}/values", self._label_values)
        app.router.add_get("/api/v1/status/buildinfo", self._buildinfo)
        app.router.add_get("/-/ready", self._ready)
        app.router.add_get("/-/healthy", self._ready)

    async def _params(self, request: web.Request) -> dict[str, str]:
        params = dict(request.query)
        if request.method == "POST":
            params.update({k: str(v) for k, v in (await request.post()).items()})
        return params

    def _unavailable(self) -> web.Response:
        body = {"status": "error", "errorType": "unavailable", "error": "prometheus is down"}
        return json_response(body, 503)

    async def _query(self, request: web.Request) -> web.Response:
        if self.down:
            return self._unavailable()
        params = await self._params(request)
        try:
            query = self._parse(params)
            at = parse_time(params["time"]) if params.get("time") else self.clock()
        except BadQuery as exc:
            return _bad_data(str(exc))
        value = evaluate(self.product.metrics, query, at)
        result = [] if value is None else [{"metric": {}, "value": _point(at, value)}]
        return json_response(
            {"status": "success", "data": {"resultType": "vector", "result": result}}
        )

    async def _range(self, request: web.Request) -> web.Response:
        if self.down:
            return self._unavailable()
        params = await self._params(request)
        try:
            query = self._parse(params)
            start, end, step = _range_params(params)
        except BadQuery as exc:
            return _bad_data(str(exc))
        values = []
        at = start
        while at <= end:
            value = evaluate(self.product.metrics, query, at)
            if value is not None:
                values.append(_point(at, value))
            at += timedelta(seconds=step)
        result = [{"metric": {}, "values": values}] if values else []
        return json_response(
            {"status": "success", "data": {"resultType": "matrix", "result": result}}
        )

    def _parse(self, params: dict[str, str]) -> Query:
        text = params.get("query", "")
        self.queries.append(text)
        if not text.strip():
            raise BadQuery('invalid parameter "query": empty query')
        return parse_query(text)

    async def _label_values(self, request: web.Request) -> web.Response:
        """GET /api/v1/label/<name>/values[?match[]=<selector>]: the sorted values a label takes
        on the series the selectors pick (all series without one)."""
        if self.down:
            return self._unavailable()
        name = request.match_info["name"]
        selectors = request.query.getall("match[]", [])
        metrics = self.product.metrics
        series: list[dict[str, str]] = [
            {"__name__": "http_requests_total", "status": status} for status in metrics.requests
        ]
        series += [
            {"__name__": "http_request_duration_seconds_bucket", "le": le}
            for le in [_le_label(b) for b in metrics.bounds] + ["+Inf"]
        ]
        series += [
            {"__name__": f"http_request_duration_seconds_{part}"} for part in ("sum", "count")
        ]
        try:
            picked = [s for s in series if not selectors or any(_picks(m, s) for m in selectors)]
        except BadQuery as exc:
            return _bad_data(str(exc))
        values = sorted({s[name] for s in picked if name in s})
        return json_response({"status": "success", "data": values})

    async def _buildinfo(self, request: web.Request) -> web.Response:
        data = {"version": "2.53.0-golive-sandbox", "revision": "sandbox", "branch": "sandbox"}
        return json_response({"status": "success", "data": data})

    async def _ready(self, request: web.Request) -> web.Response:
        if self.down:
            return web.Response(status=503, text="Service Unavailable")
        return web.Response(text="Prometheus Server is Ready.\n")


def _range_params(params: dict[str, str]) -> tuple[datetime, datetime, float]:
    for name in ("start", "end", "step"):
        if not params.get(name):
            raise BadQuery(f'invalid parameter "{name}": missing')
    start, end = parse_time(params["start"]), parse_time(params["end"])
    try:
        step = float(params["step"])
    except ValueError:
        step = parse_duration(params["step"])
    if end < start:
        raise BadQuery('invalid parameter "end": end timestamp must not be before start time')
    if step <= 0:
        raise BadQuery(
            'invalid parameter "step": zero or negative query resolution step widths are not '
            "accepted. Try a positive integer"
        )
    if (end - start).total_seconds() / step > MAX_POINTS:
        raise BadQuery("exceeded maximum resolution of 11,000 points per timeseries")
    return start, end, step


_SELECTOR = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<matchers>[^}]*)\})?$")


def _picks(selector: str, labels: dict[str, str]) -> bool:
    """Whether a series selector such as `m{status=~"5.."}` selects a series' labels."""
    found = _SELECTOR.match(re.sub(r"\s+", "", selector))
    if found is None:
        raise BadQuery(f"invalid series selector {selector!r}")
    if found["name"] != labels["__name__"]:
        return False
    for part in filter(None, (found["matchers"] or "").split(",")):
        matcher = _MATCHER.match(part)
        if matcher is None:
            raise BadQuery(f"invalid label matcher {part!r}")
        if not _label_test(matcher["op"], matcher["value"])(labels.get(matcher["label"], "")):
            return False
    return True


def _point(at: datetime, value: float) -> list[Any]:
    return [round(at.timestamp(), 3), format_value(value)]


def _bad_data(message: str) -> web.Response:
    return json_response({"status": "error", "errorType": "bad_data", "error": message}, 400)
