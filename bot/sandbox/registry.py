"""FakeRegistry: an OCI distribution registry's tag listing, with paging and bearer auth."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from aiohttp import web

from bot.sandbox.base import FakeServer, json_response
from bot.sandbox.clock import Clock

DEFAULT_TOKEN = "golive-sandbox-registry-token"
SERVICE = "sandbox-registry"
API_HEADERS = {"Docker-Distribution-API-Version": "registry/2.0"}
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"


def _error(
    status: int, code: str, message: str, detail: Any = None, **headers: str
) -> web.Response:
    body = {"errors": [{"code": code, "message": message, "detail": detail}]}
    return json_response(body, status, headers={**API_HEADERS, **headers})


class FakeRegistry(FakeServer):
    """`GET /v2/`, `GET /v2/<name>/tags/list` (n, last, Link) and manifests, per the OCI spec.

    With `token` set, requests need `Authorization: Bearer <token>`; otherwise 401 with a
    `WWW-Authenticate: Bearer realm=...` challenge whose realm (`/token`) trades Basic
    credentials whose password is the token for that bearer token.
    """

    def __init__(
        self,
        token: str | None = DEFAULT_TOKEN,
        *,
        page_size: int | None = None,
        clock: Clock | None = None,
    ) -> None:
        """`token=None` disables auth; `page_size` caps every page even when `n` is absent."""
        super().__init__(clock=clock)
        self.token = token
        self.page_size = page_size
        self.images: dict[str, list[str]] = {}

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
        if self.token is None:
            return None
        if request.headers.get("Authorization", "") == f"Bearer {self.token}":
            return None
        realm = f"{request.url.origin()}/token"
        name = request.match_info.get("name")
        scope = f',scope="repository:{name}:pull"' if name else ""
        challenge = f'Bearer realm="{realm}",service="{SERVICE}"{scope}'
        return _error(
            401, "UNAUTHORIZED", "authentication required", None, **{"WWW-Authenticate": challenge}
        )

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
        limit = min(x for x in (n, self.page_size, 10_000) if x is not None)
        last = request.query.get("last")
        remaining = [t for t in self.images[name] if last is None or t > last]
        page = remaining[:limit]
        headers = dict(API_HEADERS)
        if len(remaining) > len(page) and page:
            query = f"last={quote(page[-1], safe='')}&n={limit}"
            headers["Link"] = f'</v2/{name}/tags/list?{query}>; rel="next"'
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
        if self.token is None:
            return json_response({"token": "anonymous", "access_token": "anonymous"})
        scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
        try:
            password = base64.b64decode(encoded).decode().partition(":")[2]
        except ValueError:
            password = ""
        if scheme.lower() != "basic" or password != self.token:
            return _error(401, "UNAUTHORIZED", "authentication required")
        return json_response({"token": self.token, "access_token": self.token, "expires_in": 300})


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
