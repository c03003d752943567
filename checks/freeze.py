"""The merge gate on GitHub: a `golive/merge-freeze` commit status on open pull requests.

Also what GitHub's webhooks need: the `X-Hub-Signature-256` check (HMAC-SHA256 of the raw body
with the webhook's secret, compared in constant time) and reading a `pull_request` delivery.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from checks.ci import PROVIDER, github_headers, paginate
from checks.http import expect, request_json

CONTEXT = "golive/merge-freeze"
SIGNATURE_PREFIX = "sha256="
# Deliveries that can change a pull request's head (or bring it into the frozen branch).
PULL_ACTIONS = frozenset({"opened", "reopened", "synchronize", "ready_for_review", "edited"})


@dataclass(frozen=True)
class PullHead:
    """An open pull request and the commit at its head."""

    number: int
    sha: str
    url: str


@dataclass(frozen=True)
class PullRequest:
    """One pull request as GitHub describes it."""

    number: int
    sha: str
    state: str  # open | closed
    merged: bool
    base: str
    title: str
    url: str

    @property
    def head(self) -> PullHead:
        """Its head commit."""
        return PullHead(self.number, self.sha, self.url)


def _pull(data: Any) -> PullRequest | None:
    """A pull request from GitHub's JSON (REST answer or webhook payload), None if malformed."""
    if not isinstance(data, dict):
        return None
    head, base, number = data.get("head"), data.get("base"), data.get("number")
    if not (isinstance(head, dict) and isinstance(head.get("sha"), str)):
        return None
    if not (isinstance(base, dict) and isinstance(base.get("ref"), str)):
        return None
    if not isinstance(number, int) or isinstance(number, bool) or number <= 0:
        return None
    return PullRequest(
        number=number,
        sha=head["sha"],
        state=str(data.get("state") or ""),
        merged=bool(data.get("merged") or data.get("merged_at")),
        base=base["ref"],
        title=str(data.get("title") or "")[:256],
        url=str(data.get("html_url") or ""),
    )


async def open_pull_heads(
    client: httpx.AsyncClient, base_url: str, repository: str, branch: str, token: str
) -> list[PullHead]:
    """Open pull requests into `branch` (every page)."""
    url = f"{base_url.rstrip('/')}/repos/{repository}/pulls"
    params = {"state": "open", "base": branch, "per_page": 100}
    pulls = await paginate(client, url, github_headers(token), params, None)
    return [p.head for p in map(_pull, pulls) if p is not None]


async def pull_request(
    client: httpx.AsyncClient,
    base_url: str,
    repository: str,
    number: int,
    token: str,
    timeout: float = 10.0,
) -> PullRequest | None:
    """Pull request `number` of `repository`; None when GitHub knows no such pull request."""
    answer = await request_json(
        client,
        "GET",
        f"{base_url.rstrip('/')}/repos/{repository}/pulls/{number}",
        provider=PROVIDER,
        headers=github_headers(token),
        timeout=timeout,
        ok=(404,),
    )
    if answer.response.status_code == 404:
        return None
    found = _pull(answer.data)
    expect(found is not None, PROVIDER, "a pull request with its head and base", answer)
    assert found is not None
    return found


async def gate_state(
    client: httpx.AsyncClient, base_url: str, repository: str, sha: str, token: str
) -> str | None:
    """The `golive/merge-freeze` state GitHub shows on a commit now (None when it has none)."""
    url = f"{base_url.rstrip('/')}/repos/{repository}/commits/{sha}/status"
    statuses = await paginate(client, url, github_headers(token), {"per_page": 100}, "statuses")
    for status in statuses:  # the combined status lists each context's latest status once
        if isinstance(status, dict) and status.get("context") == CONTEXT:
            state = status.get("state")
            return state if isinstance(state, str) else None
    return None


async def set_freeze_status(
    client: httpx.AsyncClient,
    base_url: str,
    repository: str,
    sha: str,
    token: str,
    *,
    state: str,
    description: str,
) -> None:
    """Post the gate status on one commit: `failure` while frozen, `success` otherwise."""
    answer = await request_json(
        client,
        "POST",
        f"{base_url.rstrip('/')}/repos/{repository}/statuses/{sha}",
        provider=PROVIDER,
        headers=github_headers(token),
        json_body={"state": state, "context": CONTEXT, "description": description[:140]},
    )
    expect(
        isinstance(answer.data, dict) and answer.data.get("context") == CONTEXT,
        PROVIDER,
        "the status it was sent",
        answer,
    )


def signature_ok(secret: str, body: bytes, header: str | None) -> bool:
    """True when `X-Hub-Signature-256` is the HMAC-SHA256 of the raw body with the secret."""
    if not header or not header.startswith(SIGNATURE_PREFIX):
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(SIGNATURE_PREFIX + expected, header.strip())


def pull_event(payload: Mapping[str, Any], branch: str) -> PullHead | None:
    """The head a `pull_request` delivery asks the gate to judge, or None when it changes
    nothing the gate cares about (another action, another base branch, a closed pull)."""
    if payload.get("action") not in PULL_ACTIONS:
        return None
    if payload.get("action") == "edited" and "base" not in (payload.get("changes") or {}):
        return None  # only a change of base branch matters among edits
    pull = _pull(payload.get("pull_request"))
    if pull is None or pull.base != branch or pull.state != "open":
        return None
    return pull.head


def repository_of(payload: Mapping[str, Any]) -> str | None:
    """`owner/name` of the repository a delivery is about, when it names one."""
    repository = payload.get("repository")
    name = repository.get("full_name") if isinstance(repository, dict) else None
    return name if isinstance(name, str) else None
