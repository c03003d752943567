"""Timers are derived from deadlines in SQLite: APScheduler fires them, restarts keep them."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.domain.clock import FakeClock, SystemClock
from bot.domain.model import StepStatus
from tests.conftest import COMMANDER, SHORTENED, Harness, make_config, walk


async def test_apscheduler_fires_the_soak_deadline() -> None:
    """With the real clock, the soak ends by itself when its (short) duration has passed."""
    config = make_config(
        monitoring={"soak": {"duration": "1s", "interval": "1s"}, "shortened_reason": SHORTENED}
    )
    h = Harness(config, SystemClock(), ":memory:")  # type: ignore[arg-type]
    await h.say(COMMANDER, "/golive start v2.4.0")
    await walk(h, "portal")
    assert h.step("soak").status is StepStatus.TIMING
    changed = asyncio.Event()
    h.service.on_change(changed.set)
    await h.runtime.start()
    try:
        async with asyncio.timeout(10):
            while h.step("soak").status is StepStatus.TIMING:
                changed.clear()
                await changed.wait()
        assert h.step("soak").status is StepStatus.AWAITING
    finally:
        await h.runtime.stop()


async def test_restart_resumes_the_soak_with_the_time_that_remains(tmp_path: Path) -> None:
    """A restart five minutes into a 15-minute soak schedules the end ten minutes later."""
    clock = FakeClock(datetime(2026, 11, 27, 12, 0, tzinfo=UTC))
    config = make_config(database=str(tmp_path / "golive.db"))
    first = Harness(config, clock, config.database)
    await first.say(COMMANDER, "/golive start v2.4.0")
    await walk(first, "portal")
    deadline = first.step("soak").deadline
    assert deadline == clock.now() + timedelta(minutes=15)
    await first.service.close()
    first.store.close()

    clock.advance(5 * 60)
    second = Harness(config, clock, config.database)
    await second.runtime.start()
    try:
        assert second.runtime.deadlines.next_due() == deadline
        next_run = second.runtime.timers.next_run()
        assert next_run is not None
        remaining = (next_run - datetime.now(UTC)).total_seconds()
        assert 9 * 60 < remaining <= 10 * 60
        assert second.step("soak").status is StepStatus.TIMING
    finally:
        await second.runtime.stop()


async def test_no_timer_job_when_nothing_is_due(harness: Harness) -> None:
    """Without deadlines there is no job; one appears with the first deadline."""
    await harness.runtime.start()
    try:
        assert harness.runtime.timers.next_run() is None
        harness.clock.set(datetime(2026, 11, 27, 8, 0, tzinfo=UTC))
        await harness.say(COMMANDER, "/golive start v2.4.0 at=2026-11-27T12:00Z")
        assert harness.runtime.timers.next_run() is not None
        health = await harness.runtime.health()
        assert health["scheduler"] == "running" and health["database"] == "ok"
    finally:
        await harness.runtime.stop()


async def test_scheduled_go_live_survives_a_restart(tmp_path: Path) -> None:
    """A go-live scheduled before a restart still starts at T-30 and opens deployment at T-0."""
    clock = FakeClock(datetime(2026, 11, 27, 9, 0, tzinfo=UTC))
    config = make_config(database=str(tmp_path / "golive.db"))
    first = Harness(config, clock, config.database)
    await first.say(COMMANDER, "/golive start v2.4.0 at=2026-11-27T12:00Z")
    await first.service.close()
    first.store.close()

    second = Harness(config, clock, config.database)
    await second.runtime.start()
    try:
        assert second.runtime.deadlines.next_due() == datetime(2026, 11, 27, 11, 30, tzinfo=UTC)
        assert second.runtime.timers.next_run() is not None
        clock.set(datetime(2026, 11, 27, 11, 30, tzinfo=UTC))
        await second.settle()
        assert second.step("ci").status is StepStatus.AWAITING
        assert any(m.text.startswith("⏰ T-30") for m in second.messages())
    finally:
        await second.runtime.stop()
