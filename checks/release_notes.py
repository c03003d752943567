"""Release notes: the notes page for this version answers, and it is the notes.

Redirects are followed only within the notes' own host: a redirect to another host is almost
always a single sign-on page, and a final page with a password form is one. Both are errors:
golive cannot see the notes, so it cannot say they are there.
"""

from __future__ import annotations

import time

import httpx

from bot.domain.redact import safe_url
from checks.base import CheckResult, Status
from checks.http import ProviderError, host_of, looks_like_login, send

NAME = "release-notes"


async def check_release_notes(client: httpx.AsyncClient, url: str, version: str) -> CheckResult:
    """Pass when the notes URL answers 2xx with the notes; the commander still approves them."""
    started = time.monotonic()
    shown = safe_url(url)  # the real URL (credentials and all) is only for the request
    try:
        response = await send(client, "GET", url, provider="the release notes", timeout=10.0)
    except ProviderError as exc:
        return CheckResult(
            NAME,
            Status.ERROR,
            f"{exc.message} ({shown})",
            {"url": shown, **exc.evidence},
            time.monotonic() - started,
        )
    evidence = {"url": shown, "status_code": response.status_code}
    if str(response.url) != url:
        evidence["final_url"] = safe_url(str(response.url))
    if not response.is_success:
        return CheckResult(
            NAME,
            Status.FAIL,
            f"the release notes for {version} are not there: HTTP "
            f"{response.status_code} from {shown}",
            evidence,
            time.monotonic() - started,
        )
    if looks_like_login(response):
        return CheckResult(
            NAME,
            Status.ERROR,
            f"the release notes URL {url} answered a sign-in page on {host_of(response.url)}, "
            f"not the notes; golive cannot see them",
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
