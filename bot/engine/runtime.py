"""One running golive: store, service, check runner, outbox delivery and timers on one loop."""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path
from typing import Any

import httpx

from bot.domain.clock import Clock, SystemClock
from bot.domain.config import Config, Secrets, deprecations
from bot.domain.model import ReleaseStatus
from bot.domain.people import People
from bot.engine.actions import Sleep
from bot.engine.checkbook import CheckBook, default_checkbook, notes_in_github
from bot.engine.deadlines import Deadlines
from bot.engine.freeze import PACE as GATE_PACE
from bot.engine.freeze import FreezeEnforcer
from bot.engine.home import HOME_KIND, HomeViews, Links
from bot.engine.monitor import Monitor
from bot.engine.outbox import Outbox, Transport, chained
from bot.engine.pager import PAGE_KIND, PagerTransport
from bot.engine.records import Drawings
from bot.engine.scheduler import Timers
from bot.engine.secrecy import redactor_for
from bot.engine.service import ReleaseService
from bot.engine.writeback import WRITE_BACK_KIND, ReleaseNotesTransport
from bot.store import Store
from bot.store.writer import reason

SCHEDULED, ACTIVE = ReleaseStatus.SCHEDULED.value, ReleaseStatus.ACTIVE.value
HEALTH_BUDGET = 1.0  # seconds /healthz waits for its write probe before calling the database stuck

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
        database: str | Path | None = None,
        checkbook: CheckBook | None = None,
        client: httpx.AsyncClient | None = None,
        pace: float = 0.0,
        sleep: Sleep = asyncio.sleep,
        gate_pace: float = GATE_PACE,
        threaded: bool = False,
        people: People | None = None,
        app_home: bool = False,
    ) -> None:
        """`pace`: the least seconds between two posts to one channel (Slack's ~1/s).
        `sleep`: how step actions wait between reads of a run (tests move a fake clock in it).
        `threaded`: database writes on their own thread, so the loop never waits for a lock
        (the server); without it everything runs on the loop (the console, the demo, tests).
        `people`: the directory role holders are checked against (Slack's in `golive serve`,
        the config's people otherwise). `app_home`: keep people's App Home tabs published
        (Slack), through an outbox of their own."""
        self.config = config
        for warning in deprecations(config):
            log.warning("config: %s", warning)
        self.clock = clock or SystemClock()
        self.store = Store(
            config.database if database is None else database,
            redactor=redactor_for(config, secrets),
            threaded=threaded,
        )
        self.client = client or httpx.AsyncClient(timeout=10.0)
        self.service = ReleaseService(
            config,
            self.store,
            self.clock,
            checkbook or default_checkbook(),
            secrets,
            self.client,
            sleep,
            people=people,
            app_home=app_home,
        )
        self.drawings = Drawings(self.store, config)
        self.outbox = Outbox(
            self.store,
            transport,
            self.clock,
            skip=frozenset({PAGE_KIND, WRITE_BACK_KIND, HOME_KIND}),
            pace=pace,
            prepare=chained(self.drawings.prepare, Links(self.store).prepare),
            notices=self._notice_channels,
        )
        # App Home views go on their own: a slow views.publish never holds the channels back.
        self.homes = Outbox(
            self.store,
            transport,
            self.clock,
            only=frozenset({HOME_KIND}),
            prepare=HomeViews(self.store, config, self.clock).prepare,
        )
        self.pager = self._pager(config, secrets)
        self.notes_writer = self._notes_writer(config, secrets)
        self.monitor = Monitor(self.service, self.client)
        self.deadlines = Deadlines(
            self.store,
            self.clock,
            self.service.apply,
            self.monitor.open_breaches,
            self.monitor.soak_evidence,
            config.reminders,
        )
        self.timers = Timers(self.deadlines, self.clock, self.monitor)
        self.freeze = FreezeEnforcer(self.service, self.client, pace=gate_pace)
        self._tasks: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self.service.on_change(self._changed)

    def _pager(self, config: Config, secrets: Secrets) -> Outbox | None:
        """The PagerDuty events outbox, when events are configured and the key is set."""
        mon = config.monitoring
        key = secrets.get(mon.pagerduty_routing_key_env)
        if not mon.pagerduty_events_url or key is None:
            return None
        transport = PagerTransport(self.client, mon.pagerduty_events_url, key)
        return Outbox(self.store, transport, self.clock, only=frozenset({PAGE_KIND}))

    def _notes_writer(self, config: Config, secrets: Secrets) -> Outbox | None:
        """The outbox writing golive's section into the GitHub release's notes, when they are
        a GitHub release and the token is set."""
        ci = config.preconditions.ci
        token = secrets.get(ci.token_env) if ci is not None else None
        if ci is None or token is None or not notes_in_github(config):
            return None
        transport = ReleaseNotesTransport(self.client, ci.github_url, ci.repository, token)
        return Outbox(self.store, transport, self.clock, only=frozenset({WRITE_BACK_KIND}))

    @property
    def outboxes(self) -> list[Outbox]:
        """Every outbox: chat messages, App Home views, and PagerDuty events and the release
        notes' write-back where configured."""
        extra = [o for o in (self.pager, self.notes_writer) if o is not None]
        return [self.outbox, self.homes, *extra]

    def _outboxes(self) -> list[Outbox]:
        return self.outboxes

    def _notice_channels(self) -> list[str]:
        """Where golive says that it cannot write: the channels of open releases."""
        try:
            ids = self.store.release_ids(statuses=(SCHEDULED, ACTIVE))
            channels = [self.store.load(rid).release.channel for rid in ids]
        except Exception:  # the database may not answer reads either
            channels = list(self.config.slack.release_channels)
        return list(dict.fromkeys(channels))

    def _changed(self) -> None:
        if self._loop is not None and threading.get_ident() != self._loop_thread:
            # Committed on the writer thread: wake the workers on the loop that owns them.
            self._loop.call_soon_threadsafe(self._changed)
            return
        for outbox in self._outboxes():
            outbox.wake()
        self.freeze.wake()
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return
        self.service.checks.kick()
        self.service.actions.kick()
        self.timers.sync()

    async def start(self) -> None:
        """Resume from the database: deliver what is queued, rerun checks, re-arm timers."""
        loop = asyncio.get_running_loop()
        self._loop, self._loop_thread = loop, threading.get_ident()
        self._tasks = [loop.create_task(o.run()) for o in self._outboxes()]
        self._tasks.append(loop.create_task(self.freeze.run()))
        self.timers.start()
        await self.timers.fire()
        self.service.checks.kick()
        self.service.actions.kick()

    async def stop(self) -> None:
        """Stop background work and close connections (state is already in SQLite)."""
        self.timers.shutdown()
        for outbox in self._outboxes():
            outbox.stop()
        self.freeze.stop()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.service.close()
        self.drawings.close()
        self.store.close()

    async def pump(self) -> None:
        """Fire due timers, run checks and deliver messages until nothing is left to do now."""
        while True:
            fired = await self.store.writes.run(self.deadlines.fire_due)
            await self.service.checks.settle()
            await self.service.actions.settle()
            await self.freeze.settle()
            delivered = 0
            for outbox in self._outboxes():
                delivered += await outbox.flush()
            busy = self.service.checks.running() or self.service.actions.running()
            if not fired and not delivered and not busy:
                return

    async def health(self) -> dict[str, Any]:
        """Database (a real write), scheduler and delivery state for /healthz."""
        try:
            await asyncio.wait_for(
                self.store.writes.run(lambda: self.store.heartbeat(self.clock.now()), urgent=True),
                HEALTH_BUDGET,
            )
            database = "ok"
        except TimeoutError:
            database = "error: no write finished within a second (is the database locked?)"
        except Exception as exc:  # report, never raise, from a health probe
            database = f"error: {reason(exc)}"
        next_run = self.timers.next_run()
        try:
            schema: list[str] | str = self.store.schema_version()
            pending: int | str = self.outbox.pending()
        except Exception as exc:
            schema = pending = f"error: {reason(exc)}"
        return {
            "database": database,
            "schema": schema,
            "scheduler": "running" if self.timers.running else "stopped",
            "next_timer": next_run.isoformat() if next_run else None,
            "outbox_pending": pending,
            "delivery": self.outbox.state(),
            "writes_queued": self.store.writes.queued,
        }
