"""Work derived from the database: one asyncio task per key that should be running.

The check runner and the action runner both keep their work this way: what should run is read
from SQLite every time (`wanted`), a task is started for each key that has none, and a task
forgets its key when it ends. A restart therefore starts exactly the work that was running.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from bot.domain.model import ReleaseStatus, StepStatus
from bot.store import Store

K = TypeVar("K")
StepKey = tuple[int, str, int]  # (release, step, attempt)


def steps_in(store: Store, status: StepStatus) -> list[StepKey]:
    """(release, step, attempt) of every step of an active release in `status`."""
    keys: list[StepKey] = []
    for rid in store.release_ids(statuses=(ReleaseStatus.ACTIVE.value,)):
        release = store.load(rid).release
        keys.extend((rid, s.key, s.attempt) for s in release.steps if s.status is status)
    return keys


class KeyedTasks(Generic[K]):
    """A task per wanted key, started once, forgotten when it ends."""

    def __init__(self, wanted: Callable[[], list[K]], run: Callable[[K], Awaitable[None]]) -> None:
        self._wanted = wanted
        self._run = run
        self._inflight: dict[K, asyncio.Task[None]] = {}

    def kick(self) -> None:
        """Start a task for every wanted key that has none."""
        loop = asyncio.get_running_loop()
        for key in self._wanted():
            if key not in self._inflight:
                self._inflight[key] = loop.create_task(self._guarded(key))

    async def _guarded(self, key: K) -> None:
        try:
            await self._run(key)
        finally:
            self._inflight.pop(key, None)

    async def settle(self) -> None:
        """Run until no key is wanted any more (tests and the console use this)."""
        while True:
            self.kick()
            if not self._inflight:
                return
            await asyncio.gather(*list(self._inflight.values()), return_exceptions=True)

    async def cancel(self) -> None:
        """Cancel every running task and wait for them to end."""
        for task in list(self._inflight.values()):
            task.cancel()
        await asyncio.gather(*list(self._inflight.values()), return_exceptions=True)
