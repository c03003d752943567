"""The merge gate on GitHub: a `golive/merge-freeze` commit status on open pull requests."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from checks.ci import PROVIDER, github_headers, paginate
from checks.http import expect, request_json

CONTEXT = "golive/merge-freeze"


@dataclass(frozen=True)
class PullHead:
    """An open pull request and the commit at its head."""

    number: int
    sha: str
    url: str


async def open_pull_heads(
    client: httpx.AsyncClient, base_url: str, repository: str, branch: str, token: str
) -> list[PullHead]:
    """Open pull requests into `branch` (every page)."""
    url = f"{base_url.rstrip('/')}/repos/{repository}/pulls"
    params = {"state": "open", "base": branch, "per_page": 100}
    pulls = await paginate(client, url, github_headers(token), params, None)
    heads = []
    for pull in pulls:
        head = pull.get("head") if isinstance(pull, dict) else None
        if isinstance(head, dict) and isinstance(head.get("sha"), str):
            heads.append(
                PullHead(int(pull.get("number") or 0), head["sha"], str(pull.get("html_url") or ""))
            )
    return heads


async def set_freeze_status(
    client: httpx.AsyncClient,
    base_url: str,
    repository: str,
    sha: str,
    token: str,
    *,
    frozen: bool,
    description: str,
) -> None:
    """Post the gate status on one commit: failure while frozen, success once lifted."""
    answer = await request_json(
        client,
        "POST",
        f"{base_url.rstrip('/')}/repos/{repository}/statuses/{sha}",
        provider=PROVIDER,
        headers=github_headers(token),
        json_body={
            "state": "failure" if frozen else "success",
            "context": CONTEXT,
            "description": description[:140],
        },
    )
    expect(
        isinstance(answer.data, dict) and answer.data.get("context") == CONTEXT,
        PROVIDER,
        "the status it was sent",
        answer,
    )
