"""CI green: every required GitHub check run or commit status succeeded on the release ref."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from checks.base import CheckResult, Status
from checks.http import Answer, ProviderError, expect, request_json

PROVIDER = "GitHub"
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
    """Every item of a paginated GitHub list, following `Link: rel="next"`."""
    items: list[Any] = []
    next_url: str | None = url
    next_params: dict[str, Any] | None = params
    for _ in range(50):  # a bound: 5,000 items is more than any ref has
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
        link = answer.response.links.get("next", {}).get("url")
        next_url, next_params = (link, None) if link else (None, None)
    raise ProviderError(f"{PROVIDER} kept answering further pages; stopped after 50")


async def fetch_verdicts(
    client: httpx.AsyncClient,
    base_url: str,
    repository: str,
    ref: str,
    token: str,
    required: list[str],
) -> list[Verdict]:
    """The state of each required check, from check runs and the combined commit status."""
    headers = github_headers(token)
    root = f"{base_url.rstrip('/')}/repos/{repository}/commits/{ref}"
    runs = await paginate(client, f"{root}/check-runs", headers, {"per_page": 100}, "check_runs")
    status = await request_json(
        client,
        "GET",
        f"{root}/status",
        provider=PROVIDER,
        headers=headers,
        params={"per_page": 100},
    )
    expect(
        isinstance(status.data, dict) and isinstance(status.data.get("statuses"), list),
        PROVIDER,
        "a `statuses` list",
        status,
    )
    latest: dict[str, dict[str, Any]] = {}
    for run in runs:
        if isinstance(run, dict) and isinstance(run.get("name"), str):
            known = latest.get(run["name"])
            if known is None or int(run.get("id") or 0) > int(known.get("id") or 0):
                latest[run["name"]] = run
    contexts = {
        s["context"]: s
        for s in status.data["statuses"]
        if isinstance(s, dict) and isinstance(s.get("context"), str)
    }
    verdicts = []
    for name in required:
        run = latest.get(name)
        if run is not None:
            verdicts.append(_from_run(name, run))
        elif name in contexts:
            verdicts.append(_from_status(name, contexts[name]))
        else:
            verdicts.append(Verdict(name, "missing", f"{name} has not reported on {ref}"))
    return verdicts


def _from_run(name: str, run: dict[str, Any]) -> Verdict:
    status, conclusion = run.get("status"), run.get("conclusion")
    url = run.get("html_url") if isinstance(run.get("html_url"), str) else None
    if status != "completed":
        return Verdict(name, "pending", f"{name} is {status}", url)
    if conclusion == "success":
        return Verdict(name, "success", f"{name} succeeded", url)
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
    progress: Progress | None = None,
) -> list[CheckResult]:
    """One verdict per required check (`ci:<name>`), re-polling pending ones until `wait`."""
    started = monotonic()
    polls = 0
    announced: set[str] = set()
    while True:
        polls += 1
        try:
            verdicts = await fetch_verdicts(client, base_url, repository, ref, token, required)
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
