"""Checks against the sandbox's real HTTP servers, one provider behaviour at a time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest

from bot.sandbox import FakeGitHub, ManualClock
from bot.sandbox.github import DEFAULT_TOKEN as GITHUB_TOKEN
from checks.base import CheckResult, Status
from checks.ci import check_ci

START = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
REPO = "acme/platform"


@pytest.fixture
def clock() -> ManualClock:
    """The providers' and golive's shared clock, moving only when a check sleeps."""
    return ManualClock(START)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """A plain httpx client."""
    async with httpx.AsyncClient(timeout=5.0) as http:
        yield http


@pytest.fixture
async def github(clock: ManualClock) -> AsyncIterator[FakeGitHub]:
    """A FakeGitHub on the shared clock with `build` green on main."""
    async with FakeGitHub(clock=clock) as fake:
        fake.set_check_run(REPO, "main", "build")
        yield fake


async def ci(
    client: httpx.AsyncClient, github: FakeGitHub, clock: ManualClock, wait: float
) -> tuple[list[CheckResult], list[float]]:
    """check_ci against the fake, sleeping on the shared clock; (results, seconds slept)."""
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.advance(seconds)

    results = await check_ci(
        client,
        base_url=github.url,
        repository=REPO,
        ref="main",
        token=GITHUB_TOKEN,
        required=["build"],
        wait=wait,
        poll=5.0,
        sleep=sleep,
        monotonic=lambda: clock().timestamp(),
        wall_clock=lambda: clock().timestamp(),
    )
    return results, slept


@pytest.mark.parametrize(
    ("switch", "status"),
    [("primary_rate_limit", 403), ("secondary_rate_limit", 429), ("secondary_rate_limit", 403)],
)
async def test_ci_waits_out_a_rate_limit_within_wait(
    client: httpx.AsyncClient, github: FakeGitHub, clock: ManualClock, switch: str, status: int
) -> None:
    """A rate-limited GitHub (x-ratelimit-reset, or retry-after) is asked again once the limit
    lifts, and the verdict is GitHub's real one."""
    github.set_fault_switch(switch, seconds=90, status=status)
    [result], slept = await ci(client, github, clock, wait=600)
    assert result.status is Status.PASS, result
    assert slept == [90.0]
    assert len(github.requests_to("/repos")) == 3  # refused once, then check runs and status
