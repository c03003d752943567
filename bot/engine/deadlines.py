"""Deadlines: activation at T-30, kickoff at T-0, step timers (the soak) and reminders of steps
waiting on a person, from the database.

Nothing is kept in memory: every due time is read from the stored releases (and the stored
reminders of each wait), so a restart fires what came due while golive was down — once, not
once per missed interval — and waits for the rest.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from bot.domain.clock import Clock
from bot.domain.config import RemindersConfig
from bot.domain.errors import GoliveError
from bot.domain.events import Activate, Event, Evidence, Kickoff, Remind, TimerElapsed, Transition
from bot.domain.model import KICKOFF_PHASES, Release, ReleaseStatus, StepStatus
from bot.store import Store, Wait

log = logging.getLogger(__name__)

Apply = Callable[[int, Event, str | None], Transition]
BreachesOf = Callable[[int], tuple[str, ...]]
EvidenceOf = Callable[[int], Evidence | None]


class Deadlines:
    """Fires the stored deadlines whose time has come."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        apply: Apply,
        breaches_of: BreachesOf,
        evidence_of: EvidenceOf,
        reminders: RemindersConfig | None = None,
    ) -> None:
        """`breaches_of(release)` names what stands against widening when a soak ends, and
        `evidence_of(release)` counts the soak's conclusive ticks; `reminders` says when a
        step waiting on a person is brought up again."""
        self.store = store
        self.clock = clock
        self._apply = apply
        self._breaches_of = breaches_of
        self._evidence_of = evidence_of
        self.reminders = reminders or RemindersConfig()

    def reminder_due(self, wait: Wait) -> datetime:
        """When a wait's next reminder is due: `after` its start, then `every` after the last
        reminder (never sooner), and not before a snooze ends."""
        policy = self.reminders
        due = wait.since + policy.after
        if wait.reminded_at is not None:
            due = wait.reminded_at + policy.every
        if wait.snoozed_until is not None and wait.snoozed_until > due:
            due = wait.snoozed_until
        return due

    def _reminders(self, release: Release, now: datetime | None) -> list[tuple[datetime, Event]]:
        """The next reminder of every step waiting on a person; escalated once the wait has
        lasted `escalate_after` when it fires (`now`)."""
        waiting = [s for s in release.steps if s.waits_on_people]
        if not waiting:
            return []
        waits = self.store.waits(release.id)
        due: list[tuple[datetime, Event]] = []
        for step in waiting:
            wait = waits.get(step.key)
            if wait is None:
                continue
            moment = self.reminder_due(wait)
            late = now is not None and now - wait.since >= self.reminders.escalate_after
            due.append((moment, Remind(step.key, escalate=late)))
        return due

    def _due_times(self, now: datetime | None = None) -> list[tuple[datetime, int, Event]]:
        due: list[tuple[datetime, int, Event]] = []
        statuses = (ReleaseStatus.SCHEDULED.value, ReleaseStatus.ACTIVE.value)
        for rid in self.store.release_ids(statuses=statuses):
            record = self.store.load(rid)
            release = record.release
            if release.status is ReleaseStatus.SCHEDULED and record.activate_at is not None:
                due.append((record.activate_at, rid, Activate()))
                continue
            if (
                release.kickoff_at is not None
                and release.phase in KICKOFF_PHASES
                and all(
                    s.status is StepStatus.PENDING
                    for s in release.steps
                    if s.phase is release.phase
                )
            ):
                due.append((release.kickoff_at, rid, Kickoff()))
            due.extend(
                (s.deadline, rid, TimerElapsed(s.key))
                for s in release.steps
                if s.status is StepStatus.TIMING and s.deadline is not None
            )
            if release.status is ReleaseStatus.ACTIVE:
                due.extend((moment, rid, event) for moment, event in self._reminders(release, now))
        return due

    def next_due(self) -> datetime | None:
        """The earliest stored deadline (activation, kickoff, a timer), if any."""
        due = self._due_times()
        return min(d[0] for d in due) if due else None

    def fire_due(self) -> int:
        """Apply every timer whose time has come; returns how many fired."""
        now = self.clock.now()
        fired = 0
        for moment, rid, event in sorted(self._due_times(now), key=lambda d: d[0]):
            if moment > now:
                break
            if isinstance(event, TimerElapsed):
                event = TimerElapsed(event.step, self._breaches_of(rid), self._evidence_of(rid))
            try:
                if self._apply(rid, event, None).effects:
                    fired += 1
            except GoliveError as exc:
                log.warning("timer for release %s refused: %s", rid, exc.why.value)
        return fired
