"""What can happen to a release (events) and what the service must do after it (effects)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeAlias

from bot.domain.model import Outcome, Phase, Release, ReleaseStatus, Role

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
class ActionFinished:
    """A step's action ended: per run (a service, or the step) whether it succeeded."""

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
class Stop:
    """Someone stops a step with a reason ("this is wrong"): it is blocked until retried or
    waived."""

    step: str
    user: str
    reason: str


@dataclass(frozen=True)
class Remind:
    """A step has waited on a person long enough to remind them; with `escalate`, someone
    else is brought in too (the bot's own event: the due times come from the database)."""

    step: str
    escalate: bool = False


@dataclass(frozen=True)
class Snooze:
    """Someone holds a waiting step's reminders off for a while."""

    step: str
    user: str


@dataclass(frozen=True)
class Evidence:
    """How many of a monitoring period's ticks could judge every signal, and the last one."""

    conclusive: int
    ticks: int
    last: bool
    needed: float

    @property
    def enough(self) -> bool:
        """At least `needed` of the ticks conclusive, and the last one."""
        return self.ticks > 0 and self.last and self.conclusive >= self.needed * self.ticks


@dataclass(frozen=True)
class TimerElapsed:
    """A step's timer deadline has passed; `breaches` names what stands against widening
    (breached signals, `metrics` while blind, `evidence` when too few ticks could judge), and
    `evidence` is the soak's count of conclusive ticks."""

    step: str
    breaches: tuple[str, ...] = ()
    evidence: Evidence | None = None


@dataclass(frozen=True)
class Abort:
    """The commander abandons the release before completion."""

    user: str
    reason: str


@dataclass(frozen=True)
class Rollback:
    """On-call decides to roll back; with rollback actions configured (`confirm`), the plan
    waits for on-call's confirmation before anything runs."""

    user: str
    reason: str
    confirm: bool = False


@dataclass(frozen=True)
class ConfirmRollback:
    """On-call confirms the proposed rollback plan: the rollback actions run."""

    user: str


@dataclass(frozen=True)
class Complete:
    """The commander declares the release complete (go)."""

    user: str


@dataclass(frozen=True)
class Handover:
    """A role of the release (the commander by default) passes to someone else."""

    user: str
    to: str
    role: Role = Role.COMMANDER


@dataclass(frozen=True)
class Unfreeze:
    """The commander lifts a freeze that a rollback kept."""

    user: str


@dataclass(frozen=True)
class AllowMerge:
    """The commander lets one pull request's head commit through the freeze this release holds
    (the hotfix path); a later push to it is frozen again."""

    user: str
    number: int
    sha: str
    reason: str
    title: str = ""


@dataclass(frozen=True)
class TakeFreeze:
    """A new release of the channel (`to`, its version) takes over the freeze this rolled-back
    release still holds: the freeze stays on, held by the new release."""

    user: str
    to: str


Event: TypeAlias = (
    Activate
    | Kickoff
    | CheckFinished
    | ActionFinished
    | Approve
    | Waive
    | Retry
    | TimerElapsed
    | Abort
    | Rollback
    | ConfirmRollback
    | Complete
    | Handover
    | Unfreeze
    | AllowMerge
    | TakeFreeze
    | Stop
    | Remind
    | Snooze
)
StepEvent: TypeAlias = (
    CheckFinished | ActionFinished | Approve | Retry | TimerElapsed | Stop | Remind | Snooze
)
# Events of the bot itself that may come late for a step that has moved on (ignored then).
BOT_STEP_EVENTS = (CheckFinished, ActionFinished, TimerElapsed, Remind)

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
class RunAction:
    """Start this step's action (a new run for each attempt; a result of another is stale)."""

    step: str
    attempt: int


@dataclass(frozen=True)
class RollbackProposed:
    """On-call asked to roll back; the plan waits for their confirmation."""

    by: str
    reason: str


@dataclass(frozen=True)
class RollbackStarted:
    """The confirmed rollback runs: services in groups, the last wave deployed first."""

    by: str
    order: tuple[tuple[str, ...], ...]


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
class MergeAllowed:
    """A pull request's head may merge during the freeze, on the commander's word."""

    allowed: AllowMerge


@dataclass(frozen=True)
class FreezeTaken:
    """The freeze this release held now belongs to a newer release (`to`); it was not lifted."""

    to: str
    by: str


@dataclass(frozen=True)
class StatusChanged:
    """The release changed status (active, completed, aborted, rolled back)."""

    status: ReleaseStatus
    by: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class HandedOver:
    """A role moved from one person to another."""

    old: str
    new: str
    role: Role = Role.COMMANDER


@dataclass(frozen=True)
class StepStopped:
    """A person stopped a step; `rollback`: on-call stopped the soak or a verification, so
    the rollback plan is offered."""

    step: str
    by: str
    reason: str
    rollback: bool = False


@dataclass(frozen=True)
class Reminded:
    """A waiting step's owner is reminded; `escalate_to` is mentioned too, once it is late."""

    step: str
    owner: str
    escalate_to: str | None = None


@dataclass(frozen=True)
class Snoozed:
    """A waiting step's reminders are held off until `until`."""

    step: str
    by: str
    until: datetime


@dataclass(frozen=True)
class WaitingForKickoff:
    """Everything before deployment is done; the deployment waits for T-0."""

    at: datetime


Effect: TypeAlias = (
    StageOpened
    | RunCheck
    | RunAction
    | RollbackProposed
    | RollbackStarted
    | StagePassed
    | StepBlocked
    | StepDone
    | PhaseDone
    | Waived
    | FreezeChanged
    | MergeAllowed
    | FreezeTaken
    | StatusChanged
    | HandedOver
    | WaitingForKickoff
    | StepStopped
    | Reminded
    | Snoozed
)


@dataclass(frozen=True)
class Transition:
    """The result of one event: the new state and what to do about it."""

    release: Release
    effects: tuple[Effect, ...] = field(default_factory=tuple)
