"""Step actions: start a deploy at a provider and read how it is going.

Three providers, each spoken to as it documents itself:

- GitHub Actions: `POST .../actions/workflows/{workflow}/dispatches` asking for
  `return_run_details` (GitHub's answer since February 2026: 200 with `workflow_run_id`,
  `run_url` and `html_url`). A server that refuses the parameter (GitHub Enterprise Server
  answers 422 naming it) gets the dispatch again without it and with a unique `golive_run`
  input; the run is then found among the workflow's `workflow_dispatch` runs created since,
  by that value in its title (the workflow's `run-name` shows `inputs.golive_run`). A run is
  read with `GET .../actions/runs/{id}` until `status` is `completed`; `conclusion: success`
  passes, anything else fails with the run's link and the names of the jobs that failed.
- Argo CD: `POST {server}/api/v1/applications/{name}/sync`, then `GET
  /api/v1/applications/{name}` until the operation golive started has finished and the
  application is `Synced` and `Healthy`; `Degraded`, a failed operation or the timeout fail.
- A webhook: POST a JSON body; a 2xx passes, or with a poll URL the answer
  `{"status": "succeeded" | "failed", "detail": …}` decides.

A driver never starts anything twice: `start` is called once per run, and what it answers is
recorded before anything else happens, so a restart reads the same run again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol
from urllib.parse import quote

import httpx

from checks.ci import github_headers, paginate
from checks.http import ProviderError, excerpt, expect, read_json, request_json, send

GITHUB = "GitHub"
ARGOCD = "Argo CD"
WEBHOOK = "the webhook"
# A run listed by GitHub carries its creation time from GitHub's clock, not ours.
CLOCK_SKEW = timedelta(minutes=2)
FAILED_JOB_CONCLUSIONS = frozenset(
    {"failure", "timed_out", "cancelled", "startup_failure", "action_required"}
)
MAX_DETAIL = 300
MAX_JOBS = 10  # failed jobs named in a verdict


@dataclass(frozen=True)
class Started:
    """What a provider said when asked to start: its run id (None while still to be found)."""

    run_id: str | None
    url: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Polled:
    """How a run stands: still going (`done` False), or its outcome with a sentence."""

    done: bool
    ok: bool = False
    summary: str = ""
    url: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)


class Driver(Protocol):
    """One provider's way to start a run, find it, and read it."""

    provider: str
    findable: bool  # a run lost in a crash between asking and recording can be found again

    async def start(self, token: str) -> Started:
        """Ask the provider to start the run (once)."""
        ...

    async def find(self, token: str, since: datetime) -> Started | None:
        """The run started with `token` since `since`, once the provider lists it."""
        ...

    async def poll(self, run_id: str) -> Polled:
        """How the run stands now."""
        ...


def _said(response: httpx.Response) -> str:
    """The provider's own words in an error answer (`message`, else the start of the body)."""
    try:
        data = response.json()
    except ValueError:
        return excerpt(response, MAX_DETAIL)
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        return str(data["message"])[:MAX_DETAIL]
    return excerpt(response, MAX_DETAIL)


def _refused(response: httpx.Response, provider: str, what: str) -> ProviderError:
    """A refusal to start, with what the provider said about it."""
    words = _said(response).strip()
    return ProviderError(
        f"{provider} refused to {what} (HTTP {response.status_code})"
        + (f": {words}" if words else ""),
        {"status_code": response.status_code, "body": excerpt(response)},
    )


async def _post(
    client: httpx.AsyncClient,
    url: str,
    provider: str,
    headers: Mapping[str, str],
    body: Mapping[str, Any],
) -> httpx.Response:
    """The one request that starts a run (never sent again by golive itself)."""
    return await send(
        client, "POST", url, provider=provider, headers=headers, json_body=dict(body), timeout=30.0
    )


def _text(value: object, limit: int = MAX_DETAIL) -> str | None:
    """A provider's string, cut to `limit` characters; None when it is not a string."""
    return value[:limit] if isinstance(value, str) else None


# -- GitHub Actions ----------------------------------------------------------------------------


class WorkflowDriver:
    """A GitHub Actions workflow dispatched on a ref with inputs, and its run followed."""

    provider = GITHUB
    findable = True

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        api: str,
        repository: str,
        token: str,
        workflow: str,
        ref: str,
        inputs: Mapping[str, Any],
        run_input: str,
    ) -> None:
        self.client = client
        self.api = api.rstrip("/")
        self.repository = repository
        self.headers = github_headers(token)
        self.workflow = workflow
        self.ref = ref
        self.inputs = dict(inputs)
        self.run_input = run_input

    @property
    def _workflow_url(self) -> str:
        return f"{self.api}/repos/{self.repository}/actions/workflows/{quote(self.workflow)}"

    async def _dispatch(self, body: Mapping[str, Any]) -> httpx.Response:
        return await _post(
            self.client, f"{self._workflow_url}/dispatches", GITHUB, self.headers, body
        )

    async def start(self, token: str) -> Started:
        """Dispatch asking for the run's details; without them (GHES), dispatch with the token."""
        body: dict[str, Any] = {"ref": self.ref, "inputs": self.inputs}
        response = await self._dispatch({**body, "return_run_details": True})
        if response.status_code == 200:
            answer = read_json(response, GITHUB)
            data = answer.data
            expect(
                isinstance(data, dict) and isinstance(data.get("workflow_run_id"), int),
                GITHUB,
                "a `workflow_run_id`",
                answer,
            )
            url = _text(data.get("html_url"))
            return Started(str(data["workflow_run_id"]), url, {"run_details": True})
        if response.status_code in (400, 422) and "return_run_details" in excerpt(response, 2000):
            # An older API (GitHub Enterprise Server) that does not know the parameter: it
            # refused the request, so nothing started. Ask again the old way, marked.
            inputs = {**self.inputs, self.run_input: token}
            again = await self._dispatch({**body, "inputs": inputs})
            if again.status_code == 204:
                return Started(None, None, {"run_details": False, self.run_input: token})
            raise _refused(again, GITHUB, f"dispatch {self.workflow}")
        if response.status_code == 204:  # a server that ignored the parameter
            return Started(None, None, {"run_details": False})
        raise _refused(response, GITHUB, f"dispatch {self.workflow}")

    async def find(self, token: str, since: datetime) -> Started | None:
        """The `workflow_dispatch` run created since `since` whose title carries `token`."""
        after = (since - CLOCK_SKEW).strftime("%Y-%m-%dT%H:%M:%SZ")
        runs = await paginate(
            self.client,
            f"{self._workflow_url}/runs",
            self.headers,
            {"event": "workflow_dispatch", "created": f">={after}", "per_page": 100},
            "workflow_runs",
        )
        for run in runs:
            if not isinstance(run, dict) or not isinstance(run.get("id"), int):
                continue
            title = f"{run.get('display_title') or ''} {run.get('name') or ''}"
            if token in title:
                return Started(str(run["id"]), _text(run.get("html_url")), {"found_by": token})
        return None

    async def poll(self, run_id: str) -> Polled:
        """The run's status; once completed, its conclusion and the jobs that failed."""
        answer = await request_json(
            self.client,
            "GET",
            f"{self.api}/repos/{self.repository}/actions/runs/{quote(run_id)}",
            provider=GITHUB,
            headers=self.headers,
        )
        run = answer.data
        expect(
            isinstance(run, dict) and isinstance(run.get("status"), str), GITHUB, "a status", answer
        )
        url = _text(run.get("html_url"))
        status, conclusion = str(run["status"])[:40], _text(run.get("conclusion"), 40)
        label = f"{self.workflow} run #{_text(str(run.get('run_number', run_id)), 20)}"
        evidence: dict[str, Any] = {
            "run_id": run_id,
            "status": status,
            "conclusion": conclusion,
            "url": url,
        }
        if status != "completed":
            return Polled(False, summary=f"{label} is {status.replace('_', ' ')}", url=url)
        if conclusion == "success":
            return Polled(True, True, f"{label} succeeded", url, evidence)
        failed = await self._failed_jobs(run_id)
        jobs = f"; failed jobs: {', '.join(failed)}" if failed else ""
        evidence["failed_jobs"] = failed
        return Polled(
            True,
            False,
            f"{label} ended {conclusion or 'without a conclusion'}{jobs}",
            url,
            evidence,
        )

    async def _failed_jobs(self, run_id: str) -> list[str]:
        try:
            jobs = await paginate(
                self.client,
                f"{self.api}/repos/{self.repository}/actions/runs/{quote(run_id)}/jobs",
                self.headers,
                {"filter": "latest", "per_page": 100},
                "jobs",
            )
        except ProviderError:
            return []  # the run's conclusion already says it failed; the names are a courtesy
        failed = [
            str(job.get("name"))[:100]
            for job in jobs
            if isinstance(job, dict) and job.get("conclusion") in FAILED_JOB_CONCLUSIONS
        ]
        return failed[:MAX_JOBS] + (
            [f"{len(failed) - MAX_JOBS} more"] if len(failed) > MAX_JOBS else []
        )


# -- Argo CD -----------------------------------------------------------------------------------


class ArgoSyncDriver:
    """An Argo CD application synced (to a revision) and watched until Synced and Healthy."""

    provider = ARGOCD
    findable = False

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        server: str,
        app: str,
        token: str,
        revision: str | None,
        prune: bool,
    ) -> None:
        self.client = client
        self.server = server.rstrip("/")
        self.app = app
        self.headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        self.revision = revision
        self.prune = prune

    @property
    def _app_url(self) -> str:
        return f"{self.server}/api/v1/applications/{quote(self.app)}"

    @property
    def link(self) -> str:
        """The application in Argo CD's web interface."""
        return f"{self.server}/applications/{quote(self.app)}"

    async def start(self, token: str) -> Started:
        """Ask for a sync; the run is "the operation that starts after the one shown now"."""
        body: dict[str, Any] = {"prune": self.prune, "dryRun": False}
        if self.revision:
            body["revision"] = self.revision
        response = await _post(self.client, f"{self._app_url}/sync", ARGOCD, self.headers, body)
        if response.status_code >= 300:
            raise _refused(response, ARGOCD, f"sync {self.app}")
        app = read_json(response, ARGOCD).data
        previous = _operation(app).get("startedAt")
        # The id of this run: the application, and the operation it replaces.
        return Started(
            f"{self.app}@{previous or ''}",
            self.link,
            {"revision": self.revision, "before": previous},
        )

    async def find(self, token: str, since: datetime) -> Started | None:
        """Argo CD keeps no mark of who asked for a sync: a lost request cannot be found."""
        return None

    async def poll(self, run_id: str) -> Polled:
        """Finished when no operation is pending, the last one is ours and has ended, and the
        application is Synced and Healthy (or Degraded, or the operation failed)."""
        before = run_id.partition("@")[2] or None
        answer = await request_json(
            self.client, "GET", self._app_url, provider=ARGOCD, headers=self.headers
        )
        app = answer.data
        expect(
            isinstance(app, dict) and isinstance(app.get("status"), dict),
            ARGOCD,
            "a status",
            answer,
        )
        status = app["status"]
        state = _operation(app)
        phase = _text(state.get("phase"))
        sync = _text((status.get("sync") or {}).get("status")) or "Unknown"
        health_block = status.get("health") or {}
        health = _text(health_block.get("status")) or "Unknown"
        evidence = {
            "app": self.app,
            "phase": phase,
            "sync": sync,
            "health": health,
            "message": _text(state.get("message")),
            "revision": _text((status.get("sync") or {}).get("revision")),
        }
        ours = state.get("startedAt") is not None and state.get("startedAt") != before
        if app.get("operation") or not ours or phase in (None, "Running", "Terminating"):
            return Polled(False, summary=f"{self.app}: sync {phase or 'pending'}", url=self.link)
        message = _text(state.get("message")) or ""
        if phase in ("Failed", "Error"):
            return Polled(
                True,
                False,
                f"{self.app}: sync {phase.lower()}: {message}".rstrip(": "),
                self.link,
                evidence,
            )
        if health == "Degraded":
            why = _text(health_block.get("message")) or message
            return Polled(
                True, False, f"{self.app} is Degraded: {why}".rstrip(": "), self.link, evidence
            )
        if sync == "Synced" and health == "Healthy":
            return Polled(True, True, f"{self.app} is Synced and Healthy", self.link, evidence)
        return Polled(False, summary=f"{self.app}: {sync}, {health}", url=self.link)


def _operation(app: Any) -> dict[str, Any]:
    status = app.get("status") if isinstance(app, dict) else None
    state = status.get("operationState") if isinstance(status, dict) else None
    return state if isinstance(state, dict) else {}


# -- webhooks ----------------------------------------------------------------------------------


class WebhookDriver:
    """A POST to a URL; its 2xx answer, or the outcome a poll URL reports, decides."""

    provider = WEBHOOK
    findable = False

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        url: str,
        token: str | None,
        body: Mapping[str, Any],
        poll_url: str | None,
    ) -> None:
        self.client = client
        self.url = url
        self.headers = {"Accept": "application/json"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        self.body = dict(body)
        self.poll_url = poll_url

    async def start(self, token: str) -> Started:
        """POST the body once; without a poll URL the answer is the outcome."""
        response = await _post(self.client, self.url, WEBHOOK, self.headers, self.body)
        if not 200 <= response.status_code < 300:
            raise _refused(response, WEBHOOK, "take the request")
        if self.poll_url is None:
            return Started("", None, {"status_code": response.status_code})
        return Started(self.poll_url, self.poll_url, {"status_code": response.status_code})

    async def find(self, token: str, since: datetime) -> Started | None:
        """A webhook leaves no trace golive could look for."""
        return None

    async def poll(self, run_id: str) -> Polled:
        """Without a poll URL the accepted POST was the outcome; else the poll URL's status."""
        if not run_id:
            return Polled(True, True, f"{WEBHOOK} accepted the request")
        answer = await request_json(
            self.client, "GET", run_id, provider=WEBHOOK, headers=self.headers
        )
        data = answer.data
        expect(
            isinstance(data, dict) and isinstance(data.get("status"), str),
            WEBHOOK,
            "a status",
            answer,
        )
        status = str(data["status"])[:40]
        detail = str(data.get("detail") or "")[:MAX_DETAIL]
        evidence = {"status": status, "detail": detail}
        if status == "succeeded":
            return Polled(
                True, True, f"succeeded{': ' + detail if detail else ''}", run_id, evidence
            )
        if status == "failed":
            return Polled(True, False, f"failed{': ' + detail if detail else ''}", run_id, evidence)
        return Polled(False, summary=f"{status}{': ' + detail if detail else ''}", url=run_id)
