"""AlertTracker: from per-tick verdicts to open / remind / recover / blind / sight, exactly once."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.domain.serial import dump, load
from checks.base import Status
from checks.judgment import AlertAction, AlertTracker, judge_latency

T0 = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)
TICK = timedelta(seconds=30)
P, F, INC, E = Status.PASS, Status.FAIL, Status.INCONCLUSIVE, Status.ERROR


def tracker(**options: Any) -> AlertTracker:
    """A tracker for release v2.4.0's p95 with the default settings unless told otherwise."""
    return AlertTracker("v2.4.0", "latency", **options)


def run(
    verdicts: Iterable[Status], start: AlertTracker | None = None, first: int = 0
) -> tuple[AlertTracker, list[tuple[int, str]]]:
    """Feed one verdict per 30 s tick; returns the final state and (tick index, action kind)."""
    state = start or tracker()
    seen: list[tuple[int, str]] = []
    for index, verdict in enumerate(verdicts, start=first):
        state, actions = state.observe(verdict, T0 + index * TICK)
        seen += [(index, a.kind) for a in actions]
    return state, seen


def test_one_flapping_bad_tick_does_not_alert() -> None:
    """A single p95 FAIL between passes opens nothing."""
    _, actions = run([P, F, P, P, F, P])
    assert actions == []


def test_two_bad_ticks_open_one_alert() -> None:
    """The second consecutive FAIL opens the breach; further FAILs within realert stay quiet."""
    state, actions = run([P, F, F, F, F, F])
    assert actions == [(2, "open")]
    assert state.is_open and state.open_since == T0 + 2 * TICK and state.breaches == 1


def test_breach_ticks_is_respected() -> None:
    """With breach_ticks=3 the third consecutive FAIL opens; with 1 the first does."""
    assert run([F, F, F], tracker(breach_ticks=3))[1] == [(2, "open")]
    assert run([F, F], tracker(breach_ticks=1))[1] == [(0, "open")]


def test_reminders_come_every_realert_while_the_breach_lasts() -> None:
    """A 25-minute breach at 30 s ticks with realert 10m: open, then reminders at +10m and +20m."""
    state, actions = run([F] * 52, tracker(realert=timedelta(minutes=10)))
    assert actions == [(1, "open"), (21, "remind"), (41, "remind")]
    assert state.breaches == 1


def test_a_pass_recovers_and_the_next_breach_is_a_new_alert() -> None:
    """PASS after an open breach recovers (with its start); a later breach opens as number 2."""
    state = tracker()
    seen: list[AlertAction] = []
    for index, verdict in enumerate([F, F, F, P, P, F, F]):
        state, actions = state.observe(verdict, T0 + index * TICK)
        seen += actions
    assert [a.kind for a in seen] == ["open", "recover", "open"]
    recover = seen[1]
    assert recover.since == T0 + TICK and recover.duration == 2 * TICK
    assert [a.breach for a in seen] == [1, 1, 2]
    assert {a.dedup_key for a in seen} == {"golive/v2.4.0/latency"}


def test_inconclusive_neither_opens_nor_closes() -> None:
    """INCONCLUSIVE holds the fail streak and keeps an open breach open (no recover, no remind)."""
    assert run([F, INC, F])[1] == [(2, "open")]
    assert run([F, INC, P, F])[1] == []
    state, actions = run([F, F] + [INC] * 40 + [P], tracker(realert=timedelta(minutes=1)))
    assert actions == [(1, "open"), (42, "recover")]
    assert not state.is_open


def test_blind_after_three_errors_and_only_once() -> None:
    """Three ERROR ticks in a row give one `blind`; more stay quiet; data gives `sight`."""
    state, actions = run([P, E, E, E, E, E, E, P])
    assert actions == [(3, "blind"), (7, "sight")]
    assert not state.is_blind and state.error_streak == 0
    assert run([E, E, P, E, E, P])[1] == []


def test_blindness_does_not_close_or_reopen_a_breach() -> None:
    """Errors during a breach keep it open; FAIL after sight continues it without a new open."""
    state, actions = run([F, F, E, E, E, F, P])
    assert actions == [(1, "open"), (4, "blind"), (5, "sight"), (6, "recover")]
    assert state.breaches == 1


def test_a_tick_is_never_counted_twice() -> None:
    """A replayed or older tick (same or earlier `now`) changes nothing and emits nothing."""
    state, actions = tracker().observe(F, T0)
    state, actions = state.observe(F, T0 + TICK)
    assert [a.kind for a in actions] == ["open"]
    again, replayed = state.observe(F, T0 + TICK)
    assert replayed == [] and again == state
    assert state.observe(P, T0)[1] == []


def test_json_round_trip_mid_breach_gives_no_second_open() -> None:
    """State saved as JSON mid-breach and reloaded continues the breach: reminders, no new open."""
    state, actions = run([F, F, F], tracker(realert=timedelta(minutes=2)))
    assert actions == [(1, "open")]
    stored = json.dumps(dump(state))
    reloaded = load(AlertTracker, json.loads(stored))
    assert reloaded == state
    _, later = run([F] * 6, reloaded, first=3)
    assert later == [(5, "remind")]


def test_a_crash_before_commit_replays_to_the_same_single_open() -> None:
    """kill -9 between deciding and committing: the replayed tick opens once, from stored state."""
    store: dict[str, str] = {"state": json.dumps(dump(tracker()))}
    outbox: list[str] = []

    def tick(verdict: Status, index: int, crash: bool = False) -> None:
        state = load(AlertTracker, json.loads(store["state"]))
        state, actions = state.observe(verdict, T0 + index * TICK)
        if crash:
            return  # killed: neither the state nor the actions were committed
        store["state"] = json.dumps(dump(state))
        outbox.extend(a.kind for a in actions)

    tick(F, 0)
    tick(F, 1, crash=True)
    tick(F, 1)  # the restarted scheduler runs the missed tick
    tick(F, 1)  # and a duplicate delivery of it changes nothing
    tick(F, 2)
    assert outbox == ["open"]


def test_actions_carry_the_judgment_and_round_trip() -> None:
    """An action quotes the verdict that caused it and survives JSON."""
    bad = judge_latency(0.9, 0.4, window=300)
    state, _ = tracker().observe(bad, T0)
    _, actions = state.observe(bad, T0 + TICK)
    [opened] = actions
    assert opened.summary == "p95 900 ms over 5m > SLO 400 ms"
    assert opened.evidence["slo_seconds"] == 0.4
    assert load(AlertAction, json.loads(json.dumps(dump(opened)))) == opened


@pytest.mark.parametrize(
    "options", [{"breach_ticks": 0}, {"error_ticks": 0}, {"realert": timedelta(0)}]
)
def test_nonsense_settings_are_refused(options: dict[str, Any]) -> None:
    """breach_ticks/error_ticks below 1 or a non-positive realert raise ValueError."""
    with pytest.raises(ValueError):
        tracker(**options)


def test_unknown_state_versions_are_refused() -> None:
    """A stored state of another format version is refused rather than misread."""
    data = dump(tracker()) | {"version": 99}
    with pytest.raises(ValueError, match="version"):
        load(AlertTracker, data)
