"""The check runner: an asyncio task for every check stage the database says is running.

Which checks should run is derived from the steps in `running`, so a restart runs again exactly
the checks that were running when it stopped; a result for an attempt that a retry replaced is
ignored by the runbook.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import httpx

from bot.domain.clock import Clock
from bot.domain.config import Config, Secrets
from bot.domain.errors import GoliveError
from bot.domain.model import StepStatus
from bot.engine.checkbook import CheckBook, CheckContext
from bot.engine.tasks import KeyedTasks, StepKey, steps_in
from bot.store import Store
from checks.base import CheckResult, Status, run_checks

log = logging.getLogger(__name__)

CheckKey = StepKey
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
        self._tasks: KeyedTasks[CheckKey] = KeyedTasks(self.running, self._run)

    def running(self) -> list[CheckKey]:
        """(release, step, attempt) of every check stage that should be running now."""
        return steps_in(self.store, StepStatus.RUNNING)

    def kick(self) -> None:
        """Start a task for every check stage that should run and is not running yet."""
        self._tasks.kick()

    async def _run(self, key: CheckKey) -> None:
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
                progress=lambda text: self._progress(rid, step_key, text),
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
            self._finish(rid, step_key, attempt, results)
        except Exception:
            log.exception("check %s of release %s crashed", step_key, rid)
            self._finish(
                rid,
                step_key,
                attempt,
                [CheckResult(step_key, Status.ERROR, "the check crashed inside golive (logged)")],
            )

    async def settle(self) -> None:
        """Run checks until none is left to run (tests and the console use this)."""
        await self._tasks.settle()

    async def close(self) -> None:
        """Cancel running checks and close the HTTP client."""
        await self._tasks.cancel()
        await self.client.aclose()
