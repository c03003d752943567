"""Shared fixtures: an HTTP client and a frozen clock for the sandbox fakes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest

from bot.domain.clock import FakeClock

START = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)


@pytest.fixture
def clock() -> FakeClock:
    """A clock frozen at 2026-11-20 09:30 UTC that moves only when told."""
    return FakeClock(START)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """A plain httpx client with a short timeout."""
    async with httpx.AsyncClient(timeout=5.0) as http:
        yield http
