"""Release notes kept as a GitHub release: finalized means published, and golive's section of
issues and follow-up actions is written into its body.

GitHub's "Get a release by tag name" returns published releases only: a draft answers 404 there,
whatever the token, because its tag usually does not exist until it is published. Drafts are
listed by "List releases", and only to a token with push access (which writing the section back
needs anyway). So a 404 by tag is followed by a look through the list: a draft found there blocks
with "still a draft"; nothing found blocks with "no release".
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from checks.base import CheckResult, Status
from checks.ci import github_headers
from checks.http import Answer, ProviderError, expect, next_link, request_json

PROVIDER = "GitHub"
NAME = "release-notes"
LIST_PAGES = 5  # 500 releases, newest first: a draft further back is not this release's notes


@dataclass(frozen=True)
class ReleaseRef:
    """One GitHub release as golive needs it."""

    id: int
    tag: str
    draft: bool
    html_url: str | None
    published_at: str | None
    body: str

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ReleaseRef:
        """Read a release object (the caller has checked it carries an integer id)."""
        body = data.get("body")
        html = data.get("html_url")
        published = data.get("published_at")
        return cls(
            id=int(data["id"]),
            tag=str(data.get("tag_name") or ""),
            draft=bool(data.get("draft")),
            html_url=html if isinstance(html, str) else None,
            published_at=published if isinstance(published, str) else None,
            body=body if isinstance(body, str) else "",
        )


def _repo_url(base_url: str, repository: str) -> str:
    return f"{base_url.rstrip('/')}/repos/{repository}"


def _has_id(data: Mapping[str, Any]) -> bool:
    return isinstance(data.get("id"), int) and not isinstance(data.get("id"), bool)


def _release(answer: Answer) -> ReleaseRef:
    data = answer.data
    expect(isinstance(data, dict) and _has_id(data), PROVIDER, "a release with an id", answer)
    return ReleaseRef.from_json(data)


async def release_by_tag(
    client: httpx.AsyncClient, base_url: str, repository: str, tag: str, token: str
) -> ReleaseRef | None:
    """The published release of `tag`, or None when GitHub has none (drafts are never here)."""
    answer = await request_json(
        client,
        "GET",
        f"{_repo_url(base_url, repository)}/releases/tags/{quote(tag, safe='')}",
        provider=PROVIDER,
        headers=github_headers(token),
        ok=(404,),
    )
    if answer.response.status_code == 404:
        return None
    return _release(answer)


async def listed_release(
    client: httpx.AsyncClient, base_url: str, repository: str, tag: str, token: str
) -> ReleaseRef | None:
    """The newest listed release (drafts included, for a token with push access) for `tag`.

    A 404 here means the repository itself is not there for this token: a ProviderError.
    """
    url: str | None = f"{_repo_url(base_url, repository)}/releases"
    params: dict[str, Any] | None = {"per_page": 100}
    configured = _repo_url(base_url, repository)
    for _ in range(LIST_PAGES):
        if url is None:
            return None
        answer = await request_json(
            client, "GET", url, provider=PROVIDER, headers=github_headers(token), params=params
        )
        expect(isinstance(answer.data, list), PROVIDER, "a list of releases", answer)
        for item in answer.data:
            if isinstance(item, dict) and item.get("tag_name") == tag and _has_id(item):
                return ReleaseRef.from_json(item)
        url, params = next_link(answer.response, configured, PROVIDER), None
    return None


async def read_release(
    client: httpx.AsyncClient, base_url: str, repository: str, release_id: int, token: str
) -> ReleaseRef:
    """The release as it is now (its body read fresh, for writing into it)."""
    answer = await request_json(
        client,
        "GET",
        f"{_repo_url(base_url, repository)}/releases/{release_id}",
        provider=PROVIDER,
        headers=github_headers(token),
    )
    return _release(answer)


async def write_release_body(
    client: httpx.AsyncClient,
    base_url: str,
    repository: str,
    release_id: int,
    body: str,
    token: str,
) -> ReleaseRef:
    """Replace the release's body (`PATCH …/releases/{id}`, which needs push access)."""
    answer = await request_json(
        client,
        "PATCH",
        f"{_repo_url(base_url, repository)}/releases/{release_id}",
        provider=PROVIDER,
        headers=github_headers(token),
        json_body={"body": body},
    )
    return _release(answer)


async def check_github_release(
    client: httpx.AsyncClient,
    *,
    base_url: str,
    repository: str,
    version: str,
    token: str,
) -> CheckResult:
    """Pass when the GitHub release tagged `version` is published; a draft or no release fails.

    The commander still approves the notes; golive only says they are finalized.
    """
    started = time.monotonic()
    where = f"{repository} on GitHub"
    try:
        found = await release_by_tag(client, base_url, repository, version, token)
        listed = None
        if found is None:
            listed = await listed_release(client, base_url, repository, version, token)
    except ProviderError as exc:
        return exc.result(NAME, time.monotonic() - started)
    release = found or listed
    evidence: dict[str, Any] = {"repository": repository, "tag": version}
    if release is not None:
        evidence.update(
            release_id=release.id,
            html_url=release.html_url,
            draft=release.draft,
            published_at=release.published_at,
        )
    elapsed = time.monotonic() - started
    if release is None:
        return CheckResult(
            NAME,
            Status.FAIL,
            f"there is no GitHub release for {version} in {where}: write the notes as a release "
            f"of the tag {version} and publish it (golive sees drafts only with push access)",
            evidence,
            elapsed,
        )
    link = f" — {release.html_url}" if release.html_url else ""
    if release.draft:
        return CheckResult(
            NAME,
            Status.FAIL,
            f"the GitHub release for {version} in {where} is still a draft: the notes are not "
            f"finalized until it is published{link}",
            evidence,
            elapsed,
        )
    return CheckResult(
        NAME,
        Status.PASS,
        f"the GitHub release for {version} is published"
        + (f" ({release.published_at})" if release.published_at else "")
        + link,
        evidence,
        elapsed,
    )


@dataclass(frozen=True)
class NotesRelease:
    """The published release a passing check found: where golive writes its section."""

    id: int
    html_url: str | None


def notes_release(results: Sequence[CheckResult]) -> NotesRelease | None:
    """The release the newest passing release-notes verdict found (stored results, oldest
    first)."""
    for result in reversed(results):
        evidence = result.evidence
        if result.name != NAME or result.status is not Status.PASS:
            continue
        if _has_id({"id": evidence.get("release_id")}):
            html = evidence.get("html_url")
            shown = html if isinstance(html, str) else None
            return NotesRelease(int(evidence["release_id"]), shown)
    return None
