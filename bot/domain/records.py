"""Records as the store hands them out: frozen rows that the engine and render read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

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


@dataclass(frozen=True)
class Wait:
    """One step's wait on a person, as stored: since when, its reminders, its snooze."""

    step_key: str
    since: datetime
    reminded_at: datetime | None
    reminders: int
    snoozed_until: datetime | None
