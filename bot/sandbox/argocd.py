"""FakeArgoCD: applications synced and watched as Argo CD's API serves them.

As Argo CD's REST API (the gateway in front of its gRPC services) documents it:

- every call needs `Authorization: Bearer <token>`; without it the answer is 401 with a gRPC
  status body (`{"error", "code": 16, "message"}`);
- `POST /api/v1/applications/{name}/sync` with an optional `revision`, `prune` and `dryRun`
  starts a sync operation and answers the application with its `operation` set; a second sync
  while one runs is refused (400, code 9, "another operation is already in progress");
- `GET /api/v1/applications/{name}` answers the application: `status.sync.status` (Synced,
  OutOfSync), `status.health.status` (Healthy, Progressing, Degraded...), and
  `status.operationState` (`phase` Running, Succeeded, Failed or Error, `message`,
  `startedAt`, `finishedAt`); `operation` stays set until the operation has finished.

On the fake's clock an operation runs for `durations[0]` seconds, then the application is
Progressing for `durations[1]` seconds before it is Healthy. `fail_syncs()` is the fault switch:
syncs started while it is on end Degraded (health) or Failed (the operation).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from bot.domain.clock import Now
from bot.sandbox.base import FakeServer, json_response, read_json_object

DEFAULT_TOKEN = "argocd_golive_sandbox_token_0001"
OUTCOMES = ("healthy", "degraded", "failed")


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _grpc_error(message: str, code: int, status: int) -> web.Response:
    return json_response({"error": message, "code": code, "message": message}, status)


@dataclass
class Operation:
    """One sync operation and how it is going to end."""

    revision: str
    prune: bool
    started_at: datetime
    outcome: str
    message: str


@dataclass
class Application:
    """An Argo CD application and its operations, oldest first."""

    name: str
    repo_url: str
    path: str
    target_revision: str = "main"
    synced_revision: str = ""
    operations: list[Operation] = field(default_factory=list)


class FakeArgoCD(FakeServer):
    """Argo CD's application API: get an application, sync it."""

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        clock: Now | None = None,
        durations: tuple[float, float] = (1.0, 2.0),
    ) -> None:
        """`durations`: seconds an operation runs, then seconds the app is Progressing."""
        super().__init__(clock=clock)
        self.token = token
        self.durations = durations
        self.apps: dict[str, Application] = {}
        self._failing: dict[str | None, tuple[str, str]] = {}

    # -- controls ----------------------------------------------------------------------------
    def add_app(self, name: str, *, repo_url: str = "https://github.com/acme/platform.git") -> None:
        """An application, Synced and Healthy at a first revision."""
        self.apps[name] = Application(
            name, repo_url, f"deploy/{name}", synced_revision=_sha(name, "initial")
        )

    def fail_syncs(
        self, how: str = "degraded", *, app: str | None = None, message: str | None = None
    ) -> None:
        """The fault switch: syncs of `app` (any when None) started from now on end `how`
        (degraded or failed); `healthy` switches it off."""
        if how not in OUTCOMES:
            raise ValueError(f"how must be one of {OUTCOMES}")
        if how == "healthy":
            self._failing.pop(app, None)
            return
        default = (
            'Deployment/web-portal: Deployment "web-portal" exceeded its progress deadline'
            if how == "degraded"
            else "one or more objects failed to apply, reason: admission webhook denied the request"
        )
        self._failing[app] = (how, message or default)

    def syncs(self, name: str) -> list[Operation]:
        """The sync operations of an application, oldest first."""
        return list(self.apps[name].operations)

    # -- state -------------------------------------------------------------------------------
    def _phase(self, op: Operation, now: datetime) -> str:
        ends = op.started_at + timedelta(seconds=self.durations[0])
        if now < ends:
            return "Running"
        return "Failed" if op.outcome == "failed" else "Succeeded"

    def _health(self, app: Application, now: datetime) -> tuple[str, str | None]:
        if not app.operations:
            return "Healthy", None
        op = app.operations[-1]
        settled = op.started_at + timedelta(seconds=sum(self.durations))
        if self._phase(op, now) == "Failed":
            return "Degraded", op.message
        if now < settled:
            return (
                "Progressing",
                "Waiting for rollout to finish: 1 old replicas are pending termination...",
            )
        if op.outcome == "degraded":
            return "Degraded", op.message
        return "Healthy", None

    def app_json(self, app: Application) -> dict[str, Any]:
        """The application as `GET /api/v1/applications/{name}` answers it."""
        now = self.clock()
        op = app.operations[-1] if app.operations else None
        phase = self._phase(op, now) if op else None
        revision = app.synced_revision
        if op is not None and phase == "Succeeded":
            revision = op.revision
        health, health_message = self._health(app, now)
        status: dict[str, Any] = {
            "sync": {
                "status": "OutOfSync" if phase == "Running" else "Synced",
                "revision": revision,
                "comparedTo": {
                    "source": {
                        "repoURL": app.repo_url,
                        "path": app.path,
                        "targetRevision": app.target_revision,
                    }
                },
            },
            "health": {"status": health, **({"message": health_message} if health_message else {})},
            "reconciledAt": _iso(now),
        }
        body: dict[str, Any] = {
            "metadata": {"name": app.name, "namespace": "argocd"},
            "spec": {
                "project": "default",
                "source": {
                    "repoURL": app.repo_url,
                    "path": app.path,
                    "targetRevision": app.target_revision,
                },
                "destination": {"server": "https://kubernetes.default.svc", "namespace": app.name},
            },
            "status": status,
        }
        if op is not None:
            finished = phase != "Running"
            operation = {
                "sync": {"revision": op.revision, "prune": op.prune},
                "initiatedBy": {"username": "golive"},
            }
            status["operationState"] = {
                "operation": operation,
                "phase": phase,
                "message": (
                    op.message
                    if phase == "Failed"
                    else "successfully synced (all tasks run)"
                    if finished
                    else "one or more tasks are running"
                ),
                "startedAt": _iso(op.started_at),
                "finishedAt": _iso(op.started_at + timedelta(seconds=self.durations[0]))
                if finished
                else None,
                "syncResult": {"revision": op.revision},
            }
            if not finished:
                body["operation"] = operation
        return body

    # -- HTTP --------------------------------------------------------------------------------
    def add_routes(self, app: web.Application) -> None:
        """The application endpoints golive uses."""
        app.router.add_get("/api/v1/applications/{name}", self._get)
        app.router.add_post("/api/v1/applications/{name}/sync", self._sync)

    def fault_scope(self, request: web.Request) -> str | None:
        """Faults can be set per application: `set_fault(mode, scope="web-portal")`."""
        return request.match_info.get("name")

    def extra_middlewares(self) -> list[Any]:
        """Authentication: `Authorization: Bearer <token>`."""

        @web.middleware
        async def auth(request: web.Request, handler: Any) -> web.StreamResponse:
            scheme, _, value = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or value.strip() != self.token:
                message = (
                    "no session information" if not value else "invalid session: token is invalid"
                )
                return _grpc_error(message, 16, 401)
            response: web.StreamResponse = await handler(request)
            return response

        return [auth]

    def _app(self, request: web.Request) -> Application | web.Response:
        name = request.match_info["name"]
        app = self.apps.get(name)
        if app is None:
            return _grpc_error(f'applications.argoproj.io "{name}" not found', 5, 404)
        return app

    async def _get(self, request: web.Request) -> web.Response:
        app = self._app(request)
        if isinstance(app, web.Response):
            return app
        return json_response(self.app_json(app))

    async def _sync(self, request: web.Request) -> web.Response:
        app = self._app(request)
        if isinstance(app, web.Response):
            return app
        body = await read_json_object(request)
        if body is None:
            return _grpc_error("invalid character in request body", 3, 400)
        now = self.clock()
        if app.operations and self._phase(app.operations[-1], now) == "Running":
            return _grpc_error("another operation is already in progress", 9, 400)
        revision = body.get("revision") or app.target_revision
        if not isinstance(revision, str) or not isinstance(body.get("prune", False), bool):
            return _grpc_error("revision must be a string and prune a boolean", 3, 400)
        if body.get("dryRun"):
            return json_response(self.app_json(app))
        how, message = self._failing.get(app.name, self._failing.get(None, ("healthy", "")))
        before = self.app_json(app)
        app.operations.append(
            Operation(revision, bool(body.get("prune", False)), now, how, message)
        )
        operation = {
            "sync": {"revision": revision, "prune": bool(body.get("prune", False))},
            "initiatedBy": {"username": "golive"},
        }
        # The answer shows the operation asked for; the status is still the one before it.
        return json_response({**before, "operation": operation})


def _sha(*parts: str) -> str:
    return hashlib.sha1("/".join(parts).encode()).hexdigest()
