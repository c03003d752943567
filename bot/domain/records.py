"""Records as the store hands them out: frozen rows that the engine and render read.

Each is one stored row with its JSON columns decoded and its times as datetimes; the store
builds them with `bot.domain.serial.load`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.domain.config import Shortened
from bot.domain.model import Release, ReleaseStatus
from bot.domain.serial import Moment


@dataclass(frozen=True)
class OutboxRow:
    """One message waiting for (or done with) delivery."""

    id: int
    release_id: int | None
    channel: str
    kind: str
    text: str
    blocks: list[dict[str, Any]] | None
    thread_of: int | None
    user: str | None
    step_key: str | None
    update_of: int | None
    file: dict[str, Any] | None
    status: str
    attempts: int
    next_attempt_at: Moment | None
    ts: str | None
    error: str | None
    created_at: Moment


@dataclass(frozen=True)
class ReleaseRecord:
    """A release row with what the runbook state does not carry."""

    release: Release
    created_at: Moment
    created_by: str
    ended_at: Moment | None
    frozen_at: Moment | None
    activate_at: Moment | None
    card_message: int | None
    baseline: dict[str, Any] | None
    shortened: Shortened | None = None  # the runbook minimums its config ran below, and why
    closed_at: Moment | None = None  # when its monitoring ended and the release closed


@dataclass(frozen=True)
class ActionRun:
    """One run of a step's action for one target (a service, or "" for the whole step).

    `state`: pending (not started), dispatching (golive is asking the provider to start it; a
    restart in this state must not ask again), running (the provider's `run_id` is known and
    followed), succeeded, failed, or skipped (a rollback stopped before it).
    """

    id: int
    release_id: int
    step_key: str
    attempt: int
    seq: int
    target: str
    kind: str
    state: str
    run_id: str | None
    url: str | None
    token: str
    detail: str | None
    evidence: dict[str, Any]
    started_at: Moment | None
    finished_at: Moment | None

    @property
    def finished(self) -> bool:
        """True once the run has an outcome."""
        return self.state in ("succeeded", "failed", "skipped")


@dataclass(frozen=True)
class Wait:
    """One step's wait on a person, as stored: since when, its reminders, its snooze."""

    step_key: str
    since: Moment
    reminded_at: Moment | None
    reminders: int
    snoozed_until: Moment | None


# -- releases ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReleaseRow:
    """A release's own row without its steps: what the history and the merge freeze show."""

    id: int
    channel: str
    version: str
    status: ReleaseStatus
    commander: str
    created_at: Moment
    created_by: str | None
    reason: str | None
    frozen_at: Moment | None


@dataclass(frozen=True)
class MonitoringWindow:
    """A release's heightened (or post-rollback) monitoring: which period, and until when."""

    release_id: int
    period: str
    until: Moment


# -- the timeline --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Approval:
    """Who approved (or confirmed by hand, `outcome` manual) which stage of a step, how, when."""

    id: int
    release_id: int
    step_key: str
    stage: int
    user: str
    outcome: str
    via: str
    note: str | None
    at: Moment


@dataclass(frozen=True)
class CheckRow:
    """One stored check verdict with its evidence."""

    id: int
    release_id: int
    step_key: str
    attempt: int
    name: str
    status: str
    summary: str
    evidence: dict[str, Any]
    duration: float
    at: Moment


@dataclass(frozen=True)
class Waiver:
    """A check failure the commander waived, with who and why."""

    id: int
    release_id: int
    name: str
    step_key: str
    user: str
    reason: str
    at: Moment


@dataclass(frozen=True)
class Note:
    """A note or follow-up (`kind` note or followup) on a release's record."""

    id: int
    release_id: int
    kind: str
    user: str
    owner: str | None
    text: str
    at: Moment


@dataclass(frozen=True)
class TimelineEvent:
    """One entry of a release's append-only timeline."""

    id: int
    release_id: int | None
    at: Moment
    type: str
    actor: str | None
    data: dict[str, Any]


@dataclass(frozen=True)
class Reminder:
    """A reminder, an escalation or a snooze (`kind`) of the wait that began at `since`."""

    id: int
    release_id: int
    step_key: str
    since: Moment
    kind: str
    user: str | None
    at: Moment
    until: Moment | None


# -- monitoring ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """One monitoring tick: its figures (None where unmeasured) and each signal's verdict."""

    id: int
    release_id: int
    period: str
    at: Moment
    requests: float | None
    errors: float | None
    ratio: float | None
    p95: float | None
    verdicts: dict[str, Any]


@dataclass(frozen=True)
class AlertState:
    """One signal's alert tracker, as stored (checks.judgment.AlertTracker, dumped)."""

    release_id: int
    signal: str
    state: dict[str, Any]
    updated_at: Moment


@dataclass(frozen=True)
class Alert:
    """An alert golive raised (open, remind, recover, blind, sight) for a release's record."""

    id: int
    release_id: int
    signal: str
    action: str
    summary: str
    dedup_key: str | None
    at: Moment


# -- the merge freeze ----------------------------------------------------------------------------


@dataclass(frozen=True)
class GateStatus:
    """The merge-gate status golive last set on a commit, and when GitHub was seen to carry it."""

    repository: str
    sha: str
    pr_number: int | None
    state: str
    description: str | None
    release_id: int | None
    posted_at: Moment | None
    verified_at: Moment | None


@dataclass(frozen=True)
class MergeAllowance:
    """A pull request head the commander let through a release's freeze, and why."""

    id: int
    release_id: int
    pr_number: int
    sha: str
    title: str
    user: str
    reason: str
    at: Moment


# -- incoming ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InboxEntry:
    """A Slack event or click kept before it was acknowledged, and what became of it."""

    id: int
    key: str
    kind: str
    payload: dict[str, Any]
    received_at: Moment
    status: str
    outcome: str | None
    error: str | None
    done_at: Moment | None
