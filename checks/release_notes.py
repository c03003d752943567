"""Release notes: the notes page for this version answers."""

from __future__ import annotations

import time

import httpx

from checks.base import CheckResult, Status

NAME = "release-notes"


async def check_release_notes(client: httpx.AsyncClient, url: str, version: str) -> CheckResult:
    """Pass when the notes URL answers 2xx; the commander still approves the content."""
    started = time.monotonic()
    try:
        response = await client.get(url, timeout=10.0, follow_redirects=True)
    except httpx.HTTPError as exc:
        return CheckResult(
            NAME,
            Status.ERROR,
            f"could not reach the release notes at {url} ({type(exc).__name__})",
            {"url": url},
            time.monotonic() - started,
        )
    evidence = {"url": url, "status_code": response.status_code}
    if not response.is_success:
        return CheckResult(
            NAME,
            Status.FAIL,
            f"the release notes for {version} are not there: HTTP "
            f"{response.status_code} from {url}",
            evidence,
            time.monotonic() - started,
        )
    return CheckResult(
        NAME,
        Status.PASS,
        f"the release notes for {version} answer at {url}",
        evidence,
        time.monotonic() - started,
    )
