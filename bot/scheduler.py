"""Timed work with APScheduler, derived from deadlines stored in SQLite, not kept in memory."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.service import ReleaseService

log = logging.getLogger(__name__)

TIMERS_JOB = "golive-timers"


class Timers:
    """One APScheduler date job at the earliest stored deadline; re-derived after every change."""

    def __init__(self, service: ReleaseService) -> None:
        self.service = service
        self.scheduler = AsyncIOScheduler(timezone=UTC)

    def start(self) -> None:
        """Start the scheduler; must be called inside the running event loop."""
        self.scheduler.start()
        self.sync()

    @property
    def running(self) -> bool:
        """True while the scheduler runs."""
        return bool(self.scheduler.running)

    def sync(self) -> None:
        """(Re)schedule the timer job for the earliest deadline in the database."""
        if not self.scheduler.running:
            return
        due = self.service.next_due()
        if due is None:
            if self.scheduler.get_job(TIMERS_JOB):
                self.scheduler.remove_job(TIMERS_JOB)
            return
        # The service's clock decides what is due; APScheduler only wakes us at about that time.
        lag = (due - self.service.clock.now()).total_seconds()
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

    async def _fire(self) -> None:
        try:
            self.service.fire_due()
        except Exception:
            log.exception("firing timers failed")
        self.sync()

    def next_run(self) -> datetime | None:
        """When the timer job will next run (for /healthz and tests)."""
        job = self.scheduler.get_job(TIMERS_JOB)
        return job.next_run_time if job else None

    def shutdown(self) -> None:
        """Stop the scheduler without waiting for running jobs."""
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
