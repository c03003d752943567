"""Prometheus' HTTP query API: one number per instant query, a series per range query.

Anything that is not a usable number — `status` other than `success`, an error payload, an
empty vector, several series where one is expected, NaN or ±Inf, a value that is not a number —
raises MissingData, never becomes zero. Transport problems (unreachable, timeout, HTML, 5xx
without a Prometheus error body, malformed JSON) raise ProviderError through request_json.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import httpx

from checks.http import Answer, ProviderError, request_json

PROVIDER = "Prometheus"
# Prometheus answers these with a JSON error body (bad_data, execution, unavailable, timeout).
_ERROR_STATUSES = (400, 422, 503)
MissingReason = Literal[
    "error_status", "bad_shape", "empty", "several_series", "not_a_number", "not_finite"
]


class MissingData(ProviderError):
    """Prometheus answered but gave no usable number; `reason` says which way, in short."""

    def __init__(
        self, message: str, reason: MissingReason, evidence: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message, evidence)
        self.reason: MissingReason = reason


@dataclass(frozen=True)
class Sample:
    """One instant-query answer: the value, Prometheus' evaluation time and the series count."""

    query: str
    value: float
    at: float
    series: int = 1

    @property
    def time(self) -> datetime:
        """The evaluation time as an aware UTC datetime."""
        return datetime.fromtimestamp(self.at, UTC)


def _timestamp(value: datetime | float) -> str:
    seconds = value.timestamp() if isinstance(value, datetime) else float(value)
    return f"{seconds:.3f}"


def _seconds(value: timedelta | float) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _number(raw: Any, query: str, evidence: dict[str, Any]) -> float:
    """A sample value as Prometheus writes it (a string: "12.5", "NaN", "+Inf") or MissingData."""
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise MissingData(
            f"Prometheus answered a value that is not a number ({raw!r}) for {query}",
            "not_a_number",
            evidence,
        )
    try:
        value = float(raw)
    except ValueError:
        raise MissingData(
            f"Prometheus answered a value that is not a number ({raw!r}) for {query}",
            "not_a_number",
            evidence,
        ) from None
    if not math.isfinite(value):
        raise MissingData(
            f"Prometheus answered {raw} for {query} — no usable number (often: no traffic in "
            f"the window, so a ratio or quantile is undefined)",
            "not_finite",
            evidence,
        )
    return value


def _labels(series: list[Any]) -> list[dict[str, Any]]:
    return [s.get("metric", {}) if isinstance(s, dict) else {} for s in series[:5]]


def _one_series(result: list[Any], query: str, evidence: dict[str, Any], empty: str) -> Any:
    """The one series a query must answer with; none or several is missing data."""
    evidence["series"] = len(result)
    if not result:
        raise MissingData(f"{PROVIDER} has no data for {query} ({empty})", "empty", evidence)
    if len(result) > 1:
        evidence["labels"] = _labels(result)
        raise MissingData(
            f"{PROVIDER} answered {len(result)} series where one is expected for {query} "
            f"(aggregate it, e.g. with sum(...))",
            "several_series",
            evidence,
        )
    return result[0]


async def _ask(
    client: httpx.AsyncClient,
    base_url: str,
    path: str,
    params: dict[str, str],
    timeout: float,
    *,
    query_data: bool = True,
) -> tuple[Any, dict[str, Any]]:
    """GET an API path; returns (data, evidence) of a `success` envelope or raises.

    `query_data` (the query endpoints) also requires data.resultType and data.result.
    """
    url = f"{base_url.rstrip('/')}{path}"
    query = params.get("query") or params.get("match[]") or path
    try:
        answer: Answer = await request_json(
            client,
            "GET",
            url,
            provider=PROVIDER,
            params=params,
            timeout=timeout,
            ok=_ERROR_STATUSES,
        )
    except ProviderError as exc:
        code = exc.evidence.get("status_code")
        if isinstance(code, int) and code >= 400:  # an error status without a JSON error body
            raise ProviderError(f"{PROVIDER} answered HTTP {code}", exc.evidence) from None
        raise
    evidence: dict[str, Any] = {**answer.asked, "query": query}
    body = answer.data
    code = answer.response.status_code
    if not isinstance(body, dict) or "status" not in body:
        if code >= 400:
            raise ProviderError(f"{PROVIDER} answered HTTP {code}", evidence)
        raise MissingData(
            f"{PROVIDER} answered JSON that is not an API envelope (no `status`) for {query}",
            "bad_shape",
            evidence,
        )
    if body.get("status") != "success":
        kind = body.get("errorType") or "error"
        error = body.get("error") or "no error message"
        evidence.update(error_type=kind, error=error)
        if code == 503 or kind == "unavailable":
            raise MissingData(f"{PROVIDER} is unavailable ({error})", "error_status", evidence)
        raise MissingData(
            f"{PROVIDER} refused the query ({kind}: {error}): {query}", "error_status", evidence
        )
    if "warnings" in body:
        evidence["warnings"] = body["warnings"]
    data = body.get("data")
    if query_data and (
        not isinstance(data, dict) or "resultType" not in data or "result" not in data
    ):
        raise MissingData(
            f"{PROVIDER} answered `success` without data.resultType/result for {query}",
            "bad_shape",
            evidence,
        )
    return data, evidence


async def instant(
    client: httpx.AsyncClient,
    base_url: str,
    query: str,
    *,
    at: datetime | float | None = None,
    timeout: float = 10.0,
) -> Sample:
    """The single number an instant query evaluates to at `at` (default: Prometheus' now)."""
    params = {"query": query}
    if at is not None:
        params["time"] = _timestamp(at)
    data, evidence = await _ask(client, base_url, "/api/v1/query", params, timeout)
    kind, result = data["resultType"], data["result"]
    if kind == "scalar":
        point = result
    elif kind == "vector" and isinstance(result, list):
        series = _one_series(
            result,
            query,
            evidence,
            "empty result: no series matched in the window — is the target scraped, and is the "
            "metric name right?",
        )
        point = series.get("value") if isinstance(series, dict) else None
    else:
        raise MissingData(
            f"{PROVIDER} answered a {kind} where an instant vector is expected for {query}",
            "bad_shape",
            evidence,
        )
    if not isinstance(point, list) or len(point) != 2:
        raise MissingData(
            f"{PROVIDER} answered a sample without [time, value] for {query}",
            "bad_shape",
            evidence,
        )
    value = _number(point[1], query, evidence)
    try:
        evaluated = float(point[0])
    except (TypeError, ValueError):
        raise MissingData(
            f"{PROVIDER} answered a sample time that is not a number ({point[0]!r})",
            "bad_shape",
            evidence,
        ) from None
    return Sample(query, value, evaluated, 1)


async def range_query(
    client: httpx.AsyncClient,
    base_url: str,
    query: str,
    start: datetime | float,
    end: datetime | float,
    step: timedelta | float,
    *,
    timeout: float = 10.0,
) -> list[tuple[float, float]]:
    """(unix time, value) points of a one-series range query; NaN/±Inf points are left out.

    Left-out points are gaps (no traffic makes a ratio or quantile undefined); a chart shows
    them as gaps. No series, several series, or no finite point at all is MissingData.
    """
    params = {
        "query": query,
        "start": _timestamp(start),
        "end": _timestamp(end),
        "step": f"{_seconds(step):g}",
    }
    data, evidence = await _ask(client, base_url, "/api/v1/query_range", params, timeout)
    kind, result = data["resultType"], data["result"]
    if kind != "matrix" or not isinstance(result, list):
        raise MissingData(
            f"{PROVIDER} answered a {kind} where a range (matrix) is expected for {query}",
            "bad_shape",
            evidence,
        )
    series = _one_series(
        result, query, evidence, f"empty result between {params['start']} and {params['end']}"
    )
    values = series.get("values") if isinstance(series, dict) else None
    if not isinstance(values, list):
        raise MissingData(
            f"{PROVIDER} answered a series without values for {query}", "bad_shape", evidence
        )
    points: list[tuple[float, float]] = []
    for point in values:
        if not isinstance(point, list) or len(point) != 2:
            raise MissingData(
                f"{PROVIDER} answered a point without [time, value] for {query}",
                "bad_shape",
                evidence,
            )
        try:
            value = _number(point[1], query, evidence)
            at = float(point[0])
        except MissingData as exc:
            if exc.reason == "not_finite":
                continue
            raise
        except (TypeError, ValueError):
            raise MissingData(
                f"{PROVIDER} answered a point time that is not a number ({point[0]!r})",
                "bad_shape",
                evidence,
            ) from None
        points.append((at, value))
    if not points:
        raise MissingData(
            f"{PROVIDER} answered only NaN/Inf points for {query} (no usable number)",
            "not_finite",
            evidence,
        )
    return points


async def label_values(
    client: httpx.AsyncClient,
    base_url: str,
    label: str,
    match: str,
    *,
    timeout: float = 10.0,
) -> list[str]:
    """The values `label` takes on the series `match` selects (GET /api/v1/label/…/values).

    An answer that is not a list of strings is MissingData; no values at all is an empty list
    (the caller says what that means).
    """
    params = {"match[]": match}
    path = f"/api/v1/label/{label}/values"
    data, evidence = await _ask(client, base_url, path, params, timeout, query_data=False)
    if not isinstance(data, list) or not all(isinstance(v, str) for v in data):
        raise MissingData(
            f"{PROVIDER} answered label values that are not a list of strings for {match}",
            "bad_shape",
            evidence,
        )
    return list(data)
