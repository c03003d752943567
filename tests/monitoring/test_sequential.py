"""The sequential test: its statistic, its chosen threshold, and its state across restarts."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from bot.domain.serial import dump, load
from checks.sequential import (
    CAP,
    LATENCY_ALARM,
    LATENCY_ALLOWED,
    RECOVER,
    Cusum,
    calibrate,
    error_levels,
    llr_weights,
)

PLAN = ((30, 30.0), (60, 60.0))  # golive's default soak and heightened hour


def cusum(threshold: float = 9.0, **fields: float) -> Cusum:
    """A 5xx test against a 1 % baseline (no change up to 1.25 %, a page is worth it at 2 %)."""
    return Cusum("errors", 0.0, 0.01, 0.0125, 0.02, threshold, **fields)  # type: ignore[arg-type]


def test_weights_are_the_binomial_log_likelihood_ratio() -> None:
    """One error adds ln(b/a) - ln((1-b)/(1-a)); every request subtracts ln((1-a)/(1-b))."""
    jump, drift = llr_weights(0.01, 0.02)
    assert jump == pytest.approx(math.log(0.02 / 0.01) - math.log(0.98 / 0.99))
    assert drift == pytest.approx(math.log(0.99 / 0.98))
    with pytest.raises(ValueError):
        llr_weights(0.02, 0.01)


def test_the_statistic_is_the_page_cusum_of_the_increments() -> None:
    """Fed cumulative counts, S equals L_k - min_j L_j of the cumulative log-likelihood ratio,
    and the change point is the last tick the statistic was zero."""
    rng = np.random.default_rng(1)
    jump, drift = llr_weights(0.0125, 0.02)
    test, total, bad, cumulative, low, low_at = cusum(threshold=1e9), 0.0, 0.0, [0.0], 0.0, 0
    for tick in range(1, 120):
        n = float(rng.poisson(300))
        e = float(rng.poisson(n * (0.01 if tick < 60 else 0.03)))
        total, bad = total + n, bad + e
        test = test.update(total, bad, float(tick))
        cumulative.append(bad * jump - total * drift)
        if cumulative[-1] <= low:
            low, low_at = cumulative[-1], tick
        assert test.statistic == pytest.approx(cumulative[-1] - low, abs=1e-9)
    assert test.at_cp == low_at and test.bad_cp == pytest.approx(
        bad - (bad - test.bad_cp)
    )  # the counts since the change point are those after the last zero
    seconds, since_total, since_bad = test.since_change()
    assert seconds == 119 - low_at and since_bad / since_total > 0.02


def test_fractional_and_slightly_negative_increments_are_absorbed() -> None:
    """increase() extrapolates: a cumulative answer may dip a little; the statistic simply
    moves by the (negative) evidence, and the sum over ticks equals one update with the total."""
    stepwise = cusum(threshold=1e9).update(1000.4, 30.2, 1).update(999.9, 30.1, 2)
    stepwise = stepwise.update(2500.0, 90.0, 3)
    direct = cusum(threshold=1e9).update(2500.0, 90.0, 3)
    assert stepwise.statistic == pytest.approx(direct.statistic)


def test_a_page_holds_until_half_the_threshold_and_the_statistic_is_capped() -> None:
    """Once alarmed, the statistic is capped at CAP×h and the alarm lasts until it falls to
    RECOVER×h; recovered() starts the evidence afresh."""
    test = cusum(threshold=5.0).update(1000, 200, 1)
    assert test.alarmed and test.statistic == CAP * 5.0
    clean = test
    for tick in range(2, 40):
        clean = clean.update(1000.0 * tick, 200 + 10.0 * (tick - 1), tick)
        if not clean.alarmed:
            break
    assert not clean.alarmed and clean.statistic <= RECOVER * 5.0
    fresh = test.recovered()
    assert (fresh.statistic, fresh.alarmed, fresh.total_cp) == (0.0, False, test.total)


def test_state_survives_json() -> None:
    """A test stored as JSON and read back continues identically (a restart loses nothing)."""
    test = cusum().update(3000, 70, 30).update(6000, 140, 60)
    again = load(Cusum, json.loads(json.dumps(dump(test))))
    assert again == test
    assert again.update(9000, 200, 90) == test.update(9000, 200, 90)
    with pytest.raises(ValueError, match="version"):
        load(Cusum, dump(test) | {"version": 7})


def test_levels_from_the_baseline() -> None:
    """A baseline without errors still expects some (Jeffreys prior); the page level is twice
    the baseline, or min_error_increase above it when that is more."""
    expected, reference, alarm, shape = error_levels(12_000, 0, 0.005, 1.25)
    assert expected == pytest.approx(0.5 / 12_000) and shape == 0.5
    assert reference == pytest.approx(1.25 * expected) and alarm == pytest.approx(expected + 0.005)
    expected, _, alarm, _ = error_levels(12_000, 120, 0.005, 1.25)
    assert alarm == pytest.approx(2 * expected) and expected == pytest.approx(120.5 / 12_000)


def test_the_threshold_is_chosen_for_the_false_page_rate() -> None:
    """An independent simulation (another seed, the Python update) of clean releases under the
    chosen threshold pages about `false_page_rate` of them, and never below the floors."""
    chosen = calibrate(
        truth=0.0125, a=0.0125, b=0.02, rate=1000 / 300, plan=PLAN, false_page_rate=0.05
    )
    assert chosen == calibrate(
        truth=0.0125, a=0.0125, b=0.02, rate=1000 / 300, plan=PLAN, false_page_rate=0.05
    )
    rng = np.random.default_rng(99)
    releases, paged = 1_000, 0
    for _ in range(releases):
        test, total, bad = cusum(threshold=chosen.threshold), 0.0, 0.0
        for count, seconds in PLAN:
            for _ in range(count):
                n = seconds * 1000 / 300
                total, bad = total + n, bad + float(rng.poisson(n * 0.0125))
                test = test.update(total, bad, 0.0)
                if test.alarmed:
                    break
            if test.alarmed:
                break
        paged += test.alarmed
    assert abs(paged / releases - 0.05) < 4 * math.sqrt(0.05 * 0.95 / releases)
    jump, _ = llr_weights(0.0125, 0.02)
    assert chosen.threshold >= max(2 * jump, math.log(1 / 0.05))


def test_an_uncertain_baseline_raises_the_threshold() -> None:
    """The baseline's uncertainty is simulated too: a 24-error baseline needs more evidence
    than a known rate, and a quiet service is never paged on fewer than three errors."""
    known = calibrate(truth=0.0125, a=0.0125, b=0.02, rate=200 / 300, plan=PLAN,
                      false_page_rate=0.01)  # fmt: skip
    uncertain = calibrate(truth=0.0125, a=0.0125, b=0.02, rate=200 / 300, plan=PLAN,
                          false_page_rate=0.01, shape=24.5)  # fmt: skip
    assert uncertain.threshold > known.threshold
    expected, reference, alarm, shape = error_levels(12_000, 0, 0.005, 1.25)
    floor = calibrate(truth=reference, a=reference, b=alarm, rate=200 / 300, plan=PLAN,
                      false_page_rate=0.01, shape=shape)  # fmt: skip
    quiet = Cusum("errors", 0.0, expected, reference, alarm, floor.threshold)
    assert not quiet.update(10, 2, 1).alarmed
    assert quiet.update(10, 3, 1).alarmed


def test_time_to_see_a_rise_shrinks_with_traffic() -> None:
    """The 95 % time to page a rise from the start: none at 200 requests per 5 minutes within
    the monitoring, minutes at 10k, under a minute at 100k; p95 at 1k within minutes."""
    seen = {}
    for volume in (200, 10_000, 100_000):
        _, reference, alarm, shape = error_levels(volume * 12, volume * 12 * 0.01, 0.005, 1.25)
        seen[volume] = calibrate(
            truth=reference, a=reference, b=alarm, rate=volume / 300, plan=PLAN,
            false_page_rate=0.01, shape=shape,
        ).detect95_seconds  # fmt: skip
    assert seen[200] is None
    assert seen[10_000] is not None and 60 <= seen[10_000] <= 600
    assert seen[100_000] is not None and seen[100_000] <= 60
    latency = calibrate(truth=LATENCY_ALLOWED, a=LATENCY_ALLOWED, b=LATENCY_ALARM,
                        rate=1000 / 300, plan=PLAN, false_page_rate=0.01)  # fmt: skip
    assert latency.detect95_seconds is not None and latency.detect95_seconds <= 600
