"""FakeGitHub: check runs, commit statuses, pull requests and Actions workflow runs as GitHub's
REST API serves them, and repository webhooks delivered as GitHub delivers them (signed, with
its headers)."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import math
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from aiohttp import web

from bot.domain.clock import Now
from bot.sandbox.base import FakeServer, json_response, read_json_object
from bot.sandbox.paging import page_args as _page_args
from bot.sandbox.paging import paginate
from bot.sandbox.workflows import FakeActions

DEFAULT_TOKEN = "ghp_golive_sandbox_github_token_0001"
DEFAULT_WEBHOOK_SECRET = "golive-sandbox-webhook-secret-7d1e"
DOCS_URL = "https://docs.github.com/rest"
RELEASES_DOCS_URL = "https://docs.github.com/rest/releases/releases"
# GitHub refuses a release body longer than this (422 "body is too long").
RELEASE_BODY_LIMIT = 125_000
PUSH = web.RequestKey("push", bool)  # does the request's token have push access?
CHECK_STATUSES = ("queued", "in_progress", "completed")
CHECK_CONCLUSIONS = (
    "success",
    "failure",
    "neutral",
    "cancelled",
    "skipped",
    "timed_out",
    "action_required",
)
STATUS_STATES = ("error", "failure", "pending", "success")
RATE_LIMIT = 5000
RATE_DOCS_URL = "https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api"
# Rate limiting as GitHub documents it: the primary limit answers 403 (or 429) with
# `x-ratelimit-remaining: 0` and `x-ratelimit-reset` (epoch seconds); a secondary limit answers
# 403 (or 429) with `retry-after` (seconds). Either lasts until the fake's clock passes its end.
FAULT_SWITCHES = ("primary_rate_limit", "secondary_rate_limit")
_SHA = re.compile(r"^[0-9a-f]{40}$")
HOOKSHOT = "GitHub-Hookshot/golive-sandbox"
DELIVERY_TIMEOUT = 10.0  # GitHub gives up on a delivery that gets no answer in 10 s


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def fake_sha(*parts: str) -> str:
    """A stable 40-hex commit id derived from `parts`."""
    return hashlib.sha1("/".join(parts).encode()).hexdigest()


@dataclass
class CheckRun:
    """One check run on a commit; `green_after_polls` makes it finish after that many polls."""

    id: int
    name: str
    head_sha: str
    status: str = "completed"
    conclusion: str | None = "success"
    started_at: datetime | None = None
    completed_at: datetime | None = None
    green_after_polls: int | None = None
    final_conclusion: str = "success"


@dataclass
class CommitStatus:
    """One commit status (context/state) as set by a CI system or posted through the API."""

    id: int
    sha: str
    context: str
    state: str
    description: str | None
    target_url: str | None
    created_at: datetime


@dataclass
class PullRequest:
    """An open (or closed) pull request from head_ref into base_ref."""

    number: int
    title: str
    head_ref: str
    head_sha: str
    base_ref: str = "main"
    state: str = "open"
    merged: bool = False


@dataclass
class Webhook:
    """A repository webhook: where GitHub delivers which events, signed with `secret`."""

    id: int
    repo: str
    url: str
    secret: str | None
    events: tuple[str, ...] = ("pull_request",)


@dataclass
class Delivery:
    """One webhook delivery as sent, and what the receiver answered (None: no answer)."""

    id: str
    hook_id: int
    event: str
    action: str | None
    body: bytes
    headers: dict[str, str]
    status: int | None = None
    answer: str = ""


@dataclass
class GitHubRelease:
    """A release: published ones are found by tag; drafts only by listing, with push access."""

    id: int
    tag_name: str
    name: str | None
    body: str | None
    draft: bool
    created_at: datetime
    published_at: datetime | None = None
    prerelease: bool = False


@dataclass
class _Repo:
    refs: dict[str, str] = field(default_factory=dict)
    check_runs: dict[str, list[CheckRun]] = field(default_factory=dict)
    statuses: dict[str, list[CommitStatus]] = field(default_factory=dict)
    pulls: list[PullRequest] = field(default_factory=list)
    polls: dict[str, int] = field(default_factory=dict)
    releases: list[GitHubRelease] = field(default_factory=list)


class FakeGitHub(FakeServer):
    """GitHub's REST API for check runs, combined status, pulls and posting commit statuses."""

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        clock: Now | None = None,
        read_only_token: str | None = None,
        run_durations: tuple[float, float] = (1.0, 3.0),
    ) -> None:
        """Accept `Authorization: Bearer <token>` or `token <token>`; everything else is 401.

        `token` has push access; `read_only_token`, when given, may read but not write, and,
        as on GitHub, does not see draft releases. `run_durations`: seconds a workflow run
        stays queued, then in progress (`actions`).
        """
        super().__init__(clock=clock)
        self.token = token
        self.read_only_token = read_only_token
        self.release_patches: list[tuple[int, dict[str, Any]]] = []
        # GitHub Actions: workflows, dispatches, runs and jobs (bot.sandbox.workflows).
        self.actions = FakeActions(self.clock, self.sha_of, durations=run_durations)
        self.link_base: str | None = None
        self.posted_statuses: list[CommitStatus] = []
        self.faults: dict[str, bool] = dict.fromkeys(FAULT_SWITCHES, False)
        self._limited_until: datetime | None = None
        self._limit_status = 403
        self._used = 0
        self._repos: dict[str, _Repo] = {}
        self._ids = itertools.count(10_000_001)
        self._pr_numbers = itertools.count(101)
        self._pushes = itertools.count(1)
        self.webhooks: list[Webhook] = []
        self.deliveries: list[Delivery] = []

    # -- controls ----------------------------------------------------------------------------
    def set_fault_switch(
        self, name: str, on: bool = True, *, seconds: float = 60.0, status: int = 403
    ) -> None:
        """Rate-limit every API call for `seconds` of the fake's clock (HTTP `status`, 403 or
        429) the primary or secondary way (FAULT_SWITCHES); `on=False` lifts it."""
        if name not in self.faults:
            raise KeyError(f"unknown fault switch {name!r}; expected one of {FAULT_SWITCHES}")
        if status not in (403, 429):
            raise ValueError("GitHub rate-limits with 403 or 429")
        self.faults = dict.fromkeys(FAULT_SWITCHES, False)
        self.faults[name] = on
        self._limited_until = self.clock() + timedelta(seconds=seconds) if on else None
        self._limit_status = status

    def repo(self, repo: str) -> _Repo:
        """The state of `owner/name`, created on first use (an unknown repository is a 404)."""
        return self._repos.setdefault(repo, _Repo())

    def set_ref(self, repo: str, ref: str, sha: str | None = None) -> str:
        """Point branch/tag `ref` at `sha` (default: a stable fake sha); returns the sha."""
        sha = sha or fake_sha(repo, ref)
        self.repo(repo).refs[ref] = sha
        return sha

    def sha_of(self, repo: str, ref: str) -> str | None:
        """The commit a ref resolves to (a 40-hex sha resolves to itself)."""
        state = self._repos.get(repo)
        if state is None:
            return None
        if ref in state.refs:
            return state.refs[ref]
        return ref if _SHA.match(ref) else None

    def _sha_for_control(self, repo: str, ref: str) -> str:
        return self.sha_of(repo, ref) or self.set_ref(repo, ref)

    def set_check_run(
        self,
        repo: str,
        ref: str,
        name: str,
        *,
        status: str = "completed",
        conclusion: str | None = "success",
    ) -> CheckRun:
        """Create or replace the check run `name` on `ref` (conclusion only when completed)."""
        if status not in CHECK_STATUSES:
            raise ValueError(f"status must be one of {CHECK_STATUSES}")
        if status == "completed" and conclusion not in CHECK_CONCLUSIONS:
            raise ValueError(f"conclusion must be one of {CHECK_CONCLUSIONS}")
        sha = self._sha_for_control(repo, ref)
        now = self.clock()
        run = CheckRun(
            id=next(self._ids),
            name=name,
            head_sha=sha,
            status=status,
            conclusion=conclusion if status == "completed" else None,
            started_at=None if status == "queued" else now,
            completed_at=now if status == "completed" else None,
        )
        runs = self.repo(repo).check_runs.setdefault(sha, [])
        runs[:] = [r for r in runs if r.name != name] + [run]
        return run

    def pending_then_green(
        self, repo: str, ref: str, name: str, polls: int, *, conclusion: str = "success"
    ) -> CheckRun:
        """Check `name` is in_progress for the next `polls` polls of check-runs, then completes."""
        run = self.set_check_run(repo, ref, name, status="in_progress")
        run.green_after_polls = self.polls(repo, ref) + polls
        run.final_conclusion = conclusion
        return run

    def remove_check_runs(self, repo: str, ref: str, *names: str) -> None:
        """Delete the named check runs on `ref` (all of them when no name is given)."""
        runs = self.repo(repo).check_runs.setdefault(self._sha_for_control(repo, ref), [])
        runs[:] = [r for r in runs if names and r.name not in names]

    def polls(self, repo: str, ref: str) -> int:
        """How many times the check-runs endpoint was read for `ref`."""
        sha = self.sha_of(repo, ref)
        return 0 if sha is None else self.repo(repo).polls.get(sha, 0)

    def set_commit_status(
        self,
        repo: str,
        ref: str,
        context: str,
        state: str,
        description: str | None = None,
        target_url: str | None = None,
    ) -> CommitStatus:
        """Add a commit status on `ref` as another CI system would (the latest per context wins)."""
        if state not in STATUS_STATES:
            raise ValueError(f"state must be one of {STATUS_STATES}")
        return self._add_status(
            repo, self._sha_for_control(repo, ref), context, state, description, target_url
        )

    def _add_status(
        self,
        repo: str,
        sha: str,
        context: str,
        state: str,
        description: str | None,
        target_url: str | None,
    ) -> CommitStatus:
        status = CommitStatus(
            next(self._ids), sha, context, state, description, target_url, self.clock()
        )
        self.repo(repo).statuses.setdefault(sha, []).append(status)
        return status

    def add_pull(
        self,
        repo: str,
        title: str,
        *,
        head_ref: str | None = None,
        base: str = "main",
        number: int | None = None,
        head_sha: str | None = None,
    ) -> PullRequest:
        """Open a pull request into `base`; its head commit gets a stable fake sha."""
        number = number or next(self._pr_numbers)
        head_ref = head_ref or f"feature/pr-{number}"
        pull = PullRequest(
            number, title, head_ref, head_sha or fake_sha(repo, "pull", str(number)), base
        )
        self.repo(repo).pulls.append(pull)
        return pull

    def set_pulls(self, repo: str, pulls: Iterable[PullRequest]) -> None:
        """Replace the pull requests of `repo`."""
        self.repo(repo).pulls = list(pulls)

    def close_pull(self, repo: str, number: int, *, merged: bool = False) -> None:
        """Mark pull request `number` closed (and merged, if `merged`)."""
        for pull in self.repo(repo).pulls:
            if pull.number == number:
                pull.state = "closed"
                pull.merged = merged

    def pull(self, repo: str, number: int) -> PullRequest | None:
        """Pull request `number` of `repo`, if there is one."""
        return next((p for p in self.repo(repo).pulls if p.number == number), None)

    # -- webhooks: what GitHub sends when pull requests change ---------------------------------
    async def add_webhook(
        self,
        repo: str,
        url: str,
        secret: str | None,
        events: tuple[str, ...] = ("pull_request",),
    ) -> Webhook:
        """Create a repository webhook; GitHub then sends it a `ping`."""
        hook = Webhook(next(self._ids), repo, url, secret, events)
        self.webhooks.append(hook)
        ping = {
            "zen": "Keep it logically awesome.",
            "hook_id": hook.id,
            "hook": {
                "type": "Repository",
                "id": hook.id,
                "active": True,
                "events": list(events),
                "config": {"content_type": "json", "url": url, "insecure_ssl": "0"},
            },
            "repository": _repository_json(repo),
            "sender": {"login": "octocat", "type": "User"},
        }
        await self._send(hook, "ping", ping)
        return hook

    async def open_pull(
        self, repo: str, title: str, *, base: str = "main", head_ref: str | None = None
    ) -> PullRequest:
        """Open a pull request and deliver `pull_request` `opened`."""
        pull = self.add_pull(repo, title, base=base, head_ref=head_ref)
        await self.deliver_pull(repo, pull, "opened")
        return pull

    async def push(self, repo: str, number: int, sha: str | None = None) -> PullRequest:
        """Push a new commit to a pull request's branch and deliver `synchronize`."""
        pull = self.pull(repo, number)
        if pull is None:
            raise KeyError(f"no pull request #{number} in {repo}")
        before = pull.head_sha
        pull.head_sha = sha or fake_sha(repo, "pull", str(number), "push", str(next(self._pushes)))
        await self.deliver_pull(repo, pull, "synchronize", before=before, after=pull.head_sha)
        return pull

    async def reopen_pull(self, repo: str, number: int) -> PullRequest:
        """Reopen a closed pull request and deliver `reopened`."""
        pull = self.pull(repo, number)
        if pull is None:
            raise KeyError(f"no pull request #{number} in {repo}")
        pull.state = "open"
        await self.deliver_pull(repo, pull, "reopened")
        return pull

    async def deliver_pull(
        self, repo: str, pull: PullRequest, action: str, **extra: Any
    ) -> list[Delivery]:
        """Deliver a `pull_request` event about `pull` to every hook of `repo` that wants it."""
        payload = {
            "action": action,
            "number": pull.number,
            "pull_request": _pull_json(repo, pull),
            "repository": _repository_json(repo),
            "sender": {"login": "octocat", "type": "User"},
            **extra,
        }
        hooks = [h for h in self.webhooks if h.repo == repo and "pull_request" in h.events]
        return [await self._send(hook, "pull_request", payload) for hook in hooks]

    async def redeliver(self, delivery: Delivery) -> Delivery:
        """Send a delivery again, as GitHub's "Redeliver" does: same body, same delivery id."""
        hook = next(h for h in self.webhooks if h.id == delivery.hook_id)
        return await self._post(hook, delivery.id, delivery.event, delivery.action, delivery.body)

    async def _send(self, hook: Webhook, event: str, payload: dict[str, Any]) -> Delivery:
        body = json.dumps(payload).encode()
        action = payload.get("action")
        return await self._post(hook, str(uuid.uuid4()), event, action, body)

    async def _post(
        self, hook: Webhook, delivery_id: str, event: str, action: str | None, body: bytes
    ) -> Delivery:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": HOOKSHOT,
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery_id,
            "X-GitHub-Hook-ID": str(hook.id),
            "X-GitHub-Hook-Installation-Target-Type": "repository",
        }
        if hook.secret is not None:
            digest = hmac.new(hook.secret.encode(), body, hashlib.sha256).hexdigest()
            headers["X-Hub-Signature-256"] = f"sha256={digest}"
        delivery = Delivery(delivery_id, hook.id, event, action, body, headers)
        timeout = aiohttp.ClientTimeout(total=DELIVERY_TIMEOUT)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.post(hook.url, data=body, headers=headers) as response,
            ):
                delivery.status = response.status
                delivery.answer = (await response.text())[:2000]
        except (aiohttp.ClientError, TimeoutError) as exc:  # GitHub records a failed delivery
            delivery.answer = f"{type(exc).__name__}: {exc}"
        self.deliveries.append(delivery)
        return delivery

    def add_release(
        self,
        repo: str,
        tag: str,
        *,
        body: str | None = "",
        draft: bool = False,
        name: str | None = None,
    ) -> GitHubRelease:
        """Create a release for `tag` (a draft until `publish_release`)."""
        now = self.clock()
        release = GitHubRelease(
            id=next(self._ids),
            tag_name=tag,
            name=name if name is not None else tag,
            body=body,
            draft=draft,
            created_at=now,
            published_at=None if draft else now,
        )
        if not draft:
            self._sha_for_control(repo, tag)  # publishing creates the tag
        self.repo(repo).releases.append(release)
        return release

    def publish_release(self, repo: str, release_id: int) -> GitHubRelease:
        """Publish a draft: its tag now exists and the tags endpoint finds it."""
        release = self.release(repo, release_id)
        if release is None:
            raise KeyError(f"no release {release_id} in {repo}")
        release.draft = False
        release.published_at = self.clock()
        self._sha_for_control(repo, release.tag_name)
        return release

    def release(self, repo: str, release_id: int) -> GitHubRelease | None:
        """A release by id, draft or not."""
        return next((r for r in self.repo(repo).releases if r.id == release_id), None)

    def statuses_posted(
        self, *, context: str | None = None, sha: str | None = None
    ) -> list[CommitStatus]:
        """Commit statuses received through the API, oldest first, optionally filtered."""
        return [
            s
            for s in self.posted_statuses
            if (context is None or s.context == context) and (sha is None or s.sha == sha)
        ]

    def latest_status(self, repo: str, sha: str, context: str) -> CommitStatus | None:
        """The current status of `context` on commit `sha`."""
        found = [s for s in self.repo(repo).statuses.get(sha, []) if s.context == context]
        return found[-1] if found else None

    # -- HTTP --------------------------------------------------------------------------------
    def fault_scope(self, request: web.Request) -> str | None:
        """Faults can be set per repository: `set_fault(mode, scope="owner/name")`."""
        owner, name = request.match_info.get("owner"), request.match_info.get("repo")
        return f"{owner}/{name}" if owner and name else None

    def add_routes(self, app: web.Application) -> None:
        """GitHub REST endpoints used by golive."""
        base = "/repos/{owner}/{repo}"
        app.router.add_get(base + "/commits/{ref:.+}/check-runs", self._check_runs)
        app.router.add_get(base + "/commits/{ref:.+}/status", self._combined_status)
        app.router.add_get(base + "/pulls", self._pulls)
        app.router.add_get(base + "/pulls/{number}", self._pull)
        app.router.add_post(base + "/statuses/{sha}", self._post_status)
        app.router.add_get(base + "/releases", self._releases)
        app.router.add_get(base + "/releases/tags/{tag:.+}", self._release_by_tag)
        app.router.add_get(base + r"/releases/{id:\d+}", self._get_release)
        app.router.add_patch(base + r"/releases/{id:\d+}", self._patch_release)
        self.actions.add_routes(app, base)

    def extra_middlewares(self) -> list[Any]:
        """Authentication: a Bearer or `token` Authorization header with the right token."""

        @web.middleware
        async def auth(request: web.Request, handler: Any) -> web.StreamResponse:
            scheme, _, value = request.headers.get("Authorization", "").partition(" ")
            tokens = {self.token: True}
            if self.read_only_token:
                tokens[self.read_only_token] = False
            if scheme.lower() not in ("bearer", "token") or value.strip() not in tokens:
                return json_response(
                    {"message": "Bad credentials", "documentation_url": DOCS_URL}, 401
                )
            request[PUSH] = tokens[value.strip()]
            response: web.StreamResponse = await handler(request)
            return response

        @web.middleware
        async def rate(request: web.Request, handler: Any) -> web.StreamResponse:
            now = self.clock()
            if self._limited_until is not None and now < self._limited_until:
                return self._rate_limited(now, self._limited_until)
            self._used += 1
            response: web.StreamResponse = await handler(request)
            reset = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
            response.headers.update(
                {
                    "x-ratelimit-limit": str(RATE_LIMIT),
                    "x-ratelimit-remaining": str(max(RATE_LIMIT - self._used, 0)),
                    "x-ratelimit-used": str(self._used),
                    "x-ratelimit-reset": str(int(reset.timestamp())),
                    "x-ratelimit-resource": "core",
                }
            )
            return response

        return [auth, rate]

    def _rate_limited(self, now: datetime, until: datetime) -> web.Response:
        if self.faults["secondary_rate_limit"]:
            message = (
                "You have exceeded a secondary rate limit. Please wait a few minutes before "
                "you try again."
            )
            wait = max(math.ceil((until - now).total_seconds()), 1)
            headers = {"retry-after": str(wait)}
        else:
            message = "API rate limit exceeded for user ID 1."
            headers = {
                "x-ratelimit-limit": str(RATE_LIMIT),
                "x-ratelimit-remaining": "0",
                "x-ratelimit-used": str(RATE_LIMIT),
                "x-ratelimit-reset": str(math.ceil(until.timestamp())),
                "x-ratelimit-resource": "core",
            }
        body = {"message": message, "documentation_url": RATE_DOCS_URL}
        return json_response(body, self._limit_status, headers=headers)

    def _locate(self, request: web.Request, ref: str) -> tuple[str, _Repo, str] | web.Response:
        repo = f"{request.match_info['owner']}/{request.match_info['repo']}"
        state = self._repos.get(repo)
        if state is None:
            return json_response({"message": "Not Found", "documentation_url": DOCS_URL}, 404)
        sha = self.sha_of(repo, ref)
        if sha is None:
            return json_response(
                {"message": f"No commit found for SHA: {ref}", "documentation_url": DOCS_URL},
                422,
            )
        return repo, state, sha

    async def _check_runs(self, request: web.Request) -> web.Response:
        located = self._locate(request, request.match_info["ref"])
        if isinstance(located, web.Response):
            return located
        repo, state, sha = located
        paging = _page_args(request)
        if paging is None:
            return _validation_failed("per_page and page must be integers")
        state.polls[sha] = state.polls.get(sha, 0) + 1
        runs = state.check_runs.get(sha, [])
        for run in runs:
            self._maybe_finish(run, state.polls[sha])
        wanted_name = request.query.get("check_name")
        wanted_status = request.query.get("status")
        selected = [
            r
            for r in runs
            if (wanted_name is None or r.name == wanted_name)
            and (wanted_status is None or r.status == wanted_status)
        ]
        page, headers = paginate(request, selected, *paging, link_base=self.link_base)
        body = {"total_count": len(selected), "check_runs": [self._run_json(repo, r) for r in page]}
        return json_response(body, headers=headers)

    def _maybe_finish(self, run: CheckRun, polls: int) -> None:
        if run.green_after_polls is not None and polls > run.green_after_polls:
            run.status, run.conclusion = "completed", run.final_conclusion
            run.completed_at, run.green_after_polls = self.clock(), None

    def _run_json(self, repo: str, run: CheckRun) -> dict[str, Any]:
        return {
            "id": run.id,
            "name": run.name,
            "head_sha": run.head_sha,
            "status": run.status,
            "conclusion": run.conclusion,
            "url": f"https://api.github.com/repos/{repo}/check-runs/{run.id}",
            "html_url": f"https://github.com/{repo}/runs/{run.id}",
            "details_url": f"https://github.com/{repo}/runs/{run.id}",
            "started_at": _iso(run.started_at),
            "completed_at": _iso(run.completed_at),
            "output": {"title": run.name, "summary": "", "annotations_count": 0},
            "app": {"slug": "github-actions", "name": "GitHub Actions"},
            "pull_requests": [],
        }

    async def _combined_status(self, request: web.Request) -> web.Response:
        located = self._locate(request, request.match_info["ref"])
        if isinstance(located, web.Response):
            return located
        repo, state, sha = located
        paging = _page_args(request, default=100)
        if paging is None:
            return _validation_failed("per_page and page must be integers")
        latest: dict[str, CommitStatus] = {}
        for status in state.statuses.get(sha, []):
            latest[status.context] = status
        statuses = sorted(latest.values(), key=lambda s: (s.created_at, s.id), reverse=True)
        page, headers = paginate(request, statuses, *paging, link_base=self.link_base)
        body = {
            "state": combined_state([s.state for s in statuses]),
            "sha": sha,
            "total_count": len(statuses),
            "statuses": [_status_json(repo, s) for s in page],
            "commit_url": f"https://api.github.com/repos/{repo}/commits/{sha}",
            "repository": {"full_name": repo},
        }
        return json_response(body, headers=headers)

    async def _pulls(self, request: web.Request) -> web.Response:
        repo = f"{request.match_info['owner']}/{request.match_info['repo']}"
        if repo not in self._repos:
            return json_response({"message": "Not Found", "documentation_url": DOCS_URL}, 404)
        paging = _page_args(request)
        wanted_state = request.query.get("state", "open")
        if paging is None or wanted_state not in ("open", "closed", "all"):
            return _validation_failed("state must be open, closed or all")
        base = request.query.get("base")
        pulls = [
            p
            for p in sorted(self._repos[repo].pulls, key=lambda p: p.number, reverse=True)
            if (wanted_state == "all" or p.state == wanted_state)
            and (base is None or p.base_ref == base)
        ]
        page, headers = paginate(request, pulls, *paging, link_base=self.link_base)
        return json_response([_pull_json(repo, p) for p in page], headers=headers)

    async def _pull(self, request: web.Request) -> web.Response:
        repo = f"{request.match_info['owner']}/{request.match_info['repo']}"
        number = request.match_info["number"]
        pull = (
            self.pull(repo, int(number))
            if repo in self._repos and number.isascii() and number.isdigit()
            else None
        )
        if pull is None:
            return json_response({"message": "Not Found", "documentation_url": DOCS_URL}, 404)
        return json_response(_pull_json(repo, pull))

    async def _post_status(self, request: web.Request) -> web.Response:
        located = self._locate(request, request.match_info["sha"])
        if isinstance(located, web.Response):
            return located
        repo, _, sha = located
        body = await read_json_object(request)
        if body is None:
            return json_response(
                {"message": "Problems parsing JSON", "documentation_url": DOCS_URL}, 400
            )
        state = body.get("state")
        if state not in STATUS_STATES:
            return _validation_failed("state is not included in the list", field_name="state")
        for key in ("context", "description", "target_url"):
            if body.get(key) is not None and not isinstance(body[key], str):
                return _validation_failed(f"{key} must be a string", field_name=key)
        status = self._add_status(
            repo,
            sha,
            body.get("context") or "default",
            state,
            body.get("description"),
            body.get("target_url"),
        )
        self.posted_statuses.append(status)
        return json_response(_status_json(repo, status), 201)

    def _release_repo(self, request: web.Request) -> tuple[str, _Repo] | web.Response:
        repo = f"{request.match_info['owner']}/{request.match_info['repo']}"
        state = self._repos.get(repo)
        if state is None:
            return _not_found()
        return repo, state

    def _visible(self, request: web.Request, release: GitHubRelease) -> bool:
        return not release.draft or request.get(PUSH, False)

    async def _releases(self, request: web.Request) -> web.Response:
        found = self._release_repo(request)
        if isinstance(found, web.Response):
            return found
        repo, state = found
        paging = _page_args(request)
        if paging is None:
            return _validation_failed("per_page and page must be integers")
        shown = [r for r in reversed(state.releases) if self._visible(request, r)]
        page, headers = paginate(request, shown, *paging, link_base=self.link_base)
        return json_response([_release_json(repo, r) for r in page], headers=headers)

    async def _release_by_tag(self, request: web.Request) -> web.Response:
        found = self._release_repo(request)
        if isinstance(found, web.Response):
            return found
        repo, state = found
        tag = request.match_info["tag"]
        # "Get a published release with the specified tag": drafts are never found here.
        release = next(
            (r for r in reversed(state.releases) if r.tag_name == tag and not r.draft), None
        )
        if release is None:
            return _not_found("get-a-release-by-tag-name")
        return json_response(_release_json(repo, release))

    def _find_release(self, request: web.Request) -> tuple[str, GitHubRelease] | web.Response:
        found = self._release_repo(request)
        if isinstance(found, web.Response):
            return found
        repo, state = found
        wanted = int(request.match_info["id"])
        release = next((r for r in state.releases if r.id == wanted), None)
        if release is None or not self._visible(request, release):
            return _not_found("get-a-release")
        return repo, release

    async def _get_release(self, request: web.Request) -> web.Response:
        found = self._find_release(request)
        if isinstance(found, web.Response):
            return found
        repo, release = found
        return json_response(_release_json(repo, release))

    async def _patch_release(self, request: web.Request) -> web.Response:
        found = self._find_release(request)
        if isinstance(found, web.Response):
            return found
        repo, release = found
        if not request.get(PUSH, False):
            return json_response(
                {
                    "message": "Resource not accessible by personal access token",
                    "documentation_url": f"{RELEASES_DOCS_URL}#update-a-release",
                    "status": "403",
                },
                403,
            )
        body = await read_json_object(request)
        if body is None:
            return json_response(
                {"message": "Problems parsing JSON", "documentation_url": DOCS_URL}, 400
            )
        text = body.get("body", release.body)
        if text is not None and not isinstance(text, str):
            return _validation_failed(
                "body must be a string", field_name="body", resource="Release"
            )
        if text is not None and len(text) > RELEASE_BODY_LIMIT:
            return _validation_failed(
                f"body is too long (maximum is {RELEASE_BODY_LIMIT} characters)",
                field_name="body",
                resource="Release",
            )
        self.release_patches.append((release.id, body))
        release.body = text
        if body.get("draft") is False and release.draft:
            release.draft = False
            release.published_at = self.clock()
            self._sha_for_control(repo, release.tag_name)
        return json_response(_release_json(repo, release))


def _not_found(anchor: str | None = None) -> web.Response:
    docs = f"{RELEASES_DOCS_URL}#{anchor}" if anchor else DOCS_URL
    return json_response({"message": "Not Found", "documentation_url": docs, "status": "404"}, 404)


def _release_json(repo: str, release: GitHubRelease) -> dict[str, Any]:
    # A draft's page lives under an `untagged-…` name until it is published.
    tag_path = f"untagged-{release.id:x}" if release.draft else release.tag_name
    return {
        "url": f"https://api.github.com/repos/{repo}/releases/{release.id}",
        "html_url": f"https://github.com/{repo}/releases/tag/{tag_path}",
        "id": release.id,
        "node_id": f"RE_{release.id}",
        "tag_name": release.tag_name,
        "target_commitish": "main",
        "name": release.name,
        "body": release.body,
        "draft": release.draft,
        "prerelease": release.prerelease,
        "created_at": _iso(release.created_at),
        "published_at": _iso(release.published_at),
        "author": {"login": "octocat", "type": "User"},
        "assets": [],
    }


def combined_state(states: list[str]) -> str:
    """GitHub's combined state: failure beats pending beats success; no statuses is pending."""
    if any(s in ("error", "failure") for s in states):
        return "failure"
    if not states or "pending" in states:
        return "pending"
    return "success"


def _validation_failed(
    message: str, field_name: str | None = None, resource: str = "Status"
) -> web.Response:
    error: dict[str, Any] = {"resource": resource, "code": "custom", "message": message}
    if field_name:
        error["field"] = field_name
    body = {"message": "Validation Failed", "errors": [error], "documentation_url": DOCS_URL}
    return json_response(body, 422)


def _status_json(repo: str, status: CommitStatus) -> dict[str, Any]:
    return {
        "id": status.id,
        "url": f"https://api.github.com/repos/{repo}/statuses/{status.sha}",
        "state": status.state,
        "context": status.context,
        "description": status.description,
        "target_url": status.target_url,
        "created_at": _iso(status.created_at),
        "updated_at": _iso(status.created_at),
        "creator": {"login": "golive[bot]", "type": "Bot"},
    }


def _repository_json(repo: str) -> dict[str, Any]:
    owner, name = repo.split("/", 1)
    return {
        "id": 700_000 + int(hashlib.sha1(repo.encode()).hexdigest()[:5], 16),
        "name": name,
        "full_name": repo,
        "private": True,
        "owner": {"login": owner, "type": "Organization"},
        "default_branch": "main",
    }


def _pull_json(repo: str, pull: PullRequest) -> dict[str, Any]:
    owner = repo.split("/", 1)[0]
    return {
        "id": 900_000 + pull.number,
        "number": pull.number,
        "title": pull.title,
        "state": pull.state,
        "merged": pull.merged,
        "merged_at": "2026-11-27T12:00:00Z" if pull.merged else None,
        "draft": False,
        "url": f"https://api.github.com/repos/{repo}/pulls/{pull.number}",
        "html_url": f"https://github.com/{repo}/pull/{pull.number}",
        "user": {"login": "octocat", "type": "User"},
        "head": {
            "label": f"{owner}:{pull.head_ref}",
            "ref": pull.head_ref,
            "sha": pull.head_sha,
            "repo": {"full_name": repo},
        },
        "base": {
            "label": f"{owner}:{pull.base_ref}",
            "ref": pull.base_ref,
            "repo": {"full_name": repo},
        },
    }
