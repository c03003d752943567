"""Checks against the fakes' real HTTP servers, one provider behaviour at a time (the shared
`clock` is the fakes' and golive's, moving only when a check sleeps)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from bot.sandbox import FakeClock, FakeGitHub, FakeProduct, FakeRegistry
from bot.sandbox.github import DEFAULT_TOKEN as GITHUB_TOKEN
from checks.base import CheckResult, Status
from checks.ci import check_ci
from checks.health import Expectation, check_health
from checks.registry import RegistryClient

REPO = "acme/platform"
IMAGE = "platform/billing-api"


@pytest.fixture
async def github(clock: FakeClock) -> AsyncIterator[FakeGitHub]:
    """A FakeGitHub on the shared clock with `build` green on main."""
    async with FakeGitHub(clock=clock) as fake:
        fake.set_check_run(REPO, "main", "build")
        yield fake


async def ci(
    client: httpx.AsyncClient, github: FakeGitHub, clock: FakeClock, wait: float
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
    client: httpx.AsyncClient, github: FakeGitHub, clock: FakeClock, switch: str, status: int
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
    client: httpx.AsyncClient, clock: FakeClock, ttl: int | None, lifetime: int
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
    client: httpx.AsyncClient, clock: FakeClock
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


async def _no_sleep(_: float) -> None:
    return None


@pytest.mark.parametrize(
    ("answer", "expect", "status", "words"),
    [
        (None, Expectation(), Status.PASS, "is healthy (200"),
        ("empty", Expectation(), Status.ERROR, "answered HTTP 204 with an empty body"),
        ("empty", Expectation(status=204), Status.PASS, "is healthy (204"),
        ("login_page", Expectation(), Status.ERROR, "answered a sign-in page"),
        ("login_page", Expectation(json={"status": "ok"}), Status.ERROR, "sign-in page"),
        ("degraded", Expectation(), Status.PASS, "is healthy (200"),
        ("degraded", Expectation(json={"status": "ok"}), Status.FAIL, 'status is "degraded"'),
        ("degraded", Expectation(text='"status": "ok"'), Status.FAIL, "does not contain"),
        (None, Expectation(status=200, text='"status": "ok"'), Status.PASS, "is healthy"),
    ],
)
async def test_health_answers_are_judged_by_what_a_healthy_answer_looks_like(
    client: httpx.AsyncClient,
    clock: FakeClock,
    answer: str | None,
    expect: Expectation,
    status: Status,
    words: str,
) -> None:
    """Undeclared: a 2xx with a body passes, a 204 or a sign-in page is an error; declared
    status, JSON subset or text decide when given."""
    async with FakeProduct(clock=clock) as product:
        product.set_health_answer("billing-api", answer)
        result = await check_health(
            client,
            "billing-api",
            f"{product.url}/health/billing-api",
            expect=expect,
            sleep=_no_sleep,
        )
    assert result.status is status, result
    assert words in result.summary


async def test_health_html_where_json_was_declared_is_an_error(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    """An HTML page (without a password form) where JSON was declared is an error."""
    async with FakeProduct(clock=clock) as product:
        product.set_notes("page", "<html><body>It works!</body></html>")
        result = await check_health(
            client,
            "web-portal",
            f"{product.url}/notes/page",
            expect=Expectation(json={"status": "ok"}),
            sleep=_no_sleep,
        )
    assert result.status is Status.ERROR
    assert "answered an HTML page where JSON was declared" in result.summary
