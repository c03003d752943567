"""The check runner: an asyncio task for every check stage the database says is running.

Which checks should run is derived from the steps in `running`, so a restart runs again exactly
the checks that were running when it stopped; a result for an attempt that a retry replaced is
ignored by the runbook.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

import httpx

from bot.domain.clock import Clock
from bot.domain.config import Config, Secrets
from bot.domain.errors import GoliveError
from bot.domain.model import StepStatus
from bot.engine.checkbook import CheckBook, CheckContext
from bot.engine.tasks import KeyedTasks, StepKey, steps_in
from bot.engine.worker import Backoff
from bot.store import Store
from checks.base import CheckResult, Status, run_checks

log = logging.getLogger(__name__)

# Seconds between tries to record a verdict while the database refuses writes.
RECORD_RETRY: Sequence[float] = (0.5, 1, 2, 5, 10, 30, 60)
Finish = Callable[[int, str, int, list[CheckResult]], None]
Progress = Callable[[int, str, str], None]
ResultsOf = Callable[[int, str], list[CheckResult]]


class CheckRunner:
    """Runs check stages as tasks and hands their verdicts back to the service."""

    def __init__(
        self,
        config: Config,
        store: Store,
        clock: Clock,
        checkbook: CheckBook,
        secrets: Secrets,
        client: httpx.AsyncClient,
        *,
        finish: Finish,
        progress: Progress,
        results_of: ResultsOf,
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.checkbook = checkbook
        self.secrets = secrets
        self.client = client
        self._finish = finish
        self._progress = progress
        self._results_of = results_of
        self._tasks: KeyedTasks[StepKey] = KeyedTasks(self.running, self._run)
        self._notes: set[asyncio.Task[None]] = set()

    def running(self) -> list[StepKey]:
        """(release, step, attempt) of every check stage that should be running now."""
        return steps_in(self.store, StepStatus.RUNNING)

    def kick(self) -> None:
        """Start a task for every check stage that should run and is not running yet."""
        self._tasks.kick()

    async def _run(self, key: StepKey) -> None:
        rid, step_key, attempt = key
        try:
            record = self.store.load(rid)
            step = record.release.step(step_key)
            if step.status is not StepStatus.RUNNING or step.attempt != attempt:
                return
            name = step.current.check or step.key
            ctx = CheckContext(
                self.config,
                self.secrets,
                self.client,
                self.clock,
                record.release,
                step,
                progress=lambda text: self._note(rid, step_key, text),
                last_completed=self.store.last_completed_versions(before=rid),
                results_of=lambda key: self._results_of(rid, key),
            )
            try:
                checks = self.checkbook.build(name, ctx)
            except GoliveError as exc:  # e.g. a secret missing from the environment
                checks = []
                results = [CheckResult(name, Status.ERROR, f"{name} cannot run: {exc.message}")]
            else:
                results = [CheckResult(name, Status.ERROR, f"no check could be built for {name}")]
            if checks:
                results = await run_checks(checks)
        except Exception:
            log.exception("check %s of release %s crashed", step_key, rid)
            results = [
                CheckResult(step_key, Status.ERROR, "the check crashed inside golive (logged)")
            ]
        await self._record(rid, step_key, attempt, results)

    async def _record(
        self, rid: int, step_key: str, attempt: int, results: list[CheckResult]
    ) -> None:
        """Hand the verdicts to the service on the database's writer; while the database refuses
        writes (locked, full), keep them and try again with backoff rather than lose them."""
        retry = Backoff(RECORD_RETRY)
        while True:
            try:
                await self.store.writes.run(lambda: self._finish(rid, step_key, attempt, results))
                return
            except Exception:
                delay = retry.fail(self.clock.now())
                log.exception(
                    "recording check %s of release %s failed; retrying in %s s",
                    step_key,
                    rid,
                    delay,
                )
                await asyncio.sleep(delay)

    def _note(self, rid: int, step_key: str, text: str) -> None:
        """A running check's progress, written in order with everything else on the writer."""
        task = asyncio.get_running_loop().create_task(self._write_note(rid, step_key, text))
        self._notes.add(task)
        task.add_done_callback(self._notes.discard)

    async def _write_note(self, rid: int, step_key: str, text: str) -> None:
        try:
            await self.store.writes.run(lambda: self._progress(rid, step_key, text))
        except Exception:
            log.exception("could not record the progress of check %s (dropped)", step_key)

    async def settle(self) -> None:
        """Run checks until none is left to run, their progress notes written (tests and the
        console use this)."""
        await self._tasks.settle()
        await asyncio.gather(*list(self._notes), return_exceptions=True)

    async def close(self) -> None:
        """Cancel running checks and close the HTTP client."""
        for task in list(self._notes):
            task.cancel()
        await self._tasks.cancel()
        await asyncio.gather(*list(self._notes), return_exceptions=True)
        await self.client.aclose()
