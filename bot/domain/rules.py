"""The runbook's rules as tables: (step status, event) and (release status, event) → handler.

Anything not in a table is illegal. Handlers are pure: they take the state, the event and `now`
and return the new state with its effects.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from enum import StrEnum

from bot.domain.errors import IllegalMove, NotAllowed, Why
from bot.domain.events import (
    Abort,
    ActionFinished,
    Activate,
    AllowMerge,
    Approve,
    CheckFinished,
    Complete,
    ConfirmRollback,
    Effect,
    Event,
    FreezeChanged,
    FreezeTaken,
    HandedOver,
    Handover,
    Kickoff,
    MergeAllowed,
    PhaseDone,
    Remind,
    Reminded,
    Retry,
    Rollback,
    RollbackProposed,
    RollbackStarted,
    RunAction,
    RunCheck,
    Snooze,
    Snoozed,
    StageOpened,
    StagePassed,
    StatusChanged,
    StepBlocked,
    StepDone,
    StepEvent,
    StepStopped,
    Stop,
    TakeFreeze,
    TimerElapsed,
    Transition,
    Unfreeze,
    WaitingForKickoff,
    Waive,
    Waived,
)
from bot.domain.model import (
    KICKOFF_PHASES,
    PARALLEL_PHASES,
    Outcome,
    Phase,
    Release,
    ReleaseStatus,
    Role,
    StageKind,
    Step,
    StepStatus,
)
from bot.domain.plan import rollback_order

# How long a snooze holds a step's reminders off.
SNOOZE = timedelta(minutes=30)
# A stop by on-call in these offers the rollback plan: the soak, and the verification phase.
ROLLBACK_STEPS = frozenset({"soak"})
ROLLBACK_PHASES = frozenset({Phase.VERIFICATION})
# What a person's stop puts in the step's failing list (`/golive waive stopped …` works too).
STOPPED = "stopped"

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
    if stage.kind in (StageKind.CHECK, StageKind.ACTION):
        # Each entry is a new attempt: a retry runs the check again or starts a new run of the
        # action (never re-reads the failed one), and a result of an older attempt is stale.
        attempt = step.attempt + 1
        acting = stage.kind is StageKind.ACTION
        moved = replace(
            step,
            stage=index,
            status=StepStatus.ACTING if acting else StepStatus.RUNNING,
            attempt=attempt,
            failing=(),
            deadline=None,
            reason=None,
        )
        run: Effect = (
            RunAction(step.key, attempt)
            if acting
            else RunCheck(step.key, stage.check or step.key, attempt, step.variant)
        )
        return moved, [StageOpened(step.key, index), run]
    if stage.kind is StageKind.APPROVE:
        moved = replace(
            step, stage=index, status=StepStatus.AWAITING, deadline=None, failing=(), reason=None
        )
        return moved, [StageOpened(step.key, index)]
    deadline = now + timedelta(seconds=stage.seconds)
    moved = replace(
        step, stage=index, status=StepStatus.TIMING, deadline=deadline, failing=(), reason=None
    )
    return moved, [StageOpened(step.key, index)]


def _finish_stage(
    release: Release, step: Step, outcome: Outcome, by: str | None, now: datetime
) -> tuple[Release, list[Effect]]:
    """Record a satisfied stage and move to the next stage, or finish the step."""
    effects: list[Effect] = [StagePassed(step.key, step.stage, outcome, by)]
    done = replace(step, outcomes=(*step.outcomes, outcome), failing=(), deadline=None, reason=None)
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
    outcome = Outcome.MANUAL if step.current.manual else Outcome.APPROVED
    return _finish_stage(release, step, outcome, event.user, now)


def _on_results(
    release: Release, step: Step, event: StepEvent, now: datetime
) -> tuple[Release, list[Effect]]:
    """A check or an action ended: pass the stage, or block the step on what failed."""
    assert isinstance(event, CheckFinished | ActionFinished)
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


def offers_rollback(release: Release, step: Step, user: str) -> bool:
    """True when on-call stops the soak or a verification step: the rollback plan is offered."""
    return user == release.roles.on_call and (
        step.key in ROLLBACK_STEPS or step.phase in ROLLBACK_PHASES
    )


def _on_stop(
    release: Release, step: Step, event: StepEvent, now: datetime
) -> tuple[Release, list[Effect]]:
    assert isinstance(event, Stop)
    reason = event.reason.strip()
    if not reason:
        raise IllegalMove(Why.REASON_REQUIRED, action="stop")
    blocked = replace(
        step, status=StepStatus.BLOCKED, failing=(STOPPED,), reason=reason, deadline=None
    )
    stopped = StepStopped(step.key, event.user, reason, offers_rollback(release, step, event.user))
    return _with_step(release, blocked), [stopped]


def escalation_for(release: Release, owner: str) -> str | None:
    """Who is brought in when a step waits too long on `owner`: the commander, or on-call
    when the owner is the commander (nobody when the owner holds both)."""
    roles = release.roles
    for user in (roles.commander, roles.on_call):
        if user != owner:
            return user
    return None


def _on_remind(
    release: Release, step: Step, event: StepEvent, now: datetime
) -> tuple[Release, list[Effect]]:
    assert isinstance(event, Remind)
    owner = release.roles.user(step.owner)
    escalate_to = escalation_for(release, owner) if event.escalate else None
    return release, [Reminded(step.key, owner, escalate_to)]


def _on_snooze(
    release: Release, step: Step, event: StepEvent, now: datetime
) -> tuple[Release, list[Effect]]:
    assert isinstance(event, Snooze)
    return release, [Snoozed(step.key, event.user, now + SNOOZE)]


STEP_RULES: Mapping[tuple[StepStatus, type], StepHandler] = {
    (StepStatus.AWAITING, Approve): _on_approve,
    (StepStatus.RUNNING, CheckFinished): _on_results,
    (StepStatus.ACTING, ActionFinished): _on_results,
    (StepStatus.BLOCKED, Retry): _on_retry,
    (StepStatus.TIMING, TimerElapsed): _on_timer,
    **{
        (status, Stop): _on_stop
        for status in (StepStatus.AWAITING, StepStatus.RUNNING, StepStatus.ACTING)
    },
    (StepStatus.TIMING, Stop): _on_stop,
    **{(status, Remind): _on_remind for status in (StepStatus.AWAITING, StepStatus.BLOCKED)},
    **{(status, Snooze): _on_snooze for status in (StepStatus.AWAITING, StepStatus.BLOCKED)},
}

# Results that arrive for a step that has moved on are stale, not errors; so is a reminder
# that comes due just as its step moves.
STEP_IGNORED: frozenset[tuple[StepStatus, type]] = frozenset(
    {(status, CheckFinished) for status in StepStatus if status is not StepStatus.RUNNING}
    | {(status, ActionFinished) for status in StepStatus if status is not StepStatus.ACTING}
    | {(status, TimerElapsed) for status in StepStatus if status is not StepStatus.TIMING}
    | {
        (status, Remind)
        for status in StepStatus
        if status not in (StepStatus.AWAITING, StepStatus.BLOCKED)
    }
)


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
        raise IllegalMove(Why.NOT_A_FAILING_CHECK, name=name, failing=failing)
    if not event.reason.strip():
        raise IllegalMove(Why.REASON_REQUIRED, action="waive")
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
            raise IllegalMove(Why.NOT_COMPLETE_YET, release=release)
        if reason is not None and not reason.strip():
            raise IllegalMove(Why.REASON_REQUIRED, action=type(event).__name__.lower())
        ended = replace(release, status=status, reason=reason)
        effects: list[Effect] = [StatusChanged(status, event.user, reason)]
        if lift_freeze and release.frozen:
            ended = replace(ended, frozen=False)
            effects.append(FreezeChanged(False))
        return Transition(ended, tuple(effects))

    return handler


def _rollback(release: Release, event: Event, now: datetime) -> Transition:
    """Roll back at once, or — with rollback actions to run — propose the plan to confirm."""
    assert isinstance(event, Rollback)
    if not event.confirm:
        return _end(ReleaseStatus.ROLLED_BACK, lift_freeze=False)(release, event, now)
    if not event.reason.strip():
        raise IllegalMove(Why.REASON_REQUIRED, action="rollback")
    proposed = replace(release, proposed_rollback=event.reason)
    return Transition(proposed, (RollbackProposed(event.user, event.reason),))


def _confirm_rollback(release: Release, event: Event, now: datetime) -> Transition:
    """On-call confirms the plan: the release is rolled back and its rollback actions start."""
    assert isinstance(event, ConfirmRollback)
    reason = release.proposed_rollback
    if reason is None:
        raise IllegalMove(Why.NO_ROLLBACK_PROPOSED, release=release)
    ended = replace(
        release, status=ReleaseStatus.ROLLED_BACK, reason=reason, proposed_rollback=None
    )
    return Transition(
        ended,
        (
            StatusChanged(ReleaseStatus.ROLLED_BACK, event.user, reason),
            RollbackStarted(event.user, rollback_order(release)),
        ),
    )


def _handover(release: Release, event: Event, now: datetime) -> Transition:
    assert isinstance(event, Handover)
    old = release.roles.user(event.role)
    if event.to == old:
        raise IllegalMove(Why.ALREADY_HOLDS_ROLE, user=old, role=event.role)
    roles = replace(release.roles, **{event.role.value: event.to})
    return Transition(replace(release, roles=roles), (HandedOver(old, event.to, event.role),))


def _unfreeze(release: Release, event: Event, now: datetime) -> Transition:
    if not release.frozen:
        raise IllegalMove(Why.NOT_FROZEN)
    return Transition(replace(release, frozen=False), (FreezeChanged(False),))


def _allow_merge(release: Release, event: Event, now: datetime) -> Transition:
    assert isinstance(event, AllowMerge)
    if not release.frozen:
        raise IllegalMove(Why.NOT_FROZEN)
    if not event.reason.strip():
        raise IllegalMove(Why.REASON_REQUIRED, action="allow")
    return Transition(release, (MergeAllowed(event),))


def _take_freeze(release: Release, event: Event, now: datetime) -> Transition:
    assert isinstance(event, TakeFreeze)
    if not release.frozen:
        raise IllegalMove(Why.NOT_FROZEN)
    return Transition(replace(release, frozen=False), (FreezeTaken(event.to, event.user),))


_ABORTABLE = (ReleaseStatus.SCHEDULED, ReleaseStatus.ACTIVE)
# A freeze is held by a release that froze merges (or took a freeze over) until it completes,
# is aborted, or — rolled back — until its commander lifts it or hands it on.
_MAY_HOLD_FREEZE = (ReleaseStatus.SCHEDULED, ReleaseStatus.ACTIVE, ReleaseStatus.ROLLED_BACK)
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
    (ReleaseStatus.ACTIVE, Rollback): _rollback,
    (ReleaseStatus.COMPLETED, Rollback): _rollback,
    (ReleaseStatus.ACTIVE, ConfirmRollback): _confirm_rollback,
    (ReleaseStatus.COMPLETED, ConfirmRollback): _confirm_rollback,
    (ReleaseStatus.ROLLED_BACK, Unfreeze): _unfreeze,
    (ReleaseStatus.ROLLED_BACK, TakeFreeze): _take_freeze,
    **{(s, AllowMerge): _allow_merge for s in _MAY_HOLD_FREEZE},
    **{(s, Abort): _end(ReleaseStatus.ABORTED, lift_freeze=True) for s in _ABORTABLE},
    **{(s, Handover): _handover for s in _HANDOVER},
}


# ---------------------------------------------------------------------------------------------
# Who may: every rule about who may cause an event, enforced by `transition()` for every entry
# point (command, reaction, button, console). Events without a person (checks finishing,
# timers) are the bot's own.


class Holder(StrEnum):
    """Someone a permission names, resolved against the release's roles (and the event)."""

    COMMANDER = "commander"
    ON_CALL = "on_call"
    STEP_OWNER = "step_owner"  # whoever owns the step's current stage
    ROLE_HOLDER = "role_holder"  # whoever holds the role a handover moves
    INCOMING_ON_CALL = "incoming_on_call"  # the person a handover of on-call names


PERMISSIONS: Mapping[type, tuple[Holder, ...]] = {
    Approve: (Holder.STEP_OWNER,),
    Retry: (Holder.COMMANDER, Holder.STEP_OWNER),
    Waive: (Holder.COMMANDER,),
    Abort: (Holder.COMMANDER,),
    Complete: (Holder.COMMANDER,),
    Handover: (Holder.COMMANDER, Holder.ROLE_HOLDER, Holder.INCOMING_ON_CALL),
    Unfreeze: (Holder.COMMANDER,),
    AllowMerge: (Holder.COMMANDER,),
    TakeFreeze: (Holder.COMMANDER,),
    Rollback: (Holder.ON_CALL,),
    Stop: (Holder.STEP_OWNER, Holder.COMMANDER, Holder.ON_CALL),
    Snooze: (Holder.STEP_OWNER, Holder.COMMANDER),
    ConfirmRollback: (Holder.ON_CALL,),
}
# Holders who can be told apart only once the event is known (its step, its role).
EVENT_HOLDERS = frozenset({Holder.STEP_OWNER, Holder.ROLE_HOLDER, Holder.INCOMING_ON_CALL})


def _holder_id(release: Release, holder: Holder, event: Event | None) -> str | None:
    if holder is Holder.COMMANDER:
        return release.roles.commander
    if holder is Holder.ON_CALL:
        return release.roles.on_call
    if holder is Holder.ROLE_HOLDER:
        role = getattr(event, "role", None)
        return release.roles.user(role) if isinstance(role, Role) else None
    if holder is Holder.INCOMING_ON_CALL:
        to = getattr(event, "to", None)
        return to if getattr(event, "role", None) is Role.ON_CALL else None
    return release.roles.user(release.step(getattr(event, "step", None) or "").owner)


def holders(release: Release, event: Event) -> tuple[tuple[Holder, str], ...]:
    """Who may cause this event in this release: each holder with the user id behind it."""
    found = ((h, _holder_id(release, h, event)) for h in PERMISSIONS.get(type(event), ()))
    return tuple((h, uid) for h, uid in found if uid is not None)


def _refuse(
    release: Release,
    kind: type,
    user: str | None,
    allowed: tuple[tuple[Holder, str], ...],
    event: Event | None,
) -> None:
    if not allowed or user is None or any(user == uid for _, uid in allowed):
        return
    raise NotAllowed(
        Why.NOT_ALLOWED,
        action=kind.__name__.lower(),
        holders=allowed,
        step=getattr(event, "step", None),
        release=release,
        role=getattr(event, "role", None),
    )


def authorize(release: Release, event: Event) -> None:
    """NotAllowed unless the event's user holds one of the roles allowed to cause it."""
    _refuse(release, type(event), getattr(event, "user", None), holders(release, event), event)


def authorize_kind(release: Release, kind: type, user: str) -> None:
    """Refuse early, before a command is parsed, when nothing in the command could make `user`
    allowed (no step they own, no role they hold).

    Only a shortcut for a clearer reply: `authorize()` still decides every event.
    """
    allowed = PERMISSIONS.get(kind, ())
    if EVENT_HOLDERS & set(allowed):
        return
    found = ((h, _holder_id(release, h, None)) for h in allowed)
    _refuse(release, kind, user, tuple((h, uid) for h, uid in found if uid is not None), None)
