"""A background loop that does a pass of work when woken, and again when its wait runs out."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

log = logging.getLogger(__name__)


class Worker:
    """Subclasses say what one pass does (`work`) and how long to wait before the next one."""

    what = "background work"

    def __init__(self) -> None:
        self._wake = asyncio.Event()
        self._stopped = False

    def wake(self) -> None:
        """Something changed: do a pass soon."""
        self._wake.set()

    def stop(self) -> None:
        """End the loop after the current pass."""
        self._stopped = True
        self._wake.set()

    async def work(self) -> None:
        """One pass."""
        raise NotImplementedError

    def next_wait(self) -> float | None:
        """Seconds until the next pass without a wake-up (None: only when woken)."""
        return None

    async def run(self) -> None:
        """Pass after pass until stopped; a failing pass is logged and retried."""
        while not self._stopped:
            self._wake.clear()
            try:
                await self.work()
            except Exception:
                log.exception("%s failed; will retry", self.what)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.next_wait())


class Backoff:
    """Growing pauses after consecutive failures (the last delay repeats), on an injected clock."""

    def __init__(self, delays: Sequence[float]) -> None:
        self.delays = delays
        self.failures = 0
        self.until: datetime | None = None

    def fail(self, now: datetime) -> float:
        """One more failure: how many seconds to pause (also kept in `until`)."""
        self.failures += 1
        delay = self.delays[min(self.failures, len(self.delays)) - 1]
        self.until = now + timedelta(seconds=delay)
        return delay

    def reset(self) -> None:
        """It worked: the next failure starts from the first delay again."""
        self.failures, self.until = 0, None

    def holding(self, now: datetime) -> bool:
        """True while a pause is still running."""
        return self.until is not None and now < self.until

    def wait(self, now: datetime, most: float = 60.0) -> float | None:
        """Seconds until the pause ends (at least 0.05, at most `most`); None without one."""
        if self.until is None:
            return None
        return min(max((self.until - now).total_seconds(), 0.05), most)
