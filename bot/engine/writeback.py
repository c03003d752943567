"""Writing golive's section into the GitHub release's notes (the `release-notes` outbox rows).

Each row carries the release's id and the section as it was when queued. Delivery reads the body
fresh, puts the section between its markers (nothing else in the body changes) and PATCHes the
release. Like PagerDuty's events, these rows have their own outbox and transport, so a GitHub
outage never holds chat back, and a failed write is retried — it never blocks the release.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from bot.engine.outbox import RetryLater, Undeliverable
from bot.render.release_notes import BrokenMarkers, splice
from bot.store import OutboxRow
from checks.github_release import read_release, write_release_body
from checks.http import ProviderError, RateLimited

WRITE_BACK_KIND = "release-notes"
WRITE_BACK_CHANNEL = "github-release"
# GitHub refuses a release body over 125,000 characters (422 "body is too long").
BODY_LIMIT = 125_000


def write_back_job(release_id: int, section: str) -> str:
    """The queued row's text: which release, and the section to put into it."""
    return json.dumps({"release_id": release_id, "section": section}, sort_keys=True)


def _retry_or_give_up(exc: ProviderError, wall_clock: float) -> Exception:
    """A passing failure (no answer, 5xx, rate limit) is retried; anything else is not."""
    if isinstance(exc, RateLimited):
        return RetryLater(exc.message, exc.wait_from(wall_clock))
    status = exc.evidence.get("status_code")
    if status is None or (isinstance(status, int) and status >= 500):
        return RetryLater(exc.message)
    return Undeliverable(exc.message)


class ReleaseNotesTransport:
    """Reads the release's body fresh, splices the section in and PATCHes it back."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        base_url: str,
        repository: str,
        token: str,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        """`wall_clock()` (epoch seconds) reads GitHub's rate-limit reset times."""
        self.client = client
        self.base_url = base_url
        self.repository = repository
        self.token = token
        self.wall_clock = wall_clock

    async def deliver(
        self, message: OutboxRow, thread_ts: str | None, target_ts: str | None
    ) -> str | None:
        """Write one section; returns the release page's address."""
        job = _job(message.text)
        release_id, section = int(job["release_id"]), str(job["section"])
        try:
            current = await read_release(
                self.client, self.base_url, self.repository, release_id, self.token
            )
            try:
                body = splice(current.body, section)
            except BrokenMarkers as exc:
                raise Undeliverable(
                    f"{exc}; golive left the body as it is (mend it by hand)"
                ) from None
            if len(body) > BODY_LIMIT:
                raise Undeliverable(
                    f"the release body would be {len(body):,} characters with golive's section, "
                    f"more than GitHub's {BODY_LIMIT:,}"
                )
            if body == current.body:
                return current.html_url
            written = await write_release_body(
                self.client, self.base_url, self.repository, release_id, body, self.token
            )
        except ProviderError as exc:
            raise _retry_or_give_up(exc, self.wall_clock()) from None
        return written.html_url


def _job(text: str) -> Mapping[str, Any]:
    try:
        job = json.loads(text)
    except ValueError as exc:
        raise Undeliverable(f"the queued write-back is not JSON: {exc}") from None
    if not isinstance(job, dict) or not isinstance(job.get("release_id"), int):
        raise Undeliverable("the queued write-back names no release")
    if not isinstance(job.get("section"), str):
        raise Undeliverable("the queued write-back carries no section")
    return job
