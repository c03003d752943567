"""Records as the store hands them out: frozen rows that the engine and render read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.domain.config import Shortened
from bot.domain.model import Release


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
    next_attempt_at: datetime | None
    ts: str | None
    error: str | None
    created_at: datetime


@dataclass(frozen=True)
class ReleaseRecord:
    """A release row with what the runbook state does not carry."""

    release: Release
    created_at: datetime
    created_by: str
    ended_at: datetime | None
    frozen_at: datetime | None
    activate_at: datetime | None
    card_message: int | None
    baseline: dict[str, Any] | None
    shortened: Shortened | None = None  # the runbook minimums its config ran below, and why
    closed_at: datetime | None = None  # when its monitoring ended and the release closed


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
    started_at: datetime | None
    finished_at: datetime | None

    @property
    def finished(self) -> bool:
        """True once the run has an outcome."""
        return self.state in ("succeeded", "failed", "skipped")


@dataclass(frozen=True)
class Wait:
    """One step's wait on a person, as stored: since when, its reminders, its snooze."""

    step_key: str
    since: datetime
    reminded_at: datetime | None
    reminders: int
    snoozed_until: datetime | None
