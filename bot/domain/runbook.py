"""The go-live runbook as data, and a pure transition function over it.

A release is a list of steps grouped in phases. Each step is a short sequence of stages — run a
check, wait for an owner's approval, wait for a timer — and every move is a row in a table:
(step status, event) for steps and (release status, event) for the release. `transition()` takes
the state, an event and `now`, and returns the new state plus the effects the service must carry
out (messages, checks to run, the freeze). It never reads the clock, the database or the network.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TypeAlias

from bot.domain.errors import IllegalMove, NotAllowed


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


class StepStatus(StrEnum):
    """Where a step stands."""

    PENDING = "pending"  # not reached yet
    RUNNING = "running"  # the bot is running a check
    AWAITING = "awaiting"  # waiting for its owner's approval
    TIMING = "timing"  # waiting for a timer (the soak)
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

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {
            "kind": self.kind.value,
            "role": self.role.value,
            "label": self.label,
            "check": self.check,
            "manual": self.manual,
            "seconds": self.seconds,
            "services": list(self.services),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Stage:
        """Rebuild a stage stored by to_dict."""
        seconds = data.get("seconds") or 0.0
        check = data.get("check")
        services = data.get("services") or []
        return cls(
            kind=StageKind(str(data["kind"])),
            role=Role(str(data["role"])),
            label=str(data["label"]),
            check=str(check) if check else None,
            manual=bool(data.get("manual")),
            seconds=float(seconds) if isinstance(seconds, int | float | str) else 0.0,
            services=tuple(str(x) for x in services) if isinstance(services, list) else (),
        )


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
    deadline: datetime | None = None
    failing: tuple[str, ...] = ()
    variant: str | None = None

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
    kickoff_at: datetime | None = None
    reason: str | None = None

    def step(self, key: str) -> Step:
        """The step with that key; IllegalMove naming the known ones otherwise."""
        for s in self.steps:
            if s.key == key:
                return s
        known = ", ".join(s.key for s in self.steps)
        raise IllegalMove(f"there is no step called `{key}` in this release (steps: {known})")

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


# ---------------------------------------------------------------------------------------------
# Events: what can happen to a release.


@dataclass(frozen=True)
class Activate:
    """The release begins (at once, or at T-30 for a scheduled go-live)."""


@dataclass(frozen=True)
class Kickoff:
    """The scheduled go-live time (T-0) has come."""


@dataclass(frozen=True)
class CheckFinished:
    """A check stage produced its verdicts: names of the results and whether each is ok."""

    step: str
    attempt: int
    results: tuple[tuple[str, bool], ...]


@dataclass(frozen=True)
class Approve:
    """Someone approves a step (reaction, button, command or console)."""

    step: str
    user: str


@dataclass(frozen=True)
class Waive:
    """The commander waives a failing check (by step key or result name) with a reason."""

    name: str
    user: str
    reason: str


@dataclass(frozen=True)
class Retry:
    """Run a blocked step's check again (`variant` e.g. `full` for the preflight)."""

    step: str
    user: str
    variant: str | None = None


@dataclass(frozen=True)
class TimerElapsed:
    """A step's timer deadline has passed; `breaches` names monitoring breaches still open."""

    step: str
    breaches: tuple[str, ...] = ()


@dataclass(frozen=True)
class Abort:
    """The commander abandons the release before completion."""

    user: str
    reason: str


@dataclass(frozen=True)
class Rollback:
    """On-call decides to roll back."""

    user: str
    reason: str


@dataclass(frozen=True)
class Complete:
    """The commander declares the release complete (go)."""

    user: str


@dataclass(frozen=True)
class Handover:
    """The commander hands the release to someone else."""

    user: str
    to: str


@dataclass(frozen=True)
class Unfreeze:
    """The commander lifts a freeze that a rollback kept."""

    user: str


Event: TypeAlias = (
    Activate
    | Kickoff
    | CheckFinished
    | Approve
    | Waive
    | Retry
    | TimerElapsed
    | Abort
    | Rollback
    | Complete
    | Handover
    | Unfreeze
)
StepEvent: TypeAlias = CheckFinished | Approve | Retry | TimerElapsed

# ---------------------------------------------------------------------------------------------
# Effects: what the service must do after a transition.


@dataclass(frozen=True)
class StageOpened:
    """A step reached a stage: ask for approval, start a check or a timer."""

    step: str
    stage: int


@dataclass(frozen=True)
class RunCheck:
    """Run this check stage (guarded by attempt so a stale result is ignored)."""

    step: str
    check: str
    attempt: int
    variant: str | None = None


@dataclass(frozen=True)
class StagePassed:
    """A stage was satisfied."""

    step: str
    stage: int
    outcome: Outcome
    by: str | None = None


@dataclass(frozen=True)
class StepBlocked:
    """A check failed; the step waits for a fix (retry) or a waiver."""

    step: str
    failing: tuple[str, ...]


@dataclass(frozen=True)
class StepDone:
    """A step finished."""

    step: str


@dataclass(frozen=True)
class PhaseDone:
    """Every step of a phase finished."""

    phase: Phase


@dataclass(frozen=True)
class Waived:
    """A failing check was waived."""

    name: str
    step: str
    user: str
    reason: str


@dataclass(frozen=True)
class FreezeChanged:
    """Merges to the release branch were frozen or the freeze lifted."""

    frozen: bool


@dataclass(frozen=True)
class StatusChanged:
    """The release changed status (active, completed, aborted, rolled back)."""

    status: ReleaseStatus
    by: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class HandedOver:
    """The commander role moved."""

    old: str
    new: str


@dataclass(frozen=True)
class WaitingForKickoff:
    """Everything before deployment is done; the deployment waits for T-0."""

    at: datetime


Effect: TypeAlias = (
    StageOpened
    | RunCheck
    | StagePassed
    | StepBlocked
    | StepDone
    | PhaseDone
    | Waived
    | FreezeChanged
    | StatusChanged
    | HandedOver
    | WaitingForKickoff
)


@dataclass(frozen=True)
class Transition:
    """The result of one event: the new state and what to do about it."""

    release: Release
    effects: tuple[Effect, ...] = field(default_factory=tuple)


# Steps whose completion changes the world beyond the release.
ON_STEP_DONE: Mapping[str, Callable[[Release], tuple[Release, list[Effect]]]] = {
    "freeze": lambda r: (replace(r, frozen=True), [FreezeChanged(True)]),
}

# ---------------------------------------------------------------------------------------------
# Small helpers over the immutable state.


def _with_step(release: Release, step: Step) -> Release:
    return replace(release, steps=tuple(step if s.key == step.key else s for s in release.steps))


def _enter_stage(step: Step, index: int, now: datetime) -> tuple[Step, list[Effect]]:
    """Put a step at a stage and say what that stage needs."""
    stage = step.stages[index]
    if stage.kind is StageKind.CHECK:
        attempt = step.attempt + 1
        moved = replace(
            step,
            stage=index,
            status=StepStatus.RUNNING,
            attempt=attempt,
            failing=(),
            deadline=None,
        )
        assert stage.check is not None
        return moved, [
            StageOpened(step.key, index),
            RunCheck(step.key, stage.check, attempt, step.variant),
        ]
    if stage.kind is StageKind.APPROVE:
        moved = replace(step, stage=index, status=StepStatus.AWAITING, deadline=None)
        return moved, [StageOpened(step.key, index)]
    deadline = now + timedelta(seconds=stage.seconds)
    moved = replace(step, stage=index, status=StepStatus.TIMING, deadline=deadline)
    return moved, [StageOpened(step.key, index)]


def _finish_stage(
    release: Release, step: Step, outcome: Outcome, by: str | None, now: datetime
) -> tuple[Release, list[Effect]]:
    """Record a satisfied stage and move to the next stage, or finish the step."""
    effects: list[Effect] = [StagePassed(step.key, step.stage, outcome, by)]
    done = replace(step, outcomes=(*step.outcomes, outcome), failing=(), deadline=None)
    if step.stage + 1 < len(step.stages):
        moved, more = _enter_stage(done, step.stage + 1, now)
        return _with_step(release, moved), effects + more
    finished = replace(done, status=StepStatus.DONE)
    release = _with_step(release, finished)
    effects.append(StepDone(step.key))
    hook = ON_STEP_DONE.get(step.key)
    if hook:
        release, extra = hook(release)
        effects.extend(extra)
    if all(s.status is StepStatus.DONE for s in release.steps if s.phase is step.phase):
        effects.append(PhaseDone(step.phase))
    return release, effects


def open_ready_steps(release: Release, now: datetime) -> tuple[Release, list[Effect]]:
    """Open the steps the runbook allows next: all of a parallel phase, else the next one."""
    if release.status is not ReleaseStatus.ACTIVE:
        return release, []
    phase = release.phase
    if phase is None:
        return release, []
    if phase in KICKOFF_PHASES and release.kickoff_at is not None and now < release.kickoff_at:
        in_phase = [s for s in release.steps if s.phase is phase]
        if all(s.status is StepStatus.PENDING for s in in_phase):
            return release, [WaitingForKickoff(release.kickoff_at)]
    steps = [s for s in release.steps if s.phase is phase]
    if phase in PARALLEL_PHASES:
        to_open = [s for s in steps if s.status is StepStatus.PENDING]
    elif any(s.is_open for s in steps):
        to_open = []
    else:
        to_open = [s for s in steps if s.status is StepStatus.PENDING][:1]
    effects: list[Effect] = []
    for step in to_open:
        moved, more = _enter_stage(step, 0, now)
        release = _with_step(release, moved)
        effects.extend(more)
    return release, effects


# ---------------------------------------------------------------------------------------------
# Step rules: (step status, event type) → handler. Anything not in the table is illegal.

StepHandler = Callable[[Release, Step, StepEvent, datetime], tuple[Release, list[Effect]]]


def _on_approve(
    release: Release, step: Step, event: StepEvent, now: datetime
) -> tuple[Release, list[Effect]]:
    assert isinstance(event, Approve)
    owner = release.roles.user(step.owner)
    if event.user != owner:
        raise NotAllowed(f"only <@{owner}> can approve {step.title}")
    outcome = Outcome.MANUAL if step.current.manual else Outcome.APPROVED
    return _finish_stage(release, step, outcome, event.user, now)


def _on_check_finished(
    release: Release, step: Step, event: StepEvent, now: datetime
) -> tuple[Release, list[Effect]]:
    assert isinstance(event, CheckFinished)
    if event.attempt != step.attempt:
        return release, []  # a result from an earlier run that a retry replaced
    failing = tuple(
        name
        for name, ok in event.results
        if not ok and name not in release.waivers and step.key not in release.waivers
    )
    if not event.results:
        failing = (step.key,)
    if failing:
        blocked = replace(step, status=StepStatus.BLOCKED, failing=failing)
        return _with_step(release, blocked), [StepBlocked(step.key, failing)]
    waived = any(not ok for _, ok in event.results)
    outcome = Outcome.WAIVED if waived else Outcome.PASSED
    return _finish_stage(release, step, outcome, None, now)


def _on_retry(
    release: Release, step: Step, event: StepEvent, now: datetime
) -> tuple[Release, list[Effect]]:
    assert isinstance(event, Retry)
    again = replace(step, variant=event.variant or step.variant)
    moved, effects = _enter_stage(again, step.stage, now)
    return _with_step(release, moved), effects


def _on_timer(
    release: Release, step: Step, event: StepEvent, now: datetime
) -> tuple[Release, list[Effect]]:
    assert isinstance(event, TimerElapsed) and step.deadline is not None
    if now < step.deadline:
        return release, []  # fired early (clock skew): the scheduler will fire again
    if event.breaches:
        # The soak ended with a breach open: no widening; roll back, re-soak (retry) or waive.
        blocked = replace(step, status=StepStatus.BLOCKED, failing=event.breaches, deadline=None)
        return _with_step(release, blocked), [StepBlocked(step.key, event.breaches)]
    return _finish_stage(release, step, Outcome.ELAPSED, None, now)


STEP_RULES: Mapping[tuple[StepStatus, type], StepHandler] = {
    (StepStatus.AWAITING, Approve): _on_approve,
    (StepStatus.RUNNING, CheckFinished): _on_check_finished,
    (StepStatus.BLOCKED, Retry): _on_retry,
    (StepStatus.TIMING, TimerElapsed): _on_timer,
}

# Results that arrive for a step that has moved on are stale, not errors.
STEP_IGNORED: frozenset[tuple[StepStatus, type]] = frozenset(
    {(status, CheckFinished) for status in StepStatus if status is not StepStatus.RUNNING}
    | {(status, TimerElapsed) for status in StepStatus if status is not StepStatus.TIMING}
)


def _step_refusal(release: Release, step: Step, event: StepEvent) -> str:
    """A human sentence for an event the table does not allow."""
    where = describe_position(release)
    if isinstance(event, Approve):
        return {
            StepStatus.PENDING: f"{step.title} is not open yet; {where}",
            StepStatus.RUNNING: f"the bot is still checking {step.title}; wait for the result",
            StepStatus.TIMING: f"{step.title} is still running its timer; approve when it ends",
            StepStatus.BLOCKED: (
                f"{step.title} is blocked by {', '.join(step.failing)}: fix it and "
                f"`/golive retry {step.key}`, or `/golive waive {step.key} <reason>`"
            ),
            StepStatus.DONE: f"{step.title} is already done",
        }.get(step.status, f"{step.title} cannot be approved now")
    if isinstance(event, Retry):
        if step.status is StepStatus.RUNNING:
            return f"{step.title} is already being checked"
        return f"{step.title} is not blocked, so there is nothing to retry; {where}"
    return f"{step.title} cannot take that now; {where}"


def _apply_step_event(release: Release, event: StepEvent, now: datetime) -> Transition:
    if release.status is not ReleaseStatus.ACTIVE:
        if isinstance(event, CheckFinished | TimerElapsed):
            return Transition(release)
        raise IllegalMove(f"release {release.version} is {_status_words(release.status)}")
    step = release.step(event.step)
    handler = STEP_RULES.get((step.status, type(event)))
    if handler is None:
        if (step.status, type(event)) in STEP_IGNORED:
            return Transition(release)
        raise IllegalMove(_step_refusal(release, step, event))
    moved, effects = handler(release, step, event, now)
    opened, more = open_ready_steps(moved, now)
    return Transition(opened, tuple(effects + more))


# ---------------------------------------------------------------------------------------------
# Release rules: (release status, event type) → handler.

ReleaseHandler = Callable[[Release, Event, datetime], Transition]


def _activate(release: Release, event: Event, now: datetime) -> Transition:
    active = replace(release, status=ReleaseStatus.ACTIVE)
    opened, effects = open_ready_steps(active, now)
    return Transition(opened, (StatusChanged(ReleaseStatus.ACTIVE), *effects))


def _kickoff(release: Release, event: Event, now: datetime) -> Transition:
    opened, effects = open_ready_steps(release, now)
    return Transition(opened, tuple(effects))


def _waive(release: Release, event: Event, now: datetime) -> Transition:
    assert isinstance(event, Waive)
    name = event.name
    blocked = [s for s in release.steps if s.status is StepStatus.BLOCKED]
    step = next((s for s in blocked if name == s.key or name in s.failing), None)
    if step is None:
        failing = sorted({n for s in blocked for n in (s.key, *s.failing)})
        hint = f"failing now: {', '.join(failing)}" if failing else "nothing is failing now"
        raise IllegalMove(f"`{name}` is not a failing check; {hint}")
    if not event.reason.strip():
        raise IllegalMove("a waiver needs a reason")
    waivers = release.waivers | {name}
    release = replace(release, waivers=waivers)
    effects: list[Effect] = [Waived(name, step.key, event.user, event.reason)]
    remaining = tuple(n for n in step.failing if n not in waivers and step.key not in waivers)
    if remaining:
        release = _with_step(release, replace(step, failing=remaining))
        return Transition(release, (*effects, StepBlocked(step.key, remaining)))
    moved, more = _finish_stage(release, step, Outcome.WAIVED, event.user, now)
    opened, opening = open_ready_steps(moved, now)
    return Transition(opened, tuple(effects + more + opening))


def _end(status: ReleaseStatus, lift_freeze: bool) -> ReleaseHandler:
    def handler(release: Release, event: Event, now: datetime) -> Transition:
        assert isinstance(event, Abort | Rollback | Complete)
        reason = getattr(event, "reason", None)
        if status is ReleaseStatus.COMPLETED and not release.all_done:
            raise IllegalMove("the release cannot be completed yet: " + describe_position(release))
        if reason is not None and not reason.strip():
            raise IllegalMove("say why: a reason is required")
        ended = replace(release, status=status, reason=reason)
        effects: list[Effect] = [StatusChanged(status, event.user, reason)]
        if lift_freeze and release.frozen:
            ended = replace(ended, frozen=False)
            effects.append(FreezeChanged(False))
        return Transition(ended, tuple(effects))

    return handler


def _handover(release: Release, event: Event, now: datetime) -> Transition:
    assert isinstance(event, Handover)
    old = release.roles.commander
    if event.to == old:
        raise IllegalMove(f"<@{old}> is already the commander")
    roles = replace(release.roles, commander=event.to)
    return Transition(replace(release, roles=roles), (HandedOver(old, event.to),))


def _unfreeze(release: Release, event: Event, now: datetime) -> Transition:
    if not release.frozen:
        raise IllegalMove("merges are not frozen")
    return Transition(replace(release, frozen=False), (FreezeChanged(False),))


_ABORTABLE = (ReleaseStatus.SCHEDULED, ReleaseStatus.ACTIVE)
_HANDOVER = (
    ReleaseStatus.SCHEDULED,
    ReleaseStatus.ACTIVE,
    ReleaseStatus.COMPLETED,
    ReleaseStatus.ROLLED_BACK,
)

RELEASE_RULES: Mapping[tuple[ReleaseStatus, type], ReleaseHandler] = {
    (ReleaseStatus.SCHEDULED, Activate): _activate,
    (ReleaseStatus.ACTIVE, Kickoff): _kickoff,
    (ReleaseStatus.ACTIVE, Waive): _waive,
    (ReleaseStatus.ACTIVE, Complete): _end(ReleaseStatus.COMPLETED, lift_freeze=True),
    (ReleaseStatus.ACTIVE, Rollback): _end(ReleaseStatus.ROLLED_BACK, lift_freeze=False),
    (ReleaseStatus.COMPLETED, Rollback): _end(ReleaseStatus.ROLLED_BACK, lift_freeze=False),
    (ReleaseStatus.ROLLED_BACK, Unfreeze): _unfreeze,
    **{(s, Abort): _end(ReleaseStatus.ABORTED, lift_freeze=True) for s in _ABORTABLE},
    **{(s, Handover): _handover for s in _HANDOVER},
}

_EVENT_WORDS: Mapping[type, str] = {
    Activate: "start",
    Kickoff: "kick off",
    Waive: "take waivers",
    Complete: "be completed",
    Rollback: "be rolled back",
    Unfreeze: "lift a freeze",
    Abort: "be aborted",
    Handover: "be handed over",
}


def _status_words(status: ReleaseStatus) -> str:
    return {
        ReleaseStatus.SCHEDULED: "scheduled and has not started yet",
        ReleaseStatus.ACTIVE: "in progress",
        ReleaseStatus.COMPLETED: "already completed",
        ReleaseStatus.ABORTED: "aborted",
        ReleaseStatus.ROLLED_BACK: "rolled back",
    }[status]


def transition(release: Release, event: Event, now: datetime) -> Transition:
    """Apply one event to a release at time `now`; IllegalMove/NotAllowed when not allowed."""
    if isinstance(event, CheckFinished | Approve | Retry | TimerElapsed):
        return _apply_step_event(release, event, now)
    handler = RELEASE_RULES.get((release.status, type(event)))
    if handler is None:
        if isinstance(event, Kickoff | Activate):
            return Transition(release)  # a late timer for a release that moved on
        what = _EVENT_WORDS.get(type(event), "do that")
        raise IllegalMove(
            f"release {release.version} is {_status_words(release.status)}, so it cannot {what}"
        )
    return handler(release, event, now)


# ---------------------------------------------------------------------------------------------
# Reading the state back to people.


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


def describe_position(release: Release) -> str:
    """One sentence: what the release is waiting for now."""
    if release.status is not ReleaseStatus.ACTIVE:
        return f"release {release.version} is {_status_words(release.status)}"
    waits = waiting_on(release)
    if not waits:
        if release.all_done:
            return "every step is done; the commander may `/golive complete`"
        if release.kickoff_at is not None:
            return "waiting for the scheduled go-live time"
        return "nothing is open"
    parts = []
    for step, user in waits:
        if step.status is StepStatus.AWAITING:
            parts.append(f"{step.title} waits on <@{user}>")
        elif step.status is StepStatus.BLOCKED:
            parts.append(f"{step.title} is blocked ({', '.join(step.failing)})")
        elif step.status is StepStatus.TIMING:
            parts.append(f"{step.title} is running")
        else:
            parts.append(f"the bot is checking {step.title}")
    return "now: " + "; ".join(parts)


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
) -> tuple[Step, ...]:
    """Every step of the runbook for these changed services.

    `available(check, services)` says whether a check can run automatically; when it cannot,
    its stage becomes a manual confirmation by the same owner, shown as manual.
    """

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
    notes_stages: tuple[Stage, ...] = (
        Stage(
            StageKind.CHECK, Role.COMMANDER, "the release notes page answers", check="release-notes"
        ),
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
            (approve(Role.BACKEND, "capture a backup / restore point of production databases"),),
        ),
        Step(
            "migrations",
            dep,
            "Migrations",
            (
                approve(
                    Role.BACKEND,
                    "apply migrations for "
                    + (", ".join(with_migrations) or "no service (none declare any)"),
                ),
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
                    approve(Role.BACKEND, f"deploy {', '.join(members)}"),
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
                    approve(Role.FRONTEND, f"deploy {', '.join(frontend)}"),
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
