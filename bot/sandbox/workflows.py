"""GitHub Actions as the fake GitHub serves it: workflows, dispatches, runs and their jobs.

As GitHub documents them (REST API, "Workflows", "Workflow runs" and "Workflow jobs"):

- `POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches` with `ref` and
  `inputs` (the workflow's declared inputs only, required ones present) answers 204; with
  `return_run_details: true` it answers 200 with `workflow_run_id`, `run_url` and `html_url`
  (GitHub since February 2026). In Enterprise Server mode (`run_details = False`) the parameter
  is refused with 422 like any key the server's schema does not know.
- A run is `queued`, then `in_progress` while its jobs run one after the other, then
  `completed` with a `conclusion`, on the fake's clock. Its title (`display_title`) is the
  workflow's `run-name` with `${{ inputs.x }}` filled in, or the workflow's name.
- A dispatched run shows in the workflow's list of runs a moment after the dispatch (GitHub
  lists it after a few seconds), newest first, filtered by `event`, `status`, `branch` and
  `created` (`>=2026-01-01T00:00:00Z`, `a..b`, a date), paginated with `Link`.
- `fail_runs()` is the fault switch: runs dispatched while it is on fail in the named job.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from bot.domain.clock import Now
from bot.sandbox.base import json_response, read_json_object
from bot.sandbox.paging import page_args, paginate

DOCS_URL = "https://docs.github.com/rest/actions/workflows#create-a-workflow-dispatch-event"
MAX_INPUTS = 25
_RUN_NAME_INPUT = re.compile(r"\$\{\{\s*inputs\.([A-Za-z0-9_-]+)\s*\}\}")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
RUN_STATUSES = ("queued", "in_progress", "completed")


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Workflow:
    """A workflow file with a `workflow_dispatch` trigger and its declared inputs."""

    id: int
    repo: str
    file: str
    name: str
    inputs: dict[str, bool]  # input name → required
    run_name: str | None
    jobs: tuple[str, ...]

    @property
    def path(self) -> str:
        """Where the file lives in the repository."""
        return f".github/workflows/{self.file}"


@dataclass
class WorkflowRun:
    """One run; where it stands is worked out from the clock whenever it is read."""

    id: int
    workflow: Workflow
    run_number: int
    event: str
    ref: str
    head_sha: str
    inputs: dict[str, Any]
    created_at: datetime
    queued_for: float
    runs_for: float
    failing_job: str | None = None
    listed_after: float = 0.0
    job_ids: list[int] = field(default_factory=list)

    @property
    def display_title(self) -> str:
        """The run's title: the workflow's run-name with the inputs filled in."""
        if self.workflow.run_name is None:
            return self.workflow.name
        return _RUN_NAME_INPUT.sub(
            lambda m: str(self.inputs.get(m.group(1), "")), self.workflow.run_name
        )

    def _slots(self) -> list[tuple[str, datetime, datetime]]:
        start = self.created_at + timedelta(seconds=self.queued_for)
        each = self.runs_for / max(len(self.workflow.jobs), 1)
        return [
            (
                name,
                start + timedelta(seconds=i * each),
                start + timedelta(seconds=(i + 1) * each),
            )
            for i, name in enumerate(self.workflow.jobs)
        ]

    def ends_at(self) -> datetime:
        """When the run completes: after its last job, or after the job that fails."""
        for name, _, end in self._slots():
            if name == self.failing_job:
                return end
        return self.created_at + timedelta(seconds=self.queued_for + self.runs_for)

    def status(self, now: datetime) -> str:
        """queued, in_progress or completed."""
        if now < self.created_at + timedelta(seconds=self.queued_for):
            return "queued"
        return "completed" if now >= self.ends_at() else "in_progress"

    def conclusion(self, now: datetime) -> str | None:
        """success or failure once completed; None before."""
        if self.status(now) != "completed":
            return None
        return "failure" if self.failing_job else "success"

    def jobs(self, now: datetime) -> list[dict[str, Any]]:
        """Each job with its status and conclusion as GitHub reports them."""
        found = []
        failed = False
        for (name, start, end), job_id in zip(self._slots(), self.job_ids, strict=True):
            if failed:
                status, conclusion, started, completed = "completed", "skipped", None, end
            elif now < start:
                status, conclusion, started, completed = "queued", None, None, None
            elif now < end:
                status, conclusion, started, completed = "in_progress", None, start, None
            else:
                failed = name == self.failing_job
                conclusion = "failure" if failed else "success"
                status, started, completed = "completed", start, end
            found.append(
                {
                    "id": job_id,
                    "name": name,
                    "status": status,
                    "conclusion": conclusion,
                    "started_at": _iso(started),
                    "completed_at": _iso(completed) if status == "completed" else None,
                }
            )
        return found


class FakeActions:
    """The Actions part of the fake GitHub; FakeGitHub owns one and serves its routes."""

    def __init__(
        self,
        clock: Now,
        resolve_ref: Callable[[str, str], str | None],
        *,
        durations: tuple[float, float] = (1.0, 3.0),
        list_delay: float = 1.0,
    ) -> None:
        """`durations`: seconds a run stays queued and then in progress (on `clock`);
        `list_delay`: seconds after creation before a run shows in the list of runs."""
        self.clock = clock
        self.resolve_ref = resolve_ref
        self.durations = durations
        self.list_delay = list_delay
        self.run_details = True  # False: an Enterprise Server that refuses return_run_details
        self.dispatches: list[dict[str, Any]] = []
        self._workflows: list[Workflow] = []
        self._runs: list[WorkflowRun] = []
        self._failing: dict[str | None, str] = {}  # workflow file (None: any) → failing job
        self._ids = itertools.count(20_000_001)
        self._numbers: dict[int, itertools.count[int]] = {}

    # -- controls ----------------------------------------------------------------------------
    def add_workflow(
        self,
        repo: str,
        file: str,
        *,
        name: str | None = None,
        inputs: Iterable[str] = (),
        required: Iterable[str] = (),
        run_name: str | None = None,
        jobs: Iterable[str] = ("build", "deploy"),
    ) -> Workflow:
        """Add a workflow with a `workflow_dispatch` trigger declaring `inputs`."""
        needed = set(required)
        declared = {n: n in needed for n in [*inputs, *needed]}
        workflow = Workflow(
            next(self._ids),
            repo,
            file,
            name or file.rsplit(".", 1)[0].replace("-", " ").title(),
            declared,
            run_name,
            tuple(jobs),
        )
        self._workflows.append(workflow)
        return workflow

    def fail_runs(
        self, on: bool = True, *, workflow: str | None = None, job: str = "deploy"
    ) -> None:
        """The fault switch: runs of `workflow` (any when None) started from now on fail in
        `job`; `on=False` lets them succeed again."""
        if on:
            self._failing[workflow] = job
        else:
            self._failing.pop(workflow, None)

    def add_run(
        self,
        repo: str,
        file: str,
        inputs: dict[str, Any] | None = None,
        *,
        event: str = "workflow_dispatch",
        ref: str = "main",
        created_at: datetime | None = None,
    ) -> WorkflowRun:
        """A run started by someone else (another dispatch, a push...)."""
        workflow = self.workflow(repo, file)
        if workflow is None:
            raise KeyError(f"no workflow {file} in {repo}")
        return self._start(workflow, ref, dict(inputs or {}), event, created_at)

    def workflow(self, repo: str, ident: str) -> Workflow | None:
        """A workflow of `repo` by file name or numeric id."""
        for workflow in self._workflows:
            if workflow.repo == repo and ident in (workflow.file, str(workflow.id)):
                return workflow
        return None

    def runs(self, *, workflow: str | None = None) -> list[WorkflowRun]:
        """Runs, oldest first (optionally of one workflow file)."""
        return [r for r in self._runs if workflow is None or r.workflow.file == workflow]

    def _start(
        self,
        workflow: Workflow,
        ref: str,
        inputs: dict[str, Any],
        event: str,
        created_at: datetime | None = None,
    ) -> WorkflowRun:
        numbers = self._numbers.setdefault(workflow.id, itertools.count(1))
        failing = self._failing.get(workflow.file, self._failing.get(None))
        run = WorkflowRun(
            id=next(self._ids),
            workflow=workflow,
            run_number=next(numbers),
            event=event,
            ref=ref,
            head_sha=self.resolve_ref(workflow.repo, ref) or "0" * 40,
            inputs=inputs,
            created_at=created_at or self.clock(),
            queued_for=self.durations[0],
            runs_for=self.durations[1],
            failing_job=failing if failing in workflow.jobs else None,
            listed_after=self.list_delay,
        )
        run.job_ids = [next(self._ids) for _ in workflow.jobs]
        self._runs.append(run)
        return run

    # -- HTTP --------------------------------------------------------------------------------
    def add_routes(self, app: web.Application, base: str) -> None:
        """The Actions endpoints under `base` (`/repos/{owner}/{repo}`)."""
        app.router.add_post(base + "/actions/workflows/{workflow}/dispatches", self._dispatch)
        app.router.add_get(base + "/actions/workflows/{workflow}/runs", self._list_runs)
        app.router.add_get(base + "/actions/runs/{run_id}", self._get_run)
        app.router.add_get(base + "/actions/runs/{run_id}/jobs", self._jobs)

    def _repo(self, request: web.Request) -> str:
        return f"{request.match_info['owner']}/{request.match_info['repo']}"

    async def _dispatch(self, request: web.Request) -> web.Response:
        repo = self._repo(request)
        workflow = self.workflow(repo, request.match_info["workflow"])
        if workflow is None:
            return _not_found()
        body = await read_json_object(request)
        if body is None:
            return json_response(
                {"message": "Problems parsing JSON", "documentation_url": DOCS_URL}, 400
            )
        permitted = {"ref", "inputs"} | ({"return_run_details"} if self.run_details else set())
        for key in body:
            if key not in permitted:
                return _invalid(f'"{key}" is not a permitted key.')
        ref = body.get("ref")
        if not isinstance(ref, str) or not ref:
            return _invalid('"ref" wasn\'t supplied.')
        details = body.get("return_run_details", False)
        if not isinstance(details, bool):
            return _invalid('For "properties/return_run_details", "yes" is not a boolean.')
        inputs = body.get("inputs", {})
        if not isinstance(inputs, dict):
            return _invalid('For "properties/inputs", it is not an object.')
        if self.resolve_ref(repo, ref) is None:
            return _unprocessable(f"No ref found for: {ref}")
        unexpected = [name for name in inputs if name not in workflow.inputs]
        if unexpected:
            listed = ", ".join(f'"{n}"' for n in unexpected)
            return _unprocessable(f"Unexpected inputs provided: [{listed}]")
        for name, required in workflow.inputs.items():
            if required and name not in inputs:
                return _unprocessable(f"Required input '{name}' not provided")
        if len(inputs) > MAX_INPUTS:
            return _unprocessable(f"you may only define up to {MAX_INPUTS} `inputs`")
        if any(not isinstance(v, str | int | float | bool) for v in inputs.values()):
            return _invalid('For "properties/inputs", the values must be strings.')
        run = self._start(workflow, ref, dict(inputs), "workflow_dispatch")
        self.dispatches.append(
            {"repo": repo, "workflow": workflow.file, "body": body, "run": run.id}
        )
        if not details:
            return web.Response(status=204)
        api = str(request.url.origin())
        return json_response(
            {
                "workflow_run_id": run.id,
                "run_url": f"{api}/repos/{repo}/actions/runs/{run.id}",
                "html_url": _html_url(repo, run.id),
            }
        )

    async def _list_runs(self, request: web.Request) -> web.Response:
        repo = self._repo(request)
        workflow = self.workflow(repo, request.match_info["workflow"])
        if workflow is None:
            return _not_found()
        paging = page_args(request)
        created = _created_filter(request.query.get("created"))
        if paging is None or created is None:
            return _unprocessable("created, per_page and page must be valid")
        now = self.clock()
        wanted = {k: request.query.get(k) for k in ("event", "status", "branch")}
        runs = [
            r
            for r in sorted(self._runs, key=lambda r: (r.created_at, r.id), reverse=True)
            if r.workflow is workflow
            and now >= r.created_at + timedelta(seconds=r.listed_after)
            and created(r.created_at)
            and (wanted["event"] is None or r.event == wanted["event"])
            and (wanted["branch"] is None or r.ref == wanted["branch"])
            and (wanted["status"] is None or wanted["status"] in (r.status(now), r.conclusion(now)))
        ]
        page, headers = paginate(request, runs, *paging)
        body = {
            "total_count": len(runs),
            "workflow_runs": [self._run_json(request, r, now) for r in page],
        }
        return json_response(body, headers=headers)

    def _find_run(self, request: web.Request) -> WorkflowRun | None:
        repo = self._repo(request)
        wanted = request.match_info["run_id"]
        return next(
            (r for r in self._runs if str(r.id) == wanted and r.workflow.repo == repo), None
        )

    async def _get_run(self, request: web.Request) -> web.Response:
        run = self._find_run(request)
        if run is None:
            return _not_found()
        return json_response(self._run_json(request, run, self.clock()))

    async def _jobs(self, request: web.Request) -> web.Response:
        run = self._find_run(request)
        if run is None:
            return _not_found()
        paging = page_args(request)
        if paging is None:
            return _unprocessable("per_page and page must be integers")
        repo = run.workflow.repo
        jobs = [
            {
                **job,
                "run_id": run.id,
                "run_url": f"{request.url.origin()}/repos/{repo}/actions/runs/{run.id}",
                "html_url": f"{_html_url(repo, run.id)}/job/{job['id']}",
                "workflow_name": run.workflow.name,
                "head_branch": run.ref,
                "head_sha": run.head_sha,
                "run_attempt": 1,
                "steps": [],
            }
            for job in run.jobs(self.clock())
        ]
        page, headers = paginate(request, jobs, *paging)
        return json_response({"total_count": len(jobs), "jobs": page}, headers=headers)

    def _run_json(self, request: web.Request, run: WorkflowRun, now: datetime) -> dict[str, Any]:
        repo = run.workflow.repo
        api = f"{request.url.origin()}/repos/{repo}/actions/runs/{run.id}"
        status = run.status(now)
        started = run.created_at + timedelta(seconds=run.queued_for)
        return {
            "id": run.id,
            "name": run.workflow.name,
            "display_title": run.display_title,
            "run_number": run.run_number,
            "run_attempt": 1,
            "event": run.event,
            "status": status,
            "conclusion": run.conclusion(now),
            "workflow_id": run.workflow.id,
            "path": run.workflow.path,
            "head_branch": run.ref,
            "head_sha": run.head_sha,
            "url": api,
            "html_url": _html_url(repo, run.id),
            "jobs_url": f"{api}/jobs",
            "logs_url": f"{api}/logs",
            "created_at": _iso(run.created_at),
            "updated_at": _iso(min(now, run.ends_at()) if status == "completed" else now),
            "run_started_at": _iso(started) if status != "queued" else None,
            "actor": {"login": "golive[bot]", "type": "Bot"},
            "triggering_actor": {"login": "golive[bot]", "type": "Bot"},
            "repository": {"full_name": repo},
        }


def _html_url(repo: str, run_id: int) -> str:
    return f"https://github.com/{repo}/actions/runs/{run_id}"


def _not_found() -> web.Response:
    return json_response({"message": "Not Found", "documentation_url": DOCS_URL}, 404)


def _invalid(detail: str) -> web.Response:
    """GitHub's answer to a body its schema refuses."""
    return json_response(
        {"message": f"Invalid request.\n\n{detail}", "documentation_url": DOCS_URL}, 422
    )


def _unprocessable(message: str) -> web.Response:
    return json_response({"message": message, "documentation_url": DOCS_URL}, 422)


def _moment(text: str, end_of_day: bool = False) -> datetime | None:
    try:
        if _DATE.match(text):
            day = datetime.fromisoformat(text + "T00:00:00+00:00")
            return day + timedelta(days=1) - timedelta(microseconds=1) if end_of_day else day
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _created_filter(text: str | None) -> Callable[[datetime], bool] | None:
    """GitHub's `created` search syntax as a predicate; None when it cannot be read."""
    if not text:
        return lambda moment: True
    for op in (">=", "<=", ">", "<"):
        if text.startswith(op):
            bound = _moment(text[len(op) :], end_of_day=op in ("<=", ">"))
            if bound is None:
                return None
            return {
                ">=": lambda m, b=bound: m >= b,
                "<=": lambda m, b=bound: m <= b,
                ">": lambda m, b=bound: m > b,
                "<": lambda m, b=bound: m < b,
            }[op]
    if ".." in text:
        low, _, high = text.partition("..")
        start = None if low == "*" else _moment(low)
        end = None if high == "*" else _moment(high, end_of_day=True)
        if (low != "*" and start is None) or (high != "*" and end is None):
            return None
        return lambda m: (start is None or m >= start) and (end is None or m <= end)
    day = _moment(text)
    if day is None:
        return None
    last = _moment(text, end_of_day=True) if _DATE.match(text) else day
    assert last is not None
    return lambda m: day <= m <= last
