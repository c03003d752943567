"""Checks against the sandbox's real HTTP servers, one provider behaviour at a time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest

from bot.sandbox import FakeGitHub, FakeRegistry, ManualClock
from bot.sandbox.github import DEFAULT_TOKEN as GITHUB_TOKEN
from checks.base import CheckResult, Status
from checks.ci import check_ci
from checks.registry import RegistryClient

START = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
REPO = "acme/platform"
IMAGE = "platform/billing-api"


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


@pytest.mark.parametrize(("ttl", "lifetime"), [(None, 60), (300, 300)])
async def test_registry_token_is_cached_until_it_expires(
    client: httpx.AsyncClient, clock: ManualClock, ttl: int | None, lifetime: int
) -> None:
    """A pull token is reused until `expires_in` (60 s when the realm leaves it out) has
    passed on the injected clock; then the next request is challenged and a new one fetched."""
    async with FakeRegistry(auth="anonymous", token_ttl=ttl, clock=clock) as registry:
        registry.set_tags(IMAGE, ["2.3.0", "2.3.1"])
        oci = RegistryClient(client, registry.url, now=lambda: clock().timestamp())
        assert await oci.list_tags(IMAGE) == ["2.3.0", "2.3.1"]
        clock.advance(lifetime - 1)
        await oci.list_tags(IMAGE)
        assert len(registry.issued) == 1
        assert len(registry.requests_to("/v2/")) == 3  # challenged once, then straight through
        clock.advance(2)
        await oci.list_tags(IMAGE)
        assert len(registry.issued) == 2


async def test_registry_pages_with_and_without_link(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    """Tag pages are followed through `Link`, and without it through `last=` while pages come
    back full; both read every tag once."""
    tags = [f"1.{i}.0" for i in range(7)]
    for links in (True, False):
        async with FakeRegistry(token=None, links=links, page_size=3, clock=clock) as registry:
            registry.set_tags(IMAGE, tags)
            oci = RegistryClient(client, registry.url)
            assert await oci.list_tags(IMAGE, page_size=3) == sorted(tags)
            assert len(registry.requests_to("/v2/")) == 3
