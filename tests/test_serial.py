"""The one serializer writes exactly the JSON that databases already hold, and reads it back."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.domain.config import Shortened
from bot.domain.model import Role, Stage, StageKind
from bot.domain.serial import dump, load
from checks.base import CheckResult, Status
from checks.judgment import AlertTracker, Baseline, Judgment, judge_latency
from checks.monitoring import SloBucket
from checks.sequential import Cusum

T0 = datetime(2026, 11, 20, 14, 0, 0, 250000, tzinfo=UTC)

# Each object beside the JSON text the hand-written converters stored for it (keys sorted, as
# the store writes them).
STORED: list[tuple[object, str]] = [
    (
        AlertTracker(
            "1.2.0",
            "errors",
            realert=timedelta(minutes=2),
            open_since=T0,
            last_tick_at=T0 + timedelta(seconds=30),
            fail_streak=2,
            breaches=1,
            test={"version": 1},
        ),
        '{"blind_since": null, "breach_ticks": 2, "breaches": 1, "error_streak": 0, '
        '"error_ticks": 3, "fail_streak": 2, "last_alert_at": null, '
        '"last_tick_at": "2026-11-20T14:00:30.250000+00:00", '
        '"open_since": "2026-11-20T14:00:00.250000+00:00", "realert_seconds": 120.0, '
        '"release": "1.2.0", "signal": "errors", "test": {"version": 1}, "version": 2}',
    ),
    (
        CheckResult("x", Status.WARN, "s", {"a": [1]}, 1.23456),
        '{"duration": 1.235, "evidence": {"a": [1]}, "name": "x", "status": "warn", '
        '"summary": "s"}',
    ),
    (
        Shortened(timedelta(minutes=5), None, "demo"),
        '{"heightened": null, "reason": "demo", "soak": 300.0}',
    ),
    (
        Stage(StageKind.TIMER, Role.ON_CALL, "soak", seconds=900.0, services=("api",)),
        '{"check": null, "kind": "timer", "label": "soak", "manual": false, "role": "on_call", '
        '"seconds": 900.0, "services": ["api"]}',
    ),
    (
        Baseline(1000.0, 5.0, 0.25, 3600.0, T0),
        '{"captured_at": "2026-11-20T14:00:00.250000+00:00", "errors": 5.0, '
        '"p95_seconds": 0.25, "requests": 1000.0, "window_seconds": 3600.0}',
    ),
    (
        SloBucket("0.5", 0.5, True, "ok"),
        '{"exact": true, "le": "0.5", "seconds": 0.5, "summary": "ok"}',
    ),
    (
        Cusum("errors", 1.0, 0.01, 0.02, 0.05, 4.5).update(100.0, 3.0, 31.0),
        '{"alarm": 0.05, "alarmed": false, "at": 31.0, "at_cp": 31.0, "bad": 3.0, '
        '"bad_cp": 3.0, "detect95_seconds": null, "expected": 0.01, "false_page_rate": null, '
        '"reference": 0.02, "signal": "errors", "start": 1.0, "statistic": 0.0, '
        '"threshold": 4.5, "total": 100.0, "total_cp": 100.0, "updates": 1, "version": 1}',
    ),
    (
        judge_latency(0.9, 0.4, window=300),
        '{"evidence": {"p95_seconds": 0.9, "reason": "above_slo", "signal": "latency", '
        '"slo_seconds": 0.4, "window": "5m", "window_seconds": 300.0}, "signal": "latency", '
        '"status": "fail", "summary": "p95 900 ms over 5m > SLO 400 ms"}',
    ),
]


@pytest.mark.parametrize(("obj", "text"), STORED, ids=lambda v: type(v).__name__)
def test_dump_writes_what_databases_hold(obj: object, text: str) -> None:
    """dump() gives, key for key and byte for byte, the JSON stored before it existed."""
    assert json.dumps(dump(obj), sort_keys=True) == text


@pytest.mark.parametrize(("obj", "text"), STORED, ids=lambda v: type(v).__name__)
def test_load_reads_what_databases_hold(obj: object, text: str) -> None:
    """load() rebuilds each object from its stored JSON (the rounded duration as rounded)."""
    again = load(type(obj), json.loads(text))
    if isinstance(obj, CheckResult):
        obj = CheckResult(obj.name, obj.status, obj.summary, obj.evidence, 1.235)
    assert again == obj


def test_a_first_version_tracker_state_still_loads() -> None:
    """An alert tracker stored before the sequential test (version 1, no `test`) loads."""
    state: dict[str, Any] = json.loads(STORED[0][1])
    del state["test"]
    tracker = load(AlertTracker, state | {"version": 1})
    assert tracker.test is None and tracker.realert == timedelta(minutes=2)
    assert tracker.open_since == T0


def test_loaded_times_are_utc_as_stored() -> None:
    """Times come back in the UTC of datetime itself, and a time without an offset is UTC."""
    baseline = load(Baseline, json.loads(STORED[4][1]) | {"captured_at": "2026-11-20T14:00:00"})
    assert baseline.captured_at.tzinfo is UTC
    assert baseline.captured_at == datetime(2026, 11, 20, 14, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("cls", "data"),
    [
        (Judgment, {"signal": "cpu", "status": "fail", "summary": "s"}),
        (CheckResult, {"name": "x", "status": "maybe", "summary": "s"}),
        (AlertTracker, {"release": "1", "signal": "errors"}),
    ],
)
def test_data_that_does_not_fit_is_refused(cls: type[object], data: dict[str, Any]) -> None:
    """An unknown signal or status, or a state without its version, raises ValueError."""
    with pytest.raises(ValueError):
        load(cls, data)
