"""Speaking to an OCI registry as registries answer: the distribution token flow, Basic auth,
and tag lists paged with or without `Link`.

A registry that wants a token answers 401 with `WWW-Authenticate: Bearer realm=…,service=…,
scope=…`; golive then asks the realm for a token (anonymously, or with Basic credentials),
keeps it until it expires (`expires_in`, 60 s when absent, as the token specification says)
and retries the request once. A `Basic` challenge gets Basic credentials. A static bearer token
(`token_env`) is sent as it is until the registry challenges it.

Credentials go to the realm only when it is HTTPS or on the registry's own origin; the bearer
token only ever goes to the registry's origin.
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from checks.http import (
    Answer,
    ProviderError,
    expect,
    host_of,
    next_link,
    read_json,
    same_origin,
    send,
)

PROVIDER = "the registry"
TOKEN_SERVICE = "the registry's token service"
DEFAULT_TOKEN_TTL = 60.0  # the token specification's lifetime when `expires_in` is absent
PAGE_SIZE = 1000
MAX_PAGES = 100
_PARAM = re.compile(r'([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


@dataclass(frozen=True)
class Credentials:
    """A registry username and password (or access token used as a password)."""

    username: str
    password: str

    def header(self) -> str:
        """The `Authorization: Basic …` value."""
        pair = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")


@dataclass(frozen=True)
class Challenge:
    """One `WWW-Authenticate` challenge: its scheme (lower case) and parameters."""

    scheme: str
    params: dict[str, str]


def parse_challenges(response: httpx.Response) -> list[Challenge]:
    """Every challenge of a 401 answer (`Bearer realm="…",service="…"`, `Basic realm="…"`)."""
    found = []
    for value in response.headers.get_list("www-authenticate"):
        scheme, _, rest = value.strip().partition(" ")
        if not scheme:
            continue
        params = {
            key.lower(): (quoted.replace('\\"', '"') if quoted is not None else bare)
            for key, quoted, bare in (m.groups() for m in _PARAM.finditer(rest))
        }
        found.append(Challenge(scheme.lower(), params))
    return found


@dataclass
class _Token:
    value: str
    expires_at: float


class RegistryClient:
    """Tag listing against one registry, with its auth flow and a token cache.

    `now` (seconds, monotonic) decides when a cached token has expired; one client serves the
    services of one check round, so their pages reuse its tokens.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        registry_url: str,
        *,
        token: str | None = None,
        credentials: Credentials | None = None,
        now: Callable[[], float] = time.monotonic,
        timeout: float = 10.0,
    ) -> None:
        """`token`: a static bearer token; `credentials`: for the token flow or Basic auth."""
        self.client = client
        self.base = registry_url.rstrip("/")
        self.static_token = token
        self.credentials = credentials
        self.now = now
        self.timeout = timeout
        self._tokens: dict[str, _Token] = {}  # image → its pull token
        self._basic = False  # the registry asked for Basic credentials

    # -- auth ------------------------------------------------------------------------------
    def _authorization(self, image: str) -> dict[str, str]:
        if self._basic and self.credentials is not None:
            return {"Authorization": self.credentials.header()}
        cached = self._tokens.get(image)
        if cached is not None and self.now() < cached.expires_at:
            return {"Authorization": f"Bearer {cached.value}"}
        if self.static_token:
            return {"Authorization": f"Bearer {self.static_token}"}
        return {}

    async def _answer(self, challenges: list[Challenge], image: str) -> None:
        """Act on a 401 challenge so that the retried request carries what it asks for."""
        by_scheme = {c.scheme: c for c in challenges}
        if "bearer" in by_scheme:
            self._tokens[image] = await self._fetch_token(by_scheme["bearer"], image)
        elif "basic" in by_scheme:
            if self.credentials is None:
                raise ProviderError(
                    f"{PROVIDER} asks for Basic credentials for {image}; set "
                    f"preconditions.rollback.username_env and password_env"
                )
            self._basic = True
        else:
            schemes = ", ".join(sorted(by_scheme)) or "none"
            raise ProviderError(
                f"{PROVIDER} asks for an authentication scheme golive does not speak ({schemes})"
            )

    async def _fetch_token(self, challenge: Challenge, image: str) -> _Token:
        realm = challenge.params.get("realm", "")
        if not realm.startswith(("https://", "http://")):
            raise ProviderError(
                f"{PROVIDER} challenged golive without a usable token realm ({realm or 'none'})"
            )
        headers = {"Accept": "application/json"}
        if self.credentials is not None:
            if not (realm.startswith("https://") or same_origin(realm, self.base)):
                raise ProviderError(
                    f"{PROVIDER}'s token service at {host_of(realm)} is not HTTPS; golive does "
                    f"not send the registry credentials there"
                )
            headers["Authorization"] = self.credentials.header()
        params = {k: challenge.params[k] for k in ("service", "scope") if k in challenge.params}
        response = await send(
            self.client,
            "GET",
            realm,
            provider=TOKEN_SERVICE,
            headers=headers,
            params=params,
            timeout=self.timeout,
        )
        if response.status_code == 401 and self.credentials is None:
            raise ProviderError(
                f"{PROVIDER} does not allow anonymous pulls of {image}; set "
                f"preconditions.rollback.username_env and password_env",
                {"realm": realm, "status_code": 401},
            )
        answer = read_json(response, TOKEN_SERVICE)
        data = answer.data if isinstance(answer.data, dict) else {}
        value = data.get("token") or data.get("access_token")
        expect(isinstance(value, str) and bool(value), TOKEN_SERVICE, "a `token`", answer)
        ttl = data.get("expires_in")
        lifetime = float(ttl) if isinstance(ttl, int | float) and ttl > 0 else DEFAULT_TOKEN_TTL
        return _Token(str(value), self.now() + lifetime)

    async def _get(self, url: str, params: dict[str, Any] | None, image: str) -> Answer:
        """GET a registry URL; on a challenge, authenticate as asked and retry once."""

        async def attempt() -> httpx.Response:
            return await send(
                self.client,
                "GET",
                url,
                provider=PROVIDER,
                headers={"Accept": "application/json", **self._authorization(image)},
                params=params,
                timeout=self.timeout,
            )

        response = await attempt()
        challenges = parse_challenges(response) if response.status_code == 401 else []
        if challenges:
            await self._answer(challenges, image)
            response = await attempt()
        return read_json(response, PROVIDER)

    # -- tags ------------------------------------------------------------------------------
    async def list_tags(self, image: str, *, page_size: int = PAGE_SIZE) -> list[str]:
        """Every tag of an image (OCI distribution API).

        Pages follow `Link: rel="next"` on the registry's origin; a registry that sends no
        `Link` is asked again with `last=` while its pages come back full (`n` tags).
        """
        first = f"{self.base}/v2/{image}/tags/list"
        url: str = first
        params: dict[str, Any] | None = {"n": page_size}
        tags: list[str] = []
        seen: set[str] = set()
        linked = False
        for _ in range(MAX_PAGES):
            answer = await self._get(url, params, image)
            data = answer.data
            expect(isinstance(data, dict) and "tags" in data, PROVIDER, "a `tags` field", answer)
            page = data["tags"] or []
            expect(isinstance(page, list), PROVIDER, "a list of tags", answer)
            page = [str(t) for t in page]
            seen.add(str(answer.response.url))
            link = next_link(answer.response, self.base, PROVIDER)
            if link is not None:
                if link in seen:
                    raise ProviderError(
                        f"{PROVIDER} linked back to a page of {image} it had already sent"
                    )
                linked, url, params = True, link, None
            elif linked or len(page) < page_size:
                return list(dict.fromkeys([*tags, *page]))
            elif page[-1] in tags:
                raise ProviderError(
                    f"{PROVIDER} ignored `last=` when listing {image}: golive could not read "
                    f"past its first {len(tags)} tags"
                )
            else:
                url, params = first, {"n": page_size, "last": page[-1]}
            tags.extend(page)
        raise ProviderError(f"{PROVIDER} kept answering further pages for {image}; stopped")
