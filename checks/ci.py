"""CI green: every required check passes on the release ref as GitHub itself judges it.

GitHub lets a pull request merge when each required name passes everywhere it reports: a check
run concluding `success`, `neutral` or `skipped`, and a commit status of `success`. A green
check run does not hide a failing commit status of the same name. Both lists are read to their
last page. Rate-limit answers are waited out while `wait` lasts and reported as rate limiting.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from checks.base import CheckResult, Status
from checks.http import Answer, ProviderError, RateLimited, expect, next_link, request_json

PROVIDER = "GitHub"
MAX_PAGES = 50  # 5,000 check runs or statuses on one commit: more than any ref has
# Check-run conclusions GitHub accepts for a required check (a skipped or neutral run merges).
PASSING_CONCLUSIONS = frozenset({"success", "neutral", "skipped"})
SECONDARY_WAIT = 60.0  # GitHub: without retry-after or a reset, wait at least a minute
Sleep = Callable[[float], Awaitable[None]]
Progress = Callable[[str], None]


@dataclass(frozen=True)
class Verdict:
    """What GitHub says of one required check."""

    name: str
    state: str  # success | failure | pending | missing
    detail: str
    url: str | None = None


def github_headers(token: str) -> dict[str, str]:
    """GitHub REST headers with a bearer token."""
    return {
        "Authorization": f"Bearer {token}",
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": "2022-11-28",
    }


async def paginate(
    client: httpx.AsyncClient,
    url: str,
    headers: dict[str, str],
    params: dict[str, Any],
    key: str | None,
) -> list[Any]:
    """Every item of a paginated GitHub list, following `Link: rel="next"` on `url`'s origin.

    A next-page link to another origin, a link back to a page already read, or more than
    MAX_PAGES pages is a ProviderError: the token never leaves the configured origin.
    """
    items: list[Any] = []
    next_url: str | None = url
    next_params: dict[str, Any] | None = params
    seen: set[str] = set()
    for _ in range(MAX_PAGES):
        if next_url is None:
            return items
        answer: Answer = await request_json(
            client, "GET", next_url, provider=PROVIDER, headers=headers, params=next_params
        )
        data = answer.data
        if key is not None:
            expect(
                isinstance(data, dict) and isinstance(data.get(key), list),
                PROVIDER,
                f"a `{key}` list",
                answer,
            )
            page = data[key]
        else:
            expect(isinstance(data, list), PROVIDER, "a list", answer)
            page = data
        items.extend(page)
        seen.add(str(answer.response.url))
        next_url, next_params = next_link(answer.response, url, PROVIDER), None
        if next_url in seen:
            raise ProviderError(
                f"{PROVIDER} linked back to a page it had already sent ({next_url}); stopped",
                answer.asked,
            )
    raise ProviderError(f"{PROVIDER} kept answering further pages; stopped after {MAX_PAGES}")


async def fetch_verdicts(
    client: httpx.AsyncClient,
    base_url: str,
    repository: str,
    ref: str,
    token: str,
    required: list[str],
) -> list[Verdict]:
    """The state of each required check, from every page of its check runs and of the combined
    commit status; a name reported in both places must pass in both."""
    headers = github_headers(token)
    root = f"{base_url.rstrip('/')}/repos/{repository}/commits/{ref}"
    runs = await paginate(client, f"{root}/check-runs", headers, {"per_page": 100}, "check_runs")
    statuses = await paginate(client, f"{root}/status", headers, {"per_page": 100}, "statuses")
    latest: dict[str, dict[str, Any]] = {}
    for run in runs:
        if isinstance(run, dict) and isinstance(run.get("name"), str):
            known = latest.get(run["name"])
            if known is None or int(run.get("id") or 0) > int(known.get("id") or 0):
                latest[run["name"]] = run
    contexts: dict[str, dict[str, Any]] = {}
    for status in statuses:  # the combined status lists each context's latest status once
        if isinstance(status, dict) and isinstance(status.get("context"), str):
            contexts.setdefault(status["context"], status)
    verdicts = []
    for name in required:
        places = []
        if name in latest:
            places.append(("check run", _from_run(name, latest[name])))
        if name in contexts:
            places.append(("commit status", _from_status(name, contexts[name])))
        if places:
            verdicts.append(_combine(name, places))
        else:
            verdicts.append(Verdict(name, "missing", f"{name} has not reported on {ref}"))
    return verdicts


def _combine(name: str, places: list[tuple[str, Verdict]]) -> Verdict:
    """One verdict for a name: failure anywhere fails, pending anywhere waits."""
    for state in ("failure", "pending"):
        found = [(where, v) for where, v in places if v.state == state]
        if found:
            where, verdict = found[0]
            if len(places) == 1:
                return verdict
            others = "; ".join(f"its {w}: {v.detail}" for w, v in places if v is not verdict)
            return Verdict(name, state, f"{verdict.detail} (its {where}; {others})", verdict.url)
    return places[0][1]


def _from_run(name: str, run: dict[str, Any]) -> Verdict:
    status, conclusion = run.get("status"), run.get("conclusion")
    url = run.get("html_url") if isinstance(run.get("html_url"), str) else None
    if status != "completed":
        return Verdict(name, "pending", f"{name} is {status}", url)
    if conclusion == "success":
        return Verdict(name, "success", f"{name} succeeded", url)
    if conclusion in PASSING_CONCLUSIONS:
        return Verdict(name, "success", f"{name} concluded {conclusion}, which GitHub accepts", url)
    return Verdict(name, "failure", f"{name} concluded {conclusion}", url)


def _from_status(name: str, status: dict[str, Any]) -> Verdict:
    state = status.get("state")
    url = status.get("target_url") if isinstance(status.get("target_url"), str) else None
    if state == "success":
        return Verdict(name, "success", f"{name} succeeded", url)
    if state == "pending":
        return Verdict(name, "pending", f"{name} is pending", url)
    return Verdict(name, "failure", f"{name} reported {state}", url)


async def check_ci(
    client: httpx.AsyncClient,
    *,
    base_url: str,
    repository: str,
    ref: str,
    token: str,
    required: list[str],
    wait: float,
    poll: float,
    sleep: Sleep = asyncio.sleep,
    monotonic: Callable[[], float] = time.monotonic,
    wall_clock: Callable[[], float] = time.time,
    progress: Progress | None = None,
) -> list[CheckResult]:
    """One verdict per required check (`ci:<name>`), re-polling pending ones until `wait`.

    A rate-limited answer is asked again after the limit lifts (`retry-after`, or
    `x-ratelimit-reset` read against `wall_clock`) when that falls within `wait`; otherwise
    every verdict is an error that says GitHub is rate-limiting golive.
    """
    started = monotonic()
    polls = 0
    announced: set[str] = set()
    while True:
        polls += 1
        try:
            verdicts = await fetch_verdicts(client, base_url, repository, ref, token, required)
        except RateLimited as exc:
            elapsed = monotonic() - started
            pause = exc.wait_from(wall_clock(), SECONDARY_WAIT)
            if elapsed + pause > wait:
                return _rate_limited(exc, required, elapsed, pause)
            if progress is not None:
                progress(f"GitHub is rate-limiting golive; asking again in {pause:.0f}s")
            await sleep(pause)
            continue
        except ProviderError as exc:
            return [exc.result(f"ci:{name}", monotonic() - started) for name in required]
        # A missing check is waited for only while others are still running: once everything
        # else has finished, a check that never reported fails at once, named.
        pending = [v for v in verdicts if v.state == "pending"]
        elapsed = monotonic() - started
        if not pending or elapsed >= wait:
            return [_result(v, ref, polls, elapsed) for v in verdicts]
        waiting = sorted(v.name for v in verdicts if v.state in ("pending", "missing"))
        if progress is not None and set(waiting) != announced:
            progress(f"waiting for CI on {ref}: {', '.join(waiting)} (up to {wait / 60:g} min)")
            announced = set(waiting)
        await sleep(min(poll, max(wait - elapsed, 0.0)))


def _rate_limited(
    exc: RateLimited, required: list[str], elapsed: float, pause: float
) -> list[CheckResult]:
    message = (
        f"{exc.message}; the limit lifts in {pause:.0f}s, after ci.wait ends, so CI was not judged"
    )
    evidence = {**exc.evidence, "rate_limited": True, "wait_seconds": round(pause, 1)}
    return [
        CheckResult(f"ci:{name}", Status.ERROR, message, evidence, elapsed) for name in required
    ]


def _result(v: Verdict, ref: str, polls: int, elapsed: float) -> CheckResult:
    evidence: dict[str, Any] = {"check": v.name, "ref": ref, "state": v.state, "polls": polls}
    if v.url:
        evidence["url"] = v.url
    link = f" — {v.url}" if v.url else ""
    name = f"ci:{v.name}"
    if v.state == "success":
        return CheckResult(name, Status.PASS, f"{v.detail}{link}", evidence, elapsed)
    if v.state == "pending":
        return CheckResult(
            name,
            Status.FAIL,
            f"{v.detail} after waiting {elapsed / 60:.1f} min{link}",
            evidence,
            elapsed,
        )
    return CheckResult(name, Status.FAIL, f"{v.detail}{link}", evidence, elapsed)
