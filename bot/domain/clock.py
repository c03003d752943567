"""Injected time: the engine never reads the wall clock directly."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

# The sandbox's fakes take the time as a plain callable (`FakeClock` is one, `utc_now` another).
Now = Callable[[], datetime]


class Clock(Protocol):
    """Something that tells the current UTC time."""

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class SystemClock:
    """The real wall clock."""

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        return datetime.now(UTC)


def utc_now() -> datetime:
    """The real time, in UTC."""
    return datetime.now(UTC)


class FakeClock:
    """A clock that moves only when told to, for tests, rehearsals and the sandbox's fakes.

    It is a `Clock` (`now()`) and a `Now` (called), so one fake time can drive golive and the
    fakes it talks to.
    """

    def __init__(self, start: datetime | None = None) -> None:
        """Start at `start` (naive values are taken as UTC), or at 2026-11-27 12:00 UTC."""
        moment = start or datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
        self._now = moment if moment.tzinfo else moment.replace(tzinfo=UTC)

    def now(self) -> datetime:
        """The current fake time."""
        return self._now

    def __call__(self) -> datetime:
        """The current fake time (as the sandbox's fakes ask for it)."""
        return self._now

    def advance(self, seconds: float) -> datetime:
        """Move time forward and return the new now."""
        self._now += timedelta(seconds=seconds)
        return self._now

    def set(self, when: datetime) -> None:
        """Jump to a given instant (naive values are taken as UTC)."""
        self._now = when if when.tzinfo else when.replace(tzinfo=UTC)


def utc_iso(when: datetime) -> str:
    """The canonical stored form of a timestamp: ISO 8601 in UTC with seconds."""
    return when.astimezone(UTC).isoformat(timespec="seconds")


def parse_iso(text: str) -> datetime:
    """Read a timestamp stored by utc_iso."""
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)
