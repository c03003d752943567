"""Planning: the steps of one release, from the configured services."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass

from bot.domain.model import Phase, Release, Role, Stage, StageKind, Step

# ---------------------------------------------------------------------------------------------
# Planning: the steps of one release, from the configured services.


@dataclass(frozen=True)
class PlannedService:
    """What the plan needs to know of one changed service."""

    name: str
    tier: str
    wave: int
    migrations: bool


def _are(names: tuple[str, ...]) -> str:
    return "is" if len(names) == 1 else "are"


def plan_steps(
    services: Iterable[PlannedService],
    available: Callable[[str, tuple[str, ...]], bool],
    soak_seconds: float,
    notes_on_github: bool = False,
    actions: Collection[str] = (),
) -> tuple[Step, ...]:
    """Every step of the runbook for these changed services.

    `available(check, services)` says whether a check can run automatically; when it cannot,
    its stage becomes a manual confirmation by the same owner, shown as manual.
    `notes_on_github`: the notes are a GitHub release, finalized once it is published. A step
    named in `actions` is run by golive when its owner approves: an action stage follows the
    approval.
    """

    def deploy(
        key: str, role: Role, what: str, done: str, scope: tuple[str, ...] = ()
    ) -> tuple[Stage, ...]:
        """The owner's approval, and the action golive runs on it when one is configured."""
        if key not in actions:
            return (approve(role, what),)
        return (
            approve(role, f"approve, and golive will {what}"),
            Stage(StageKind.ACTION, role, done, services=scope),
        )

    def check(name: str, role: Role, label: str, scope: tuple[str, ...] = ()) -> Stage:
        if available(name, scope):
            return Stage(StageKind.CHECK, role, label, check=name, services=scope)
        return Stage(
            StageKind.APPROVE,
            role,
            f"confirm by hand that {label}",
            check=name,
            manual=True,
            services=scope,
        )

    def approve(role: Role, label: str) -> Stage:
        return Stage(StageKind.APPROVE, role, label)

    changed = list(services)
    names = tuple(s.name for s in changed)
    backend = [s for s in changed if s.tier == "backend"]
    frontend = tuple(s.name for s in changed if s.tier == "frontend")
    with_migrations = tuple(s.name for s in changed if s.migrations)
    waves = sorted({s.wave for s in backend})

    pre, flight, dep = Phase.PRECONDITIONS, Phase.PREFLIGHT, Phase.DEPLOYMENT
    # The notes are always approved by the commander; the bot first checks that the page answers
    # when it knows where the notes live. Without that, one confirmation covers both.
    notes_label = (
        "the GitHub release of this version is published, not a draft"
        if notes_on_github
        else "the release notes page answers"
    )
    notes_stages: tuple[Stage, ...] = (
        Stage(StageKind.CHECK, Role.COMMANDER, notes_label, check="release-notes"),
        approve(Role.COMMANDER, "approve the release notes"),
    )
    if not available("release-notes", ()):
        notes_stages = (
            approve(Role.COMMANDER, "confirm the release notes are final and approve them"),
        )
    steps: list[Step] = [
        Step("ci", pre, "CI green", (check("ci", Role.COMMANDER, "CI is green"),)),
        Step(
            "incidents",
            pre,
            "No critical incident",
            (check("incidents", Role.ON_CALL, "there is no unresolved critical incident"),),
        ),
        Step("notes", pre, "Release notes", notes_stages),
        Step(
            "rollback",
            pre,
            "Rollback targets",
            (
                check(
                    "rollback",
                    Role.ON_CALL,
                    "a rollback image exists for every changed service",
                    names,
                ),
            ),
            services=names,
        ),
        Step(
            "baseline",
            pre,
            "Pre-release baseline",
            (check("baseline", Role.ON_CALL, "a pre-release baseline of 5xx and p95 is captured"),),
        ),
        Step(
            "preflight",
            flight,
            "Preflight",
            (check("preflight", Role.COMMANDER, "the preflight script passes"),),
        ),
        Step("freeze", dep, "Freeze merges", (approve(Role.COMMANDER, "freeze merges"),)),
        Step(
            "backup",
            dep,
            "Backup / restore point",
            deploy(
                "backup",
                Role.BACKEND,
                "capture a backup / restore point of production databases",
                "the backup action succeeds",
            ),
        ),
        Step(
            "migrations",
            dep,
            "Migrations",
            deploy(
                "migrations" if with_migrations else "",
                Role.BACKEND,
                "apply migrations for "
                + (", ".join(with_migrations) or "no service (none declare any)"),
                "the migrations of " + ", ".join(with_migrations) + " succeed",
                with_migrations,
            ),
            services=with_migrations,
        ),
    ]
    for wave in waves:
        members = tuple(s.name for s in backend if s.wave == wave)
        steps.append(
            Step(
                f"wave-{wave}",
                dep,
                f"Backend wave {wave}",
                (
                    *deploy(
                        f"wave-{wave}",
                        Role.BACKEND,
                        f"deploy {', '.join(members)}",
                        f"the deploy of {', '.join(members)} succeeds",
                        members,
                    ),
                    check(
                        "health",
                        Role.BACKEND,
                        f"{', '.join(members)} {_are(members)} healthy",
                        members,
                    ),
                ),
                services=members,
            )
        )
    all_backend = tuple(s.name for s in backend)
    if frontend:
        gate: tuple[Stage, ...] = ()
        if all_backend:
            gate = (check("health", Role.FRONTEND, "the backend API is healthy", all_backend),)
        steps.append(
            Step(
                "portal",
                dep,
                "Web portal deploy",
                (
                    *gate,
                    *deploy(
                        "portal",
                        Role.FRONTEND,
                        f"deploy {', '.join(frontend)}",
                        f"the deploy of {', '.join(frontend)} succeeds",
                        frontend,
                    ),
                ),
                services=frontend,
            )
        )
    whole, rest = divmod(round(soak_seconds), 60)
    minutes = f"{whole} min" + (f" {rest} s" if rest else "") if whole else f"{rest} s"
    steps.append(
        Step(
            "soak",
            dep,
            "Soak & widen traffic",
            (
                Stage(
                    StageKind.TIMER,
                    Role.ON_CALL,
                    f"soak for {minutes}",
                    check="monitoring",
                    seconds=soak_seconds,
                ),
                approve(Role.ON_CALL, "widen traffic"),
            ),
            services=names,
        )
    )
    steps.append(
        Step(
            "api",
            Phase.VERIFICATION,
            "Money-path verification",
            (
                check(
                    "verification", Role.BACKEND, "leads, billing report, invoice, PDF and CSV work"
                ),
            ),
        )
    )
    steps.append(
        Step(
            "portal-paths",
            Phase.VERIFICATION,
            "Portal critical paths",
            (approve(Role.FRONTEND, "confirm the admin/web portal critical paths work"),),
        )
    )
    steps.append(
        Step(
            "criteria",
            Phase.CRITERIA,
            "Success criteria",
            (
                check(
                    "criteria", Role.COMMANDER, "5xx, p95, RBAC and finance operations meet the bar"
                ),
            ),
        )
    )
    return tuple(steps)


def rollback_order(release: Release) -> tuple[tuple[str, ...], ...]:
    """The changed services in the order a rollback undoes them: the portal first, then the
    backend waves from the last to the first (the services of one wave together)."""
    deployed = [
        s.services
        for s in release.steps
        if s.phase is Phase.DEPLOYMENT and (s.key == "portal" or s.key.startswith("wave-"))
    ]
    groups = [group for group in reversed(deployed) if group]
    covered = {name for group in groups for name in group}
    rest = tuple(name for name in release.services if name not in covered)
    return tuple(groups) + ((rest,) if rest else ())
