"""FakeRegistry speaks the OCI distribution API: base check, tag listing, manifests, auth."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from bot.sandbox import FakeClock, FakeRegistry
from bot.sandbox.registry import DEFAULT_PASSWORD, DEFAULT_TOKEN, DEFAULT_USERNAME

AUTH = {"Authorization": f"Bearer {DEFAULT_TOKEN}"}
IMAGE = "platform/billing-api"
TAGS = ["2.2.0", "2.3.0", "2.3.1", "2.4.0-rc.1", "2.10.0"]


@pytest.fixture
async def registry() -> AsyncIterator[FakeRegistry]:
    """A token-protected registry holding one image with five tags."""
    fake = FakeRegistry()
    fake.set_tags(IMAGE, TAGS)
    async with fake:
        yield fake


async def all_tags(client: httpx.AsyncClient, base: str, first: str) -> tuple[list[str], int]:
    """Every tag, following `Link: <...>; rel="next"` (relative URLs) like a registry client."""
    tags: list[str] = []
    url: str | None = base + first
    pages = 0
    while url:
        response = await client.get(url, headers=AUTH)
        assert response.status_code == 200
        tags += response.json()["tags"]
        pages += 1
        link = response.links.get("next", {}).get("url")
        url = base + link if link else None
    return tags, pages


async def test_base_endpoint(registry: FakeRegistry, client: httpx.AsyncClient) -> None:
    """GET /v2/ answers 200 {} with the distribution API version header."""
    response = await client.get(f"{registry.url}/v2/", headers=AUTH)
    assert (response.status_code, response.json()) == (200, {})
    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"


async def test_missing_token_is_challenged(
    registry: FakeRegistry, client: httpx.AsyncClient
) -> None:
    """Without the bearer token: 401 UNAUTHORIZED and a Bearer realm challenge to follow."""
    response = await client.get(f"{registry.url}/v2/{IMAGE}/tags/list")
    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == "UNAUTHORIZED"
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="')
    assert f'scope="repository:{IMAGE}:pull"' in challenge
    realm = challenge.split('"')[1]
    denied = await client.get(realm, auth=("ci", "wrong"))
    assert denied.status_code == 401
    issued = await client.get(
        realm, params={"scope": f"repository:{IMAGE}:pull"}, auth=("ci", DEFAULT_TOKEN)
    )
    token = issued.json()["token"]
    listed = await client.get(
        f"{registry.url}/v2/{IMAGE}/tags/list", headers={"Authorization": f"Bearer {token}"}
    )
    assert listed.status_code == 200


async def test_tags_list_slash_names_and_lexical_order(
    registry: FakeRegistry, client: httpx.AsyncClient
) -> None:
    """A name with a slash lists all its tags in lexical order when n is absent."""
    body = (await client.get(f"{registry.url}/v2/{IMAGE}/tags/list", headers=AUTH)).json()
    assert body == {"name": IMAGE, "tags": sorted(TAGS)}


async def test_n_and_last_paginate_with_link(
    registry: FakeRegistry, client: httpx.AsyncClient
) -> None:
    """n=2 pages through the tags via Link rel="next" carrying last= and n=."""
    first = await client.get(f"{registry.url}/v2/{IMAGE}/tags/list?n=2", headers=AUTH)
    assert first.json()["tags"] == sorted(TAGS)[:2]
    assert first.headers["Link"] == (
        f'</v2/{IMAGE}/tags/list?last={sorted(TAGS)[1]}&n=2>; rel="next"'
    )
    tags, pages = await all_tags(client, registry.url, f"/v2/{IMAGE}/tags/list?n=2")
    assert (tags, pages) == (sorted(TAGS), 3)


async def test_page_size_override_forces_paging(
    registry: FakeRegistry, client: httpx.AsyncClient
) -> None:
    """With page_size set the registry pages even when the client sends no n."""
    registry.page_size = 2
    tags, pages = await all_tags(client, registry.url, f"/v2/{IMAGE}/tags/list")
    assert (tags, pages) == (sorted(TAGS), 3)


async def test_unknown_repository(registry: FakeRegistry, client: httpx.AsyncClient) -> None:
    """An unknown repository is 404 NAME_UNKNOWN with the name in the detail."""
    response = await client.get(f"{registry.url}/v2/platform/ghost/tags/list", headers=AUTH)
    assert response.status_code == 404
    assert response.json() == {
        "errors": [
            {
                "code": "NAME_UNKNOWN",
                "message": "repository name not known to registry",
                "detail": {"name": "platform/ghost"},
            }
        ]
    }


async def test_manifest_head_for_existing_tag(
    registry: FakeRegistry, client: httpx.AsyncClient
) -> None:
    """HEAD on a tag's manifest is 200 with a digest; a missing tag is 404 MANIFEST_UNKNOWN."""
    found = await client.head(f"{registry.url}/v2/{IMAGE}/manifests/2.3.1", headers=AUTH)
    assert found.status_code == 200
    assert found.headers["Docker-Content-Digest"].startswith("sha256:")
    missing = await client.get(f"{registry.url}/v2/{IMAGE}/manifests/9.9.9", headers=AUTH)
    assert missing.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"


async def test_anonymous_registry_and_faults(client: httpx.AsyncClient) -> None:
    """token=None needs no auth; the 503 fault still breaks it."""
    async with FakeRegistry(token=None) as registry:
        registry.add_tag(IMAGE, "1.0.0")
        ok = await client.get(f"{registry.url}/v2/{IMAGE}/tags/list")
        assert ok.json()["tags"] == ["1.0.0"]
        registry.set_fault("503")
        assert (await client.get(f"{registry.url}/v2/")).status_code == 503


async def test_auth_modes_challenge_as_registries_do(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    """Mode anonymous issues scoped pull tokens to anyone, credentials only for the right Basic
    login, basic wants Basic on the API itself; tokens expire on the fake's clock."""
    login = (DEFAULT_USERNAME, DEFAULT_PASSWORD)
    for mode in ("anonymous", "credentials", "basic"):
        async with FakeRegistry(auth=mode, token_ttl=None, clock=clock) as registry:
            registry.set_tags(IMAGE, TAGS)
            url = f"{registry.url}/v2/{IMAGE}/tags/list"
            denied = await client.get(url)
            challenge = denied.headers["WWW-Authenticate"]
            if mode == "basic":
                assert challenge == 'Basic realm="sandbox-registry"'
                assert (await client.get(url, auth=login)).status_code == 200
                assert (await client.get(url, auth=("ci", "wrong"))).status_code == 401
                continue
            realm = f"{registry.url}/token"
            scope = {"service": "sandbox-registry", "scope": f"repository:{IMAGE}:pull"}
            anonymous = await client.get(realm, params=scope)
            assert anonymous.status_code == (200 if mode == "anonymous" else 401)
            issued = (await client.get(realm, params=scope, auth=login)).json()
            assert "expires_in" not in issued  # the spec's default of 60 s applies
            bearer = {"Authorization": f"Bearer {issued['token']}"}
            assert (await client.get(url, headers=bearer)).status_code == 200
            other = f"{registry.url}/v2/platform/other/tags/list"
            assert (await client.get(other, headers=bearer)).status_code == 401
            clock.advance(61)
            assert (await client.get(url, headers=bearer)).status_code == 401
