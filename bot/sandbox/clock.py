"""Injectable clocks: a callable returning an aware UTC datetime."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The real time, in UTC."""
    return datetime.now(UTC)


class ManualClock:
    """A clock that only moves when told to, for deterministic tests and demos."""

    def __init__(self, start: datetime | None = None) -> None:
        """Start at `start` (naive values are taken as UTC), or at the real time now."""
        moment = start or utc_now()
        self._now = moment if moment.tzinfo else moment.replace(tzinfo=UTC)

    def __call__(self) -> datetime:
        """The current (frozen) time."""
        return self._now

    def advance(self, seconds: float) -> datetime:
        """Move the clock forward by `seconds` and return the new time."""
        self._now += timedelta(seconds=seconds)
        return self._now

    def set(self, moment: datetime) -> None:
        """Jump to `moment` (naive values are taken as UTC)."""
        self._now = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
