"""Checks speak to providers as their published docs say: unit tests with in-process transports.

The integration tests against the sandbox's real servers live in tests/test_preconditions.py and
tests/sandbox/test_checks_against_fakes.py.
"""

from __future__ import annotations

import httpx
import pytest

from checks.base import Status
from checks.http import ProviderError, RateLimited, read_json
from checks.incidents import MAX_PAGES, check_incidents
from checks.registry import Challenge, Credentials, RegistryClient, parse_challenges


async def test_incident_pages_beyond_the_cap_are_an_error() -> None:
    """PagerDuty answering `more: true` with a full page for ever stops at the page cap with an
    error, never a pass."""
    calls: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        incident = {"id": f"Q{len(calls)}", "incident_number": len(calls), "status": "triggered"}
        return httpx.Response(200, json={"incidents": [incident], "more": True})

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        result = await check_incidents(
            client, base_url="https://api.pagerduty.test", token="t", service_ids=[]
        )
    assert result.status is Status.ERROR
    assert result.summary.startswith("PagerDuty kept answering further pages")
    assert len(calls) == MAX_PAGES


def _registry(realm: str, seen: list[httpx.Request]) -> httpx.MockTransport:
    """A registry at registry.test whose token realm is `realm` (Docker Hub style)."""

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.host == "registry.test":
            if request.headers.get("authorization") == "Bearer pulled":
                return httpx.Response(200, json={"name": "app", "tags": ["1.0.0"]})
            challenge = (
                f'Bearer realm="{realm}",service="registry.test",'
                'scope="repository:team/app:pull,push"'
            )
            return httpx.Response(401, headers={"WWW-Authenticate": challenge}, json={})
        return httpx.Response(200, json={"access_token": "pulled"})

    return httpx.MockTransport(answer)


async def test_registry_credentials_go_only_to_an_https_realm() -> None:
    """Basic credentials go to a token realm on another host only over HTTPS (with the
    challenge's service and scope); an http realm elsewhere is an error and is never called."""
    seen: list[httpx.Request] = []
    login = Credentials("ci", "s3cret")
    transport = _registry("https://auth.other.test/token", seen)
    async with httpx.AsyncClient(transport=transport) as client:
        oci = RegistryClient(client, "https://registry.test", credentials=login)
        assert await oci.list_tags("team/app") == ["1.0.0"]
    realm = next(r for r in seen if r.url.host == "auth.other.test")
    assert realm.headers["authorization"] == login.header()
    assert realm.url.params["scope"] == "repository:team/app:pull,push"
    assert realm.url.params["service"] == "registry.test"
    seen.clear()
    transport = _registry("http://auth.other.test/token", seen)
    async with httpx.AsyncClient(transport=transport) as client:
        oci = RegistryClient(client, "https://registry.test", credentials=login)
        with pytest.raises(ProviderError, match=r"auth\.other\.test is not HTTPS"):
            await oci.list_tags("team/app")
    assert [r.url.host for r in seen] == ["registry.test"]


def test_challenges_parse_quoted_commas() -> None:
    """A challenge's quoted values keep their commas; several challenges are all read."""
    response = httpx.Response(
        401,
        headers=[
            ("WWW-Authenticate", 'Bearer realm="https://a/t",scope="repository:x:pull,push"'),
            ("WWW-Authenticate", 'Basic realm="registry"'),
        ],
    )
    bearer, basic = parse_challenges(response)
    assert bearer == Challenge(
        "bearer", {"realm": "https://a/t", "scope": "repository:x:pull,push"}
    )
    assert basic == Challenge("basic", {"realm": "registry"})


@pytest.mark.parametrize(
    ("status", "headers", "body", "wait"),
    [
        (403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1000120"}, {}, 120.0),
        (429, {"retry-after": "30"}, {}, 30.0),
        (403, {"retry-after": "Mon, 12 Jan 1970 13:48:20 GMT"}, {}, 100.0),
        (403, {}, {"message": "You have exceeded a secondary rate limit."}, 60.0),
        (403, {}, {"message": "Resource not accessible by integration"}, None),
    ],
)
def test_rate_limit_answers_are_told_apart_from_refused_credentials(
    status: int, headers: dict[str, str], body: dict[str, str], wait: float | None
) -> None:
    """403/429 with GitHub's rate-limit headers, retry-after (seconds, or a date read against
    the given clock) or a rate-limit message is rate limiting; a plain 403 is credentials."""
    request = httpx.Request("GET", "https://api.github.test/repos/a/b")
    response = httpx.Response(status, headers=headers, json=body, request=request)
    if wait is None:
        with pytest.raises(ProviderError, match="refused the credentials") as refused:
            read_json(response, "GitHub")
        assert not isinstance(refused.value, RateLimited)
        return
    with pytest.raises(RateLimited, match="is rate-limiting golive") as limited:
        read_json(response, "GitHub")
    assert limited.value.wait_from(1_000_000.0) == pytest.approx(wait)
