"""The runbook's state as data: roles, phases, steps and their stages, and one release.

Everything here is immutable; `bot.domain.rules` says how it may change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from bot.domain.errors import IllegalMove, Why
from bot.domain.serial import Moment


class Role(StrEnum):
    """The people of runbook §1."""

    COMMANDER = "commander"
    ON_CALL = "on_call"
    BACKEND = "backend"
    FRONTEND = "frontend"


class Phase(StrEnum):
    """Runbook §2–§6, in order."""

    PRECONDITIONS = "preconditions"
    PREFLIGHT = "preflight"
    DEPLOYMENT = "deployment"
    VERIFICATION = "verification"
    CRITERIA = "criteria"


PHASE_TITLES: Mapping[Phase, str] = {
    Phase.PRECONDITIONS: "Preconditions",
    Phase.PREFLIGHT: "Preflight",
    Phase.DEPLOYMENT: "Deployment",
    Phase.VERIFICATION: "Verification",
    Phase.CRITERIA: "Success criteria",
}

# Steps of a parallel phase are all opened at once; a sequential phase opens one step at a time.
PARALLEL_PHASES = frozenset({Phase.PRECONDITIONS, Phase.VERIFICATION})
# Phases that may not open before the scheduled go-live time (T-0).
KICKOFF_PHASES = frozenset({Phase.DEPLOYMENT})


class StageKind(StrEnum):
    """What a stage waits for."""

    CHECK = "check"
    APPROVE = "approve"
    TIMER = "timer"
    ACTION = "action"  # the bot runs the step's configured action (a deploy) and waits for it


class StepStatus(StrEnum):
    """Where a step stands."""

    PENDING = "pending"  # not reached yet
    RUNNING = "running"  # the bot is running a check
    AWAITING = "awaiting"  # waiting for its owner's approval
    TIMING = "timing"  # waiting for a timer (the soak)
    ACTING = "acting"  # the bot runs the step's action (a deploy) and follows it to the end
    BLOCKED = "blocked"  # a check failed: fix and retry, or waive
    DONE = "done"


class Outcome(StrEnum):
    """How a stage was satisfied."""

    PASSED = "passed"  # a check passed
    APPROVED = "approved"  # its owner approved
    MANUAL = "manual"  # an owner confirmed by hand what no check could
    WAIVED = "waived"  # the commander waived a failure, with a reason
    ELAPSED = "elapsed"  # a timer ran out


class ReleaseStatus(StrEnum):
    """The release as a whole."""

    SCHEDULED = "scheduled"
    ACTIVE = "active"
    COMPLETED = "completed"
    ABORTED = "aborted"
    ROLLED_BACK = "rolled_back"


OPEN_STATUSES = frozenset({ReleaseStatus.SCHEDULED, ReleaseStatus.ACTIVE})


@dataclass(frozen=True)
class Stage:
    """One thing a step waits for: a check, an approval, or a timer."""

    kind: StageKind
    role: Role
    label: str
    check: str | None = None
    manual: bool = False
    seconds: float = 0.0
    services: tuple[str, ...] = ()


@dataclass(frozen=True)
class Step:
    """A runbook step of one release and where it stands."""

    key: str
    phase: Phase
    title: str
    stages: tuple[Stage, ...]
    services: tuple[str, ...] = ()
    status: StepStatus = StepStatus.PENDING
    stage: int = 0
    outcomes: tuple[Outcome, ...] = ()
    attempt: int = 0
    deadline: Moment | None = None
    failing: tuple[str, ...] = ()
    variant: str | None = None
    reason: str | None = None  # why a person stopped the step (it is blocked until retried)

    @property
    def current(self) -> Stage:
        """The stage the step is at (the last one once done)."""
        return self.stages[min(self.stage, len(self.stages) - 1)]

    @property
    def owner(self) -> Role:
        """Who answers for the step now: the role of its current stage."""
        return self.current.role

    @property
    def outcome(self) -> Outcome | None:
        """How the finished step was satisfied, the weakest stage first (waived, manual...)."""
        if self.status is not StepStatus.DONE:
            return None
        for weakest in (Outcome.WAIVED, Outcome.MANUAL, Outcome.APPROVED, Outcome.ELAPSED):
            if weakest in self.outcomes:
                return weakest
        return Outcome.PASSED

    @property
    def is_open(self) -> bool:
        """True while the step has been reached and is not finished."""
        return self.status not in (StepStatus.PENDING, StepStatus.DONE)

    @property
    def waits_on_people(self) -> bool:
        """True while only a person can move it: an approval, or a block to retry or waive."""
        return self.status in (StepStatus.AWAITING, StepStatus.BLOCKED)


@dataclass(frozen=True)
class Roles:
    """Who holds each role in one release."""

    commander: str
    on_call: str
    backend: str
    frontend: str

    def user(self, role: Role) -> str:
        """The Slack user id holding that role."""
        return str(getattr(self, role.value))

    def roles_of(self, user: str) -> list[Role]:
        """Every role the user holds in this release."""
        return [r for r in Role if self.user(r) == user]


@dataclass(frozen=True)
class Release:
    """The whole state of one release, as the transition function sees it."""

    id: int
    channel: str
    version: str
    status: ReleaseStatus
    roles: Roles
    steps: tuple[Step, ...]
    major: bool = False
    services: tuple[str, ...] = ()
    waivers: frozenset[str] = frozenset()
    frozen: bool = False
    kickoff_at: Moment | None = None
    reason: str | None = None
    # On-call asked to roll back (this reason); the rollback actions wait for their confirmation.
    proposed_rollback: str | None = None

    def step(self, key: str) -> Step:
        """The step with that key; IllegalMove naming the known ones otherwise."""
        for s in self.steps:
            if s.key == key:
                return s
        raise IllegalMove(Why.NO_SUCH_STEP, key=key, known=[s.key for s in self.steps])

    def find_step(self, key: str) -> Step | None:
        """The step with that key, or None."""
        return next((s for s in self.steps if s.key == key), None)

    def open_steps(self) -> list[Step]:
        """Steps reached and not finished."""
        return [s for s in self.steps if s.is_open]

    @property
    def phase(self) -> Phase | None:
        """The phase of the first unfinished step (None once every step is done)."""
        return next((s.phase for s in self.steps if s.status is not StepStatus.DONE), None)

    @property
    def all_done(self) -> bool:
        """True once every step is done."""
        return all(s.status is StepStatus.DONE for s in self.steps)


def waiting_on(release: Release) -> list[tuple[Step, str | None]]:
    """Open steps and the user each waits on (None when the bot itself is working)."""
    out: list[tuple[Step, str | None]] = []
    for step in release.open_steps():
        if step.status is StepStatus.AWAITING:
            out.append((step, release.roles.user(step.owner)))
        elif step.status is StepStatus.BLOCKED:
            out.append((step, release.roles.commander))
        else:
            out.append((step, None))
    return out


def answerers(release: Release, step: Step) -> tuple[str, ...]:
    """Who a step waits on: its owner for an approval; its owner and the commander (who may
    waive) while it is blocked; nobody while the bot itself works or the step is not open."""
    if release.status is not ReleaseStatus.ACTIVE or not step.waits_on_people:
        return ()
    owner = release.roles.user(step.owner)
    if step.status is StepStatus.AWAITING:
        return (owner,)
    return tuple(dict.fromkeys((owner, release.roles.commander)))
