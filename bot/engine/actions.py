"""The action runner: a task for every step action the database says is running, and for every
confirmed rollback that still has services to roll back.

Like the check runner, what should run is derived from the database (steps `acting`, rollback
runs not finished), so a restart picks up exactly where it stopped. Each run is recorded before
golive asks the provider to start it (`dispatching`) and again with the provider's run id as soon
as it is known (`running`): a restart follows the same run and never starts a second one. A run
a crash caught between asking and recording is looked for where the provider allows it (GitHub,
by the run's `golive_run` mark), and otherwise fails with a sentence saying so.
"""

from __future__ import annotations

import asyncio
import logging
import secrets as token_source
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import TypeVar

import httpx

from bot.domain.clock import Clock
from bot.domain.config import (
    RUN_INPUT,
    ArgoCDSyncAction,
    Config,
    GitHubWorkflowAction,
    Secrets,
    StepAction,
    fill_template,
    fill_templates,
)
from bot.domain.errors import GoliveError
from bot.domain.model import Release, StepStatus
from bot.domain.records import ActionRun
from bot.engine.tasks import KeyedTasks, StepKey, steps_in
from bot.engine.worker import Backoff
from bot.store import Store
from bot.store.writer import unwritable
from checks.actions import ArgoSyncDriver, Driver, Polled, Started, WebhookDriver, WorkflowDriver
from checks.base import CheckResult, Status
from checks.http import ProviderError, RateLimited
from checks.rollback import targets_from

log = logging.getLogger(__name__)

ROLLBACK = "rollback"
STARTED = "started"  # the detail of a run the provider has just started
# How long a restart looks for a run it may have started just before it stopped.
LOST_RUN_WINDOW = timedelta(minutes=2)
MAX_READ_ERRORS = 5
# Seconds between tries to record a run while the database refuses writes.
RECORD_RETRY: Sequence[float] = (0.5, 1, 2, 5, 10, 30, 60)
T = TypeVar("T")  # consecutive failed reads of a run before golive says it lost sight of it
ActionKey = StepKey
Sleep = Callable[[float], Awaitable[None]]
Finish = Callable[[int, str, int, list[CheckResult]], None]
Moved = Callable[[ActionRun], None]
RollbackDone = Callable[[int], None]


def run_name(step_key: str, target: str) -> str:
    """The name a run's verdict goes by: `deploy:billing-api`, `rollback:web-portal`, `backup`."""
    if not target:
        return step_key
    verb = step_key if step_key in ("migrations", ROLLBACK) else "deploy"
    return f"{verb}:{target}"


def template_values(
    config: Config, release: Release, target: str, rollback_tags: dict[str, str]
) -> dict[str, str]:
    """What `{version}`, `{service}`, `{wave}`, `{image}`, `{rollback_tag}` and `{release_id}`
    stand for in one run."""
    service = config.service(target) if target else None
    wave = str(service.deploy_wave) if service is not None and service.tier == "backend" else ""
    return {
        "version": release.version,
        "release_id": str(release.id),
        "service": target,
        "wave": wave,
        "image": (service.image or "") if service is not None else "",
        "rollback_tag": rollback_tags.get(target, ""),
    }


class ActionRunner:
    """Starts and follows step actions and rollbacks; hands their outcomes to the service."""

    def __init__(
        self,
        config: Config,
        store: Store,
        clock: Clock,
        secrets: Secrets,
        client: httpx.AsyncClient,
        *,
        finish: Finish,
        moved: Moved,
        rollback_done: RollbackDone,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.secrets = secrets
        self.client = client
        self._finish = finish
        self._moved = moved
        self._rollback_done = rollback_done
        self._sleep = sleep
        self._tasks: KeyedTasks[ActionKey] = KeyedTasks(self.running, self._run)

    # -- what should run -----------------------------------------------------------------------

    def running(self) -> list[ActionKey]:
        """(release, step, attempt) of every action that should be running now (a confirmed
        rollback is (release, "rollback", 1))."""
        keys = steps_in(self.store, StepStatus.ACTING)
        keys.extend((rid, ROLLBACK, 1) for rid in self.store.unfinished_rollbacks())
        return keys

    def kick(self) -> None:
        """Start a task for every action that should run and is not running yet."""
        self._tasks.kick()

    async def settle(self) -> None:
        """Run actions until none is left to run (tests and the console use this)."""
        await self._tasks.settle()

    async def close(self) -> None:
        """Stop following runs (they go on at the provider; a restart follows them again)."""
        await self._tasks.cancel()

    async def _run(self, key: ActionKey) -> None:
        rid, step_key, attempt = key
        try:
            if step_key == ROLLBACK:
                await self._rollback(rid)
            else:
                await self._step(rid, step_key, attempt)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("the %s action of release %s crashed", step_key, rid)
            if step_key != ROLLBACK:
                crashed = CheckResult(
                    step_key, Status.ERROR, "the action crashed inside golive (logged)"
                )
                await self._write(lambda: self._finish(rid, step_key, attempt, [crashed]))

    # -- a step's action -----------------------------------------------------------------------

    async def _step(self, rid: int, step_key: str, attempt: int) -> None:
        release = self.store.load(rid).release
        step = release.step(step_key)
        if step.status is not StepStatus.ACTING or step.attempt != attempt:
            return
        action = self.config.action(step_key)
        if action is None:
            missing = CheckResult(
                step_key,
                Status.ERROR,
                f"no action is configured for {step_key} any more (actions.{step_key})",
            )
            await self._write(lambda: self._finish(rid, step_key, attempt, [missing]))
            return
        targets = step.current.services or ("",)
        runs = await self._write(lambda: self._runs(rid, step_key, attempt, targets, action.kind))
        tags: dict[str, str] = {}
        results = await asyncio.gather(
            *(
                self._follow(run, action, template_values(self.config, release, run.target, tags))
                for run in runs
            )
        )
        await self._write(lambda: self._finish(rid, step_key, attempt, list(results)))

    def _runs(
        self, rid: int, step_key: str, attempt: int, targets: tuple[str, ...], kind: str
    ) -> list[ActionRun]:
        """The runs of one attempt, recorded (pending) the first time they are needed."""
        existing = {r.target: r for r in self.store.action_runs(rid, step_key, attempt)}
        missing = [t for t in targets if t not in existing]
        if missing:
            now = self.clock.now()
            with self.store.transaction():
                for seq, target in enumerate(targets):
                    if target in missing:
                        self.store.add_action_run(
                            rid, step_key, attempt, seq, target, kind, new_token(), now
                        )
        return self.store.action_runs(rid, step_key, attempt)

    # -- a confirmed rollback ------------------------------------------------------------------

    async def _rollback(self, rid: int) -> None:
        """Group by group (the last wave first); a failed group stops the ones after it."""
        release = self.store.load(rid).release
        action = self.config.action(ROLLBACK)
        tags = targets_from([r.evidence for r in self.store.check_results(rid, "rollback")])
        runs = self.store.action_runs(rid, ROLLBACK)
        failed = False
        for seq in sorted({r.seq for r in runs}):
            group = [r for r in runs if r.seq == seq]
            if failed or action is None:
                for run in group:
                    if not run.finished:
                        why = (
                            "not configured any more" if action is None else "an earlier one failed"
                        )
                        await self._set(run, "skipped", detail=f"not rolled back: {why}")
                continue
            outcomes = await asyncio.gather(
                *(
                    self._follow(
                        run, action, template_values(self.config, release, run.target, tags)
                    )
                    for run in group
                )
            )
            failed = any(not o.status.ok for o in outcomes)
        await self._write(lambda: self._rollback_done(rid))

    # -- one run -------------------------------------------------------------------------------

    async def _set(self, run: ActionRun, state: str, **fields: object) -> ActionRun:
        """Record a run's new state on the database's writer (and say so); the fresh record."""

        def write() -> ActionRun:
            now = self.clock.now()
            if state in ("succeeded", "failed", "skipped"):
                fields["finished_at"] = now
            with self.store.transaction():
                self.store.update_action_run(run.id, now, state=state, **fields)
            (fresh,) = [
                r
                for r in self.store.action_runs(run.release_id, run.step_key, run.attempt)
                if r.id == run.id
            ]
            if state != "dispatching":
                self._moved(fresh)
            return fresh

        return await self._write(write)

    async def _write(self, unit: Callable[[], T]) -> T:
        """Run a unit of work on the database's writer; while the database cannot be written
        (locked, full), keep it and try again with backoff: a run's record is never dropped."""
        retry = Backoff(RECORD_RETRY)
        while True:
            try:
                return await self.store.writes.run(unit)
            except Exception as exc:
                if not unwritable(exc):
                    raise
                delay = retry.fail(self.clock.now())
                log.warning("recording an action run failed (%s); retrying in %s s", exc, delay)
                await self._sleep(delay)

    def _driver(self, action: StepAction, values: dict[str, str]) -> Driver:
        spec = action.spec
        if isinstance(spec, GitHubWorkflowAction):
            api, repository, token_env = self.config.github_for(spec)
            return WorkflowDriver(
                self.client,
                api=api,
                repository=repository,
                token=self.secrets.require(token_env),
                workflow=spec.workflow,
                ref=fill_template(spec.ref, values),
                inputs=fill_templates(spec.inputs, values),
                run_input=RUN_INPUT,
            )
        if isinstance(spec, ArgoCDSyncAction):
            return ArgoSyncDriver(
                self.client,
                server=spec.server,
                app=spec.app,
                token=self.secrets.require(spec.token_env),
                revision=fill_template(spec.revision, values) if spec.revision else None,
                prune=spec.prune,
            )
        return WebhookDriver(
            self.client,
            url=fill_template(spec.url, values),
            token=self.secrets.require(spec.token_env) if spec.token_env else None,
            body=fill_templates(spec.body, values),
            poll_url=fill_template(spec.poll_url, values) if spec.poll_url else None,
        )

    async def _follow(
        self, run: ActionRun, action: StepAction, values: dict[str, str]
    ) -> CheckResult:
        """Start the run if it was never started, then follow it to its outcome."""
        name = run_name(run.step_key, run.target)
        if run.finished:
            return _verdict(name, run)
        if run.step_key == ROLLBACK and not values["rollback_tag"]:
            failed = await self._set(
                run,
                "failed",
                detail=f"no rollback target is recorded for {run.target}: roll it back by hand",
            )
            return _verdict(name, failed)
        try:
            driver = self._driver(action, values)
        except GoliveError as exc:  # a secret missing from the environment
            return _verdict(
                name, await self._set(run, "failed", detail=f"cannot start: {exc.message}")
            )
        timeout = action.spec.timeout
        poll = action.spec.poll_interval.total_seconds()
        errors = 0
        while not run.finished:
            try:
                run = await self._advance(run, driver, timeout)
                errors = 0
            except RateLimited as exc:
                await self._sleep(exc.wait_from(self.clock.now().timestamp(), 60.0))
                continue
            except ProviderError as exc:
                errors += 1
                if errors >= MAX_READ_ERRORS:
                    link = f": {run.url}" if run.url else ""
                    run = await self._set(
                        run,
                        "failed",
                        detail=f"golive lost sight of the run after {errors} failed reads "
                        f"({exc.message}); it may still be going{link}",
                    )
                    break
            if not run.finished:
                await self._sleep(poll)
        return _verdict(name, run)

    async def _advance(self, run: ActionRun, driver: Driver, timeout: timedelta) -> ActionRun:
        """One move: start, look for, or read the run; the updated record."""
        if run.state == "pending":
            run = await self._set(run, "dispatching", started_at=self.clock.now())
            try:
                started = await driver.start(run.token)
            except ProviderError as exc:  # refused or unanswered: never asked again by itself
                return await self._set(run, "failed", detail=f"could not start: {exc.message}")
            return await self._started(run, started)
        assert run.started_at is not None
        if run.state == "dispatching":  # a restart caught golive between asking and recording
            found = await driver.find(run.token, run.started_at) if driver.findable else None
            if found is not None:
                return await self._started(run, found)
            # A marked run may take a moment to be listed; an unmarked one is never found.
            looking = min(timeout, LOST_RUN_WINDOW)
            if driver.findable and self.clock.now() - run.started_at < looking:
                return run
            return await self._set(
                run,
                "failed",
                detail=f"golive stopped while asking {driver.provider} to start this run and "
                f"cannot tell whether it started; look there before retrying",
            )
        overdue = self.clock.now() - run.started_at > timeout
        if run.state == "dispatched":
            found = await driver.find(run.token, run.started_at)
            if found is not None:
                return await self._started(run, found)
            if overdue:
                return await self._set(
                    run,
                    "failed",
                    detail=f"{driver.provider} took the request, but no run marked "
                    f"{RUN_INPUT}={run.token} showed up within {_minutes(timeout)} (does the "
                    f"workflow's run-name show inputs.{RUN_INPUT}?)",
                )
            return run
        assert run.run_id is not None
        polled = await driver.poll(run.run_id)
        if polled.done:
            return await self._polled(run, polled)
        if overdue:
            link = f": {polled.url or run.url}" if (polled.url or run.url) else ""
            return await self._set(
                run,
                "failed",
                detail=f"did not finish within {_minutes(timeout)} ({polled.summary}); it may "
                f"still be going{link}",
            )
        if polled.summary != run.detail:
            run = await self._set(run, "running", detail=polled.summary, url=polled.url or run.url)
        return run

    async def _started(self, run: ActionRun, started: Started) -> ActionRun:
        state = "running" if started.run_id is not None else "dispatched"
        return await self._set(
            run,
            state,
            run_id=started.run_id,
            url=started.url,
            evidence={**run.evidence, **started.evidence},
            detail=STARTED if started.run_id is not None else "waiting for the run to appear",
        )

    async def _polled(self, run: ActionRun, polled: Polled) -> ActionRun:
        return await self._set(
            run,
            "succeeded" if polled.ok else "failed",
            detail=polled.summary,
            url=polled.url or run.url,
            evidence={**run.evidence, **polled.evidence},
        )


def new_token() -> str:
    """A mark that tells golive's run apart from everyone else's."""
    return f"golive-{token_source.token_hex(6)}"


def _minutes(value: timedelta) -> str:
    seconds = value.total_seconds()
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"


def _verdict(name: str, run: ActionRun) -> CheckResult:
    """A finished run as a verdict: its outcome, what happened, and the link to it."""
    link = f" — {run.url}" if run.url else ""
    evidence = {**run.evidence, "target": run.target, "run_id": run.run_id, "url": run.url}
    if run.state == "succeeded":
        return CheckResult(name, Status.PASS, f"{run.detail}{link}", evidence)
    status = Status.FAIL if run.state == "failed" and run.run_id else Status.ERROR
    detail = run.detail or "did not run"
    return CheckResult(
        name, status, f"{detail}{link if run.url and run.url not in detail else ''}", evidence
    )
