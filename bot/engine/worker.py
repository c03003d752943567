"""A background loop that does a pass of work when woken, and again when its wait runs out."""

from __future__ import annotations

import asyncio
import contextlib
import logging

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
