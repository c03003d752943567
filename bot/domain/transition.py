"""`transition()`: one event applied to a release at `now`, through the rules' tables.

It never reads the clock, the database or the network.
"""

from __future__ import annotations

from datetime import datetime

from bot.domain.errors import IllegalMove, Why
from bot.domain.events import (
    BOT_STEP_EVENTS,
    ActionFinished,
    Activate,
    Approve,
    CheckFinished,
    Event,
    Kickoff,
    Remind,
    Retry,
    Snooze,
    StepEvent,
    Stop,
    TimerElapsed,
    Transition,
)
from bot.domain.model import Release, ReleaseStatus
from bot.domain.rules import (
    RELEASE_RULES,
    STEP_IGNORED,
    STEP_RULES,
    authorize,
    open_ready_steps,
)


def _apply_step_event(release: Release, event: StepEvent, now: datetime) -> Transition:
    if release.status is not ReleaseStatus.ACTIVE:
        if isinstance(event, BOT_STEP_EVENTS):
            return Transition(release)
        raise IllegalMove(Why.RELEASE_NOT_ACTIVE, release=release)
    step = release.step(event.step)
    handler = STEP_RULES.get((step.status, type(event)))
    if handler is None:
        if (step.status, type(event)) in STEP_IGNORED:
            return Transition(release)
        raise IllegalMove(
            Why.STEP_REFUSES, release=release, step=step, event=type(event).__name__.lower()
        )
    authorize(release, event)
    moved, effects = handler(release, step, event, now)
    opened, more = open_ready_steps(moved, now)
    return Transition(opened, tuple(effects + more))


def transition(release: Release, event: Event, now: datetime) -> Transition:
    """Apply one event to a release at time `now`.

    IllegalMove when the runbook's tables do not allow the event now; NotAllowed when they do
    but its user holds none of the roles the permission table names.
    """
    if isinstance(
        event,
        CheckFinished | ActionFinished | Approve | Retry | TimerElapsed | Stop | Remind | Snooze,
    ):
        return _apply_step_event(release, event, now)
    handler = RELEASE_RULES.get((release.status, type(event)))
    if handler is None:
        if isinstance(event, Kickoff | Activate):
            return Transition(release)  # a late timer for a release that moved on
        raise IllegalMove(Why.RELEASE_REFUSES, release=release, event=type(event).__name__.lower())
    authorize(release, event)
    return handler(release, event, now)
