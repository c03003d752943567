"""Release notes: the notes page for this version answers."""

from __future__ import annotations

import time

import httpx

from checks.base import CheckResult, Status
from checks.redact import safe_url

NAME = "release-notes"


async def check_release_notes(client: httpx.AsyncClient, url: str, version: str) -> CheckResult:
    """Pass when the notes URL answers 2xx; the commander still approves the content."""
    started = time.monotonic()
    shown = safe_url(url)  # the real URL (credentials and all) is only for the request
    try:
        response = await client.get(url, timeout=10.0, follow_redirects=True)
    except httpx.HTTPError as exc:
        return CheckResult(
            NAME,
            Status.ERROR,
            f"could not reach the release notes at {shown} ({type(exc).__name__})",
            {"url": shown},
            time.monotonic() - started,
        )
    evidence = {"url": shown, "status_code": response.status_code}
    if not response.is_success:
        return CheckResult(
            NAME,
            Status.FAIL,
            f"the release notes for {version} are not there: HTTP "
            f"{response.status_code} from {shown}",
            evidence,
            time.monotonic() - started,
        )
    return CheckResult(
        NAME,
        Status.PASS,
        f"the release notes for {version} answer at {shown}",
        evidence,
        time.monotonic() - started,
    )
