"""One running golive: store, service, check runner, outbox delivery and timers on one loop."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx

from bot.checkbook import CheckBook, default_checkbook
from bot.clock import Clock, SystemClock
from bot.config import Config, Secrets
from bot.freeze import FreezeEnforcer
from bot.outbox import Outbox, Transport
from bot.scheduler import Timers
from bot.service import ReleaseService
from bot.store import Store

log = logging.getLogger(__name__)


class Runtime:
    """Wires the engine together; adapters (Slack, console) talk to `service`."""

    def __init__(
        self,
        config: Config,
        secrets: Secrets,
        transport: Transport,
        *,
        clock: Clock | None = None,
        store: Store | None = None,
        checkbook: CheckBook | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self.store = store or Store(config.database)
        self.service = ReleaseService(
            config, self.store, self.clock, checkbook or default_checkbook(), secrets, client
        )
        self.outbox = Outbox(self.store, transport, self.clock)
        self.timers = Timers(self.service)
        self.freeze = FreezeEnforcer(config, self.store, secrets, self.service.client, self.clock)
        self._tasks: list[asyncio.Task[None]] = []
        self.service.on_change(self._changed)

    def _changed(self) -> None:
        self.outbox.wake()
        self.freeze.wake()
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return
        self.service.kick()
        self.timers.sync()

    async def start(self) -> None:
        """Resume from the database: deliver what is queued, rerun checks, re-arm timers."""
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self.outbox.run()), loop.create_task(self.freeze.run())]
        self.timers.start()
        self.service.fire_due()
        self.service.kick()

    async def stop(self) -> None:
        """Stop background work and close connections (state is already in SQLite)."""
        self.timers.shutdown()
        self.outbox.stop()
        self.freeze.stop()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.service.close()
        self.store.close()

    async def pump(self) -> None:
        """Fire due timers, run checks and deliver messages until nothing is left to do now."""
        while True:
            fired = self.service.fire_due()
            await self.service.settle()
            if self.freeze.enabled and self.freeze.busy():
                await self.freeze.sync()
            delivered = await self.outbox.flush()
            if not fired and not delivered and not self.service.running_checks():
                return

    def health(self) -> dict[str, Any]:
        """Database and scheduler state for /healthz."""
        try:
            self.store.db.execute("select 1").fetchone()
            database = "ok"
        except Exception as exc:  # report, never raise, from a health probe
            database = f"error: {type(exc).__name__}"
        next_run = self.timers.next_run()
        return {
            "database": database,
            "schema": self.store.schema_version(),
            "scheduler": "running" if self.timers.running else "stopped",
            "next_timer": next_run.isoformat() if next_run else None,
            "outbox_pending": self.outbox.pending(),
        }
