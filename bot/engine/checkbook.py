"""Which automated checks exist, whether each is configured, and how to build them for a step."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import httpx

from bot.domain.clock import Clock
from bot.domain.config import Config, Secrets
from bot.domain.model import Release, Step
from bot.domain.records import CheckRow
from bot.engine.secrecy import redactor_for
from checks.base import Check, CheckResult, Status
from checks.ci import check_ci
from checks.github_release import check_github_release
from checks.health import Expectation, check_health
from checks.incidents import check_incidents
from checks.judgment import finance_operations, rbac_summary
from checks.monitoring import Settings, baseline_in, capture_baseline, judge_window
from checks.preflight import preflight_environment, run_preflight
from checks.registry import Credentials, RegistryClient
from checks.release_notes import check_release_notes
from checks.rollback import check_rollback_target
from checks.verification import verify_money_paths


def _no_progress(text: str) -> None:
    return None


def stored_results(rows: Iterable[CheckRow]) -> list[CheckResult]:
    """Stored check verdicts as the checks' own results."""
    return [CheckResult(r.name, Status(r.status), r.summary, r.evidence, r.duration) for r in rows]


@dataclass(frozen=True)
class CheckContext:
    """Everything a check factory may use."""

    config: Config
    secrets: Secrets
    client: httpx.AsyncClient
    clock: Clock
    release: Release
    step: Step
    progress: Callable[[str], None] = _no_progress
    last_completed: Mapping[str, str] = field(default_factory=dict)
    results_of: Callable[[str], list[CheckResult]] = lambda key: []


Factory = Callable[[CheckContext], Sequence[Check]]
Available = Callable[[Config, tuple[str, ...]], bool]


# -- health ------------------------------------------------------------------------------------


def _health_available(config: Config, services: tuple[str, ...]) -> bool:
    found = [config.service(name) for name in services]
    return bool(found) and all(s is not None and s.health_url for s in found)


def _health_checks(ctx: CheckContext) -> list[Check]:
    checks = []
    for name in ctx.step.current.services:
        service = ctx.config.service(name)
        if service is None or service.health_url is None:
            continue
        url = service.health_url
        expect = Expectation(service.expect_status, service.expect_json, service.expect_text)

        async def run(n: str = name, u: str = url, e: Expectation = expect) -> CheckResult:
            return await check_health(ctx.client, n, u, expect=e)

        checks.append(Check(f"health:{name}", run, timeout=30.0))
    return checks


# -- preconditions -----------------------------------------------------------------------------


def _ci_checks(ctx: CheckContext) -> list[Check]:
    ci = ctx.config.preconditions.ci
    assert ci is not None
    token = ctx.secrets.require(ci.token_env)
    wait = ci.wait.total_seconds()

    async def run() -> list[CheckResult]:
        return await check_ci(
            ctx.client,
            base_url=ci.github_url,
            repository=ci.repository,
            ref=ci.ref,
            token=token,
            required=list(ci.required_checks),
            wait=wait,
            poll=ci.poll_interval.total_seconds(),
            progress=ctx.progress,
        )

    return [Check("ci", run, timeout=wait + 120.0)]


def _incident_checks(ctx: CheckContext) -> list[Check]:
    incidents = ctx.config.preconditions.incidents
    assert incidents is not None
    token = ctx.secrets.require(incidents.token_env)

    async def run() -> CheckResult:
        return await check_incidents(
            ctx.client,
            base_url=incidents.pagerduty_url,
            token=token,
            service_ids=list(incidents.service_ids),
        )

    return [Check("incidents", run, timeout=60.0)]


def notes_in_github(config: Config) -> bool:
    """True when the release notes are the GitHub release of the version (golive writes back)."""
    notes = config.preconditions.release_notes
    return notes is not None and notes.github_release and config.preconditions.ci is not None


def _notes_checks(ctx: CheckContext) -> list[Check]:
    notes = ctx.config.preconditions.release_notes
    assert notes is not None
    ci = ctx.config.preconditions.ci
    if notes.github_release and ci is not None:
        token = ctx.secrets.require(ci.token_env)

        async def published() -> CheckResult:
            return await check_github_release(
                ctx.client,
                base_url=ci.github_url,
                repository=ci.repository,
                version=ctx.release.version,
                token=token,
            )

        return [Check("release-notes", published, timeout=60.0)]
    assert notes.url is not None
    url = notes.url.replace("{version}", ctx.release.version)

    async def run() -> CheckResult:
        return await check_release_notes(ctx.client, url, ctx.release.version)

    return [Check("release-notes", run, timeout=30.0)]


def _rollback_checks(ctx: CheckContext) -> list[Check]:
    rollback = ctx.config.preconditions.rollback
    assert rollback is not None
    token = ctx.secrets.get(rollback.token_env) if rollback.token_env else None
    if rollback.token_env and token is None:
        ctx.secrets.require(rollback.token_env)
    credentials = None
    if rollback.username_env and rollback.password_env:
        credentials = Credentials(
            ctx.secrets.require(rollback.username_env), ctx.secrets.require(rollback.password_env)
        )
    registry = RegistryClient(
        ctx.client,
        rollback.registry_url,
        token=token,
        credentials=credentials,
        now=lambda: ctx.clock.now().timestamp(),
    )
    checks = []
    for name in ctx.step.current.services:
        service = ctx.config.service(name)

        async def run(
            n: str = name, image: str | None = service.image if service else None
        ) -> CheckResult:
            return await check_rollback_target(
                registry,
                service=n,
                image=image,
                release=ctx.release.version,
                last_completed=ctx.last_completed.get(n),
            )

        checks.append(Check(f"rollback:{name}", run, timeout=60.0))
    return checks


def _preflight_checks(ctx: CheckContext) -> list[Check]:
    preflight = ctx.config.preflight
    assert preflight is not None
    wants_full = ctx.step.variant == "full" or (ctx.release.major and ctx.step.variant != "quick")
    variant = "full" if wants_full and preflight.full else "quick"
    argv = preflight.full if variant == "full" and preflight.full else preflight.quick
    timeout = preflight.timeout.total_seconds()
    if wants_full and not preflight.full:
        ctx.progress("no full preflight is configured (preflight.full); running the quick one")

    env = preflight_environment(ctx.secrets.get, preflight.env)
    redactor = redactor_for(ctx.config, ctx.secrets)

    async def run() -> CheckResult:
        return await run_preflight(
            argv,
            workdir=preflight.workdir,
            timeout=timeout,
            variant=variant,
            env=env,
            redactor=redactor,
        )

    return [Check("preflight", run, timeout=timeout + 30.0)]


def _verification_checks(ctx: CheckContext) -> list[Check]:
    verification = ctx.config.verification
    assert verification is not None
    finance = ctx.secrets.require(verification.finance_token_env)
    limited = ctx.secrets.require(verification.limited_token_env)

    async def run() -> list[CheckResult]:
        return await verify_money_paths(
            ctx.client,
            base_url=verification.base_url,
            paths=verification.paths,
            finance_token=finance,
            limited_token=limited,
            today=ctx.clock.now().astimezone(ctx.config.tz).date(),
            label=ctx.release.version,
        )

    return [Check("verification", run, timeout=120.0)]


def monitoring_settings(config: Config) -> Settings | None:
    """The monitoring settings, or None when no Prometheus is configured."""
    mon = config.monitoring
    if mon.prometheus_url is None:
        return None
    return Settings(
        prometheus_url=mon.prometheus_url,
        requests_query=mon.requests_query,
        errors_query=mon.errors_query,
        latency_query=mon.latency_p95_query,
        slo_seconds=mon.slo_p95.total_seconds(),
        min_requests=mon.min_requests,
        min_increase=mon.min_error_increase,
        # One test per release replaces `significance`: the success criteria's one-shot test
        # runs at the same level as the monitoring's false-page budget.
        significance=mon.false_page_rate,
        bucket_query=mon.latency_bucket_query,
        tolerance=mon.tolerance,
        false_page_rate=mon.false_page_rate,
        min_conclusive=mon.min_conclusive,
        plan=monitoring_plan(config),
    )


def monitoring_plan(config: Config) -> tuple[tuple[int, float], ...]:
    """(ticks, seconds per tick) of the soak and of heightened monitoring, as configured."""
    mon = config.monitoring
    return tuple(
        (max(round(w.duration / w.interval), 1), w.interval.total_seconds())
        for w in (mon.soak, mon.heightened)
    )


def _baseline_checks(ctx: CheckContext) -> list[Check]:
    settings = monitoring_settings(ctx.config)
    assert settings is not None
    window = ctx.config.monitoring.baseline_window

    async def run() -> CheckResult:
        return await capture_baseline(ctx.client, settings, window, ctx.clock.now())

    return [Check("baseline", run, timeout=60.0)]


def _criteria_checks(ctx: CheckContext) -> list[Check]:
    settings = monitoring_settings(ctx.config)
    assert settings is not None
    # The go/no-go judges traffic as it is now; breaches during the soak are in the alert history.
    window = ctx.config.monitoring.window
    baseline = baseline_in([r.evidence for r in ctx.results_of("baseline")])
    verification = ctx.results_of("api")

    async def run() -> list[CheckResult]:
        _, errors, latency = await judge_window(ctx.client, settings, window, baseline)
        return [
            errors.result("criterion:5xx"),
            latency.result("criterion:p95"),
            rbac_summary(verification),
            finance_operations(verification),
        ]

    return [Check("criteria", run, timeout=60.0)]


class CheckBook:
    """The registry of check implementations: name → (is it configured?, build it)."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[Available, Factory]] = {}

    def register(self, name: str, available: Available, factory: Factory) -> None:
        """Add a check implementation under a name the runbook uses."""
        self._entries[name] = (available, factory)

    def available(self, config: Config, name: str, services: tuple[str, ...]) -> bool:
        """True when the check is implemented and its config section is present."""
        entry = self._entries.get(name)
        return entry is not None and entry[0](config, services)

    def build(self, name: str, ctx: CheckContext) -> list[Check]:
        """The runnable checks for a step's check stage."""
        entry = self._entries.get(name)
        if entry is None:
            return []
        return list(entry[1](ctx))

    def names(self) -> list[str]:
        """Registered check names."""
        return sorted(self._entries)


def default_checkbook() -> CheckBook:
    """Every check golive implements."""
    book = CheckBook()
    book.register("health", _health_available, _health_checks)
    book.register("ci", lambda c, s: c.preconditions.ci is not None, _ci_checks)
    book.register("incidents", lambda c, s: c.preconditions.incidents is not None, _incident_checks)
    book.register(
        "release-notes", lambda c, s: c.preconditions.release_notes is not None, _notes_checks
    )
    book.register("rollback", lambda c, s: c.preconditions.rollback is not None, _rollback_checks)
    book.register("preflight", lambda c, s: c.preflight is not None, _preflight_checks)
    book.register("verification", lambda c, s: c.verification is not None, _verification_checks)
    book.register(
        "baseline", lambda c, s: c.monitoring.prometheus_url is not None, _baseline_checks
    )
    book.register(
        "criteria",
        lambda c, s: c.monitoring.prometheus_url is not None and c.verification is not None,
        _criteria_checks,
    )
    return book
