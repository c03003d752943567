"""FakeRegistry: an OCI distribution registry's tag listing, with paging and its auth flows."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import quote

from aiohttp import web

from bot.domain.clock import Now
from bot.sandbox.base import FakeServer, json_response

DEFAULT_TOKEN = "golive-sandbox-registry-token"
DEFAULT_USERNAME = "golive-ci"
DEFAULT_PASSWORD = "golive-sandbox-registry-password"
SERVICE = "sandbox-registry"
SPEC_TOKEN_TTL = 60  # the token spec's lifetime of a token whose answer has no expires_in
AuthMode = Literal["none", "static", "anonymous", "credentials", "basic"]
API_HEADERS = {"Docker-Distribution-API-Version": "registry/2.0"}
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"


def _error(
    status: int, code: str, message: str, detail: Any = None, **headers: str
) -> web.Response:
    body = {"errors": [{"code": code, "message": message, "detail": detail}]}
    return json_response(body, status, headers={**API_HEADERS, **headers})


@dataclass(frozen=True)
class IssuedToken:
    """A bearer token the realm handed out: for which scopes, to whom, until when."""

    token: str
    scopes: tuple[str, ...]
    user: str | None
    expires_at: datetime


class FakeRegistry(FakeServer):
    """`GET /v2/`, `GET /v2/<name>/tags/list` (n, last, Link) and manifests, per the OCI spec.

    Auth modes, as registries answer (`auth`):
    - "none": no auth at all.
    - "static" (the default with a `token`): `Authorization: Bearer <token>` works as is;
      anything else gets the token flow's 401 challenge, and the realm trades Basic credentials
      whose password is the token for a bearer token.
    - "anonymous": a 401 `WWW-Authenticate: Bearer realm=…,service=…,scope=…` challenge; the
      realm (`/token`) hands out pull tokens without credentials (Docker Hub's public images).
    - "credentials": the same challenge; the realm wants Basic `username`/`password`.
    - "basic": no token service; the API itself wants Basic credentials (`WWW-Authenticate:
      Basic`), as ECR and many private registries do.
    Issued tokens live `token_ttl` seconds of the fake's clock and cover only their scopes;
    `token_ttl=None` leaves `expires_in` out of the answer (the spec's default, 60 s, applies).

    Paging: `page_size` caps pages even when `n` is absent; `links=False` sends no `Link`
    header (a client goes on with `last=` while pages come back full, as OCI allows);
    `link_base` puts the next-page links on another server.
    """

    def __init__(
        self,
        token: str | None = DEFAULT_TOKEN,
        *,
        auth: AuthMode | None = None,
        username: str = DEFAULT_USERNAME,
        password: str = DEFAULT_PASSWORD,
        token_ttl: int | None = 300,
        page_size: int | None = None,
        links: bool = True,
        clock: Now | None = None,
    ) -> None:
        """`token=None` with no `auth` disables auth; see the class for the modes."""
        super().__init__(clock=clock)
        self.token = token
        self.auth: AuthMode = auth or ("static" if token else "none")
        self.username = username
        self.password = password
        self.token_ttl = token_ttl
        self.page_size = page_size
        self.links = links
        self.link_base: str | None = None
        self.images: dict[str, list[str]] = {}
        self.issued: list[IssuedToken] = []

    # -- controls ----------------------------------------------------------------------------
    def set_tags(self, image: str, tags: Iterable[str]) -> None:
        """Replace the tags of repository `image` (e.g. "platform/billing-api")."""
        self.images[image] = sorted(set(tags))

    def add_tag(self, image: str, tag: str) -> None:
        """Push one more tag."""
        self.set_tags(image, [*self.images.get(image, []), tag])

    def delete_tag(self, image: str, tag: str) -> None:
        """Delete one tag."""
        self.images[image] = [t for t in self.images.get(image, []) if t != tag]

    def delete_image(self, image: str) -> None:
        """Forget the repository entirely (then it answers NAME_UNKNOWN)."""
        self.images.pop(image, None)

    # -- HTTP --------------------------------------------------------------------------------
    def add_routes(self, app: web.Application) -> None:
        """Distribution API endpoints and the token realm."""
        app.router.add_get("/v2/", self._base)
        app.router.add_get("/v2/{name:.+}/tags/list", self._tags)
        app.router.add_get("/v2/{name:.+}/manifests/{reference}", self._manifest)
        app.router.add_get("/token", self._token)

    def _unauthorized(self, request: web.Request) -> web.Response | None:
        if self.auth == "none":
            return None
        name = request.match_info.get("name")
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        if self.auth == "basic":
            if scheme.lower() == "basic" and _basic(value) == (self.username, self.password):
                return None
            return _error(
                401,
                "UNAUTHORIZED",
                "authentication required",
                None,
                **{"WWW-Authenticate": f'Basic realm="{SERVICE}"'},
            )
        if scheme.lower() == "bearer" and self._bearer_ok(value.strip(), name):
            return None
        realm = f"{request.url.origin()}/token"
        scope = f',scope="repository:{name}:pull"' if name else ""
        challenge = f'Bearer realm="{realm}",service="{SERVICE}"{scope}'
        return _error(
            401, "UNAUTHORIZED", "authentication required", None, **{"WWW-Authenticate": challenge}
        )

    def _bearer_ok(self, token: str, name: str | None) -> bool:
        if self.auth == "static" and token == self.token:
            return True
        now = self.clock()
        for issued in self.issued:
            if issued.token == token and now < issued.expires_at:
                return name is None or f"repository:{name}:pull" in issued.scopes
        return False

    async def _base(self, request: web.Request) -> web.Response:
        return self._unauthorized(request) or json_response({}, headers=API_HEADERS)

    async def _tags(self, request: web.Request) -> web.Response:
        denied = self._unauthorized(request)
        if denied is not None:
            return denied
        name = request.match_info["name"]
        if name not in self.images:
            return _error(
                404, "NAME_UNKNOWN", "repository name not known to registry", {"name": name}
            )
        try:
            n = int(request.query["n"]) if "n" in request.query else None
        except ValueError:
            return _error(400, "PAGINATION_NUMBER_INVALID", "invalid number of results requested")
        if n is not None and n < 0:
            return _error(400, "PAGINATION_NUMBER_INVALID", "invalid number of results requested")
        sizes = (n, self.page_size, 10_000) if self.links else (n, 10_000)
        limit = min(x for x in sizes if x is not None)
        if not self.links and n is None and self.page_size is not None:
            limit = self.page_size
        last = request.query.get("last")
        remaining = [t for t in self.images[name] if last is None or t > last]
        page = remaining[:limit]
        headers = dict(API_HEADERS)
        if self.links and len(remaining) > len(page) and page:
            query = f"last={quote(page[-1], safe='')}&n={limit}"
            base = self.link_base or ""
            headers["Link"] = f'<{base}/v2/{name}/tags/list?{query}>; rel="next"'
        return json_response({"name": name, "tags": page}, headers=headers)

    async def _manifest(self, request: web.Request) -> web.Response:
        denied = self._unauthorized(request)
        if denied is not None:
            return denied
        name, reference = request.match_info["name"], request.match_info["reference"]
        if name not in self.images:
            return _error(
                404, "NAME_UNKNOWN", "repository name not known to registry", {"name": name}
            )
        if reference not in self.images[name]:
            return _error(404, "MANIFEST_UNKNOWN", "manifest unknown", {"tag": reference})
        manifest = _manifest_for(name, reference)
        headers = {
            **API_HEADERS,
            "Docker-Content-Digest": "sha256:" + hashlib.sha256(manifest).hexdigest(),
        }
        if request.method == "HEAD":
            headers["Content-Length"] = str(len(manifest))
            return web.Response(headers={**headers, "Content-Type": MANIFEST_TYPE})
        return web.Response(body=manifest, headers=headers, content_type=MANIFEST_TYPE)

    async def _token(self, request: web.Request) -> web.Response:
        if self.auth == "none":
            return json_response({"token": "anonymous", "access_token": "anonymous"})
        if self.auth == "basic":
            return _error(404, "NOT_FOUND", "this registry has no token service")
        scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
        given = _basic(encoded) if scheme.lower() == "basic" else None
        if self.auth == "static":
            allowed = given is not None and given[1] == self.token
        elif self.auth == "credentials":
            allowed = given == (self.username, self.password)
        else:  # anonymous pulls; credentials, if sent, are not checked here
            allowed = True
        if not allowed:
            return _error(401, "UNAUTHORIZED", "authentication required")
        if request.query.get("service") not in (None, SERVICE):
            return _error(400, "DENIED", f"unknown service {request.query.get('service')!r}")
        ttl = self.token_ttl if self.token_ttl is not None else SPEC_TOKEN_TTL
        issued = IssuedToken(
            secrets.token_urlsafe(24),
            tuple(request.query.getall("scope", [])),
            given[0] if given else None,
            self.clock() + timedelta(seconds=ttl),
        )
        self.issued.append(issued)
        body: dict[str, Any] = {
            "token": issued.token,
            "access_token": issued.token,
            "issued_at": self.clock().strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        if self.token_ttl is not None:
            body["expires_in"] = self.token_ttl
        return json_response(body)


def _basic(encoded: str) -> tuple[str, str] | None:
    """(username, password) of a Basic credential, or None when it does not decode."""
    try:
        user, sep, password = (
            base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
        )
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


def _manifest_for(name: str, tag: str) -> bytes:
    layer = hashlib.sha256(f"{name}:{tag}".encode()).hexdigest()
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": "sha256:" + hashlib.sha256(layer.encode()).hexdigest(),
            "size": 1470,
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": "sha256:" + layer,
                "size": 31_457_280,
            }
        ],
        "annotations": {"org.opencontainers.image.version": tag},
    }
    return json.dumps(manifest).encode()
