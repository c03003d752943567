"""What every fake shares: request recording, switchable faults and a loopback server."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Self, get_args

from aiohttp import web

from bot.domain.clock import Now, utc_now
from bot.sandbox.server import LOOPBACK, LoopbackServer

FaultMode = Literal["html", "500", "503", "garbage", "slow"]
FAULT_MODES: tuple[str, ...] = get_args(FaultMode)
CONTROL_PREFIX = "/_sandbox/"
ANY_SCOPE = "*"

LOGIN_PAGE = (
    "<!DOCTYPE html>\n<html><head><title>Sign in - Corporate SSO</title></head>\n"
    '<body><h1>Please sign in</h1><form method="post" action="/login">'
    '<input name="user"><input name="password" type="password"></form></body></html>\n'
)
_GARBAGE_JSON = b'{"status": "ok", "items": [{"id": 1, "name": "trunc'


@dataclass(frozen=True)
class Fault:
    """A failure a fake answers with: an HTML page, a 5xx, malformed JSON or a slow answer."""

    mode: FaultMode
    delay: float = 0.0


@dataclass(frozen=True)
class RecordedRequest:
    """One request a fake received, as it arrived on the wire."""

    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    headers: dict[str, str]
    body: bytes
    at: datetime

    def header(self, name: str) -> str | None:
        """A header value by case-insensitive name."""
        return self.headers.get(name.lower())

    def param(self, name: str) -> str | None:
        """The first query parameter called `name`."""
        return next((v for k, v in self.query if k == name), None)

    def params(self, name: str) -> list[str]:
        """Every query parameter called `name`, in order."""
        return [v for k, v in self.query if k == name]

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """A JSON answer with `application/json; charset=utf-8`."""
    return web.Response(
        body=json.dumps(data).encode(),
        status=status,
        headers=headers,
        content_type="application/json",
        charset="utf-8",
    )


async def read_json_object(request: web.Request) -> dict[str, Any] | None:
    """The request body as a JSON object, or None when it is not one."""
    try:
        data = json.loads(await request.read() or b"null")
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def fault_response(fault: Fault) -> web.Response:
    """The canned answer for a non-slow fault."""
    if fault.mode == "html":
        return web.Response(text=LOGIN_PAGE, content_type="text/html")
    if fault.mode == "garbage":
        return web.Response(body=_GARBAGE_JSON, content_type="application/json")
    status = int(fault.mode)
    reason = "Internal Server Error" if status == 500 else "Service Unavailable"
    return web.Response(status=status, text=f"{status} {reason}\n", content_type="text/plain")


class FakeServer:
    """Base of the fakes: owns their state, records requests, injects faults, serves on loopback."""

    def __init__(self, *, clock: Now | None = None) -> None:
        """Create the fake; `clock` (default real UTC time) stamps records and generated data."""
        self.clock: Now = clock or utc_now
        self.requests: list[RecordedRequest] = []
        self._faults: dict[str, Fault] = {}
        self._server: LoopbackServer | None = None

    # -- to override -------------------------------------------------------------------------
    def add_routes(self, app: web.Application) -> None:
        """Register the fake's endpoints (subclasses)."""
        raise NotImplementedError

    def fault_scope(self, request: web.Request) -> str | None:
        """Which fault scope a request falls in besides "*" (e.g. a repository); None if none."""
        return None

    # -- faults ------------------------------------------------------------------------------
    def set_fault(
        self, mode: FaultMode | None, *, scope: str = ANY_SCOPE, delay: float = 2.0
    ) -> None:
        """Answer requests in `scope` with a fault (`mode=None` clears it); `delay` is for slow."""
        if mode is None:
            self._faults.pop(scope, None)
            return
        if mode not in FAULT_MODES:
            raise ValueError(f"unknown fault mode {mode!r}; expected one of {FAULT_MODES}")
        self._faults[scope] = Fault(mode, delay if mode == "slow" else 0.0)

    def clear_faults(self) -> None:
        """Remove every fault."""
        self._faults.clear()

    def fault_for(self, request: web.Request) -> Fault | None:
        """The fault that applies to `request`, if any (control endpoints never fault)."""
        if request.path.startswith(CONTROL_PREFIX):
            return None
        scope = self.fault_scope(request)
        if scope is not None and scope in self._faults:
            return self._faults[scope]
        return self._faults.get(ANY_SCOPE)

    # -- requests ----------------------------------------------------------------------------
    def requests_to(self, path_prefix: str, method: str | None = None) -> list[RecordedRequest]:
        """Recorded requests whose path starts with `path_prefix` (and method, if given)."""
        return [
            r
            for r in self.requests
            if r.path.startswith(path_prefix) and (method is None or r.method == method.upper())
        ]

    # -- serving -----------------------------------------------------------------------------
    def build_app(self) -> web.Application:
        """A fresh aiohttp application for this fake (state lives on the fake, not the app)."""

        @web.middleware
        async def record(request: web.Request, handler: Any) -> web.StreamResponse:
            if not request.path.startswith(CONTROL_PREFIX):
                self.requests.append(
                    RecordedRequest(
                        method=request.method,
                        path=request.path,
                        query=tuple(request.query.items()),
                        headers={k.lower(): v for k, v in request.headers.items()},
                        body=await request.read(),
                        at=self.clock(),
                    )
                )
            response: web.StreamResponse = await handler(request)
            return response

        @web.middleware
        async def faults(request: web.Request, handler: Any) -> web.StreamResponse:
            fault = self.fault_for(request)
            if fault is not None and fault.mode != "slow":
                return fault_response(fault)
            if fault is not None:
                await asyncio.sleep(fault.delay)
            response: web.StreamResponse = await handler(request)
            return response

        app = web.Application(middlewares=[record, faults, *self.extra_middlewares()])
        self.add_routes(app)
        return app

    def extra_middlewares(self) -> list[Any]:
        """More middlewares, innermost last (subclasses)."""
        return []

    async def start(self, host: str = LOOPBACK, port: int = 0) -> str:
        """Serve on host:port (0 = ephemeral) and return the base URL."""
        if self._server is None:
            self._server = LoopbackServer(self.build_app, host, port)
        return await self._server.start()

    async def stop(self) -> None:
        """Stop serving: from now on connections are refused (a provider outage)."""
        if self._server is not None:
            await self._server.stop()

    async def restart(self) -> str:
        """Serve again on the same port after `stop`."""
        if self._server is None:
            return await self.start()
        return await self._server.restart()

    @property
    def running(self) -> bool:
        """True while serving."""
        return self._server is not None and self._server.running

    @property
    def url(self) -> str:
        """The base URL, `http://127.0.0.1:PORT`."""
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} has not been started")
        return self._server.url

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
