"""Timed work with APScheduler, derived from deadlines stored in SQLite, not kept in memory."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.domain.clock import Clock
from bot.engine.deadlines import Deadlines
from bot.engine.monitor import Monitor
from bot.engine.worker import Backoff

log = logging.getLogger(__name__)

TIMERS_JOB = "golive-timers"
# Seconds before firing again after the database refused a write (it may be locked or full).
RETRY: Sequence[float] = (1, 2, 5, 10, 30, 60)
MONITOR_PREFIX = "golive-monitor-"


class Timers:
    """APScheduler jobs derived from SQLite after every change: one date job at the earliest
    stored deadline, and one interval job per monitored release (ticks never overlap)."""

    def __init__(self, deadlines: Deadlines, clock: Clock, monitor: Monitor | None = None) -> None:
        self.deadlines = deadlines
        self.clock = clock
        self.monitor = monitor
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        self._retry = Backoff(RETRY)  # on the injected clock, after a failure

    def start(self) -> None:
        """Start the scheduler; must be called inside the running event loop."""
        self.scheduler.start()
        self.sync()

    @property
    def running(self) -> bool:
        """True while the scheduler runs."""
        return bool(self.scheduler.running)

    def sync(self) -> None:
        """(Re)schedule the timer job and the monitoring jobs from the database."""
        if not self.scheduler.running:
            return
        self._sync_monitoring()
        due = self.deadlines.next_due()
        if due is None:
            if self.scheduler.get_job(TIMERS_JOB):
                self.scheduler.remove_job(TIMERS_JOB)
            return
        if self._retry.until is not None:
            due = max(due, self._retry.until)
        # The injected clock decides what is due; APScheduler only wakes us at about that time.
        lag = (due - self.clock.now()).total_seconds()
        run_at = datetime.now(UTC).timestamp() + max(lag, 0.0)
        self.scheduler.add_job(
            self._fire,
            "date",
            run_date=datetime.fromtimestamp(run_at, UTC),
            id=TIMERS_JOB,
            replace_existing=True,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=None,
        )

    def _sync_monitoring(self) -> None:
        periods = self.monitor.periods() if self.monitor is not None else {}
        for job in self.scheduler.get_jobs():
            if (
                job.id.startswith(MONITOR_PREFIX)
                and int(job.id[len(MONITOR_PREFIX) :]) not in periods
            ):
                job.remove()
        for release_id, (_, interval) in periods.items():
            job_id = f"{MONITOR_PREFIX}{release_id}"
            job = self.scheduler.get_job(job_id)
            if job is not None and job.trigger.interval.total_seconds() == interval:
                continue  # keep its rhythm: rescheduling on every change would delay ticks
            self.scheduler.add_job(
                self._tick,
                "interval",
                seconds=interval,
                args=[release_id],
                id=job_id,
                replace_existing=True,
                coalesce=True,
                max_instances=1,
                misfire_grace_time=max(int(interval), 1),
                next_run_time=datetime.now(UTC),
            )

    async def _tick(self, release_id: int) -> None:
        if self.monitor is None:
            return
        try:
            await self.monitor.tick(release_id)
        except asyncio.CancelledError:
            # Shutting down mid-tick: nothing was committed, the next process ticks again.
            log.info("monitoring tick for release %s stopped by shutdown", release_id)
            return
        except Exception:
            log.exception("monitoring tick for release %s failed", release_id)
        self.sync()

    def monitoring_jobs(self) -> dict[int, float]:
        """release id → tick interval of the monitoring jobs now scheduled."""
        return {
            int(job.id[len(MONITOR_PREFIX) :]): job.trigger.interval.total_seconds()
            for job in self.scheduler.get_jobs()
            if job.id.startswith(MONITOR_PREFIX)
        }

    async def fire(self) -> int:
        """Fire what is due (on the database's writer); after a failure, back off before the
        next try instead of firing again at once. Returns how many fired."""
        try:
            fired = await self.deadlines.store.writes.run(self.deadlines.fire_due)
        except Exception:
            delay = self._retry.fail(self.clock.now())
            log.exception("firing timers failed; trying again in %s s", delay)
            return 0
        self._retry.reset()
        return fired

    async def _fire(self) -> None:
        await self.fire()
        self.sync()

    def next_run(self) -> datetime | None:
        """When the timer job will next run (for /healthz and tests)."""
        job = self.scheduler.get_job(TIMERS_JOB)
        return job.next_run_time if job else None

    def shutdown(self) -> None:
        """Stop the scheduler without waiting for running jobs."""
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
