"""Health gates: each service's health URL must answer what a healthy service answers.

A service may declare its healthy answer (`expect_status`, `expect_json` — a JSON subset that
must match — or `expect_text`). Without a declaration a 2xx with a non-empty body passes. A
redirect to another host, a sign-in page, HTML where JSON was declared, an empty body or a 204
nobody declared can say nothing about health: those are errors. Answers are retried briefly.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from bot.domain.redact import safe_url
from checks.base import CheckResult, Status
from checks.http import ProviderError, excerpt, looks_like_login, send

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class Expectation:
    """What a healthy answer looks like; all None means "a 2xx with a body"."""

    status: int | None = None
    json: Any = None
    text: str | None = None

    def describe(self) -> str:
        """The declaration in words, for evidence."""
        parts = []
        if self.status is not None:
            parts.append(f"HTTP {self.status}")
        if self.json is not None:
            parts.append(f"JSON containing {json.dumps(self.json, sort_keys=True)}")
        if self.text is not None:
            parts.append(f"text containing {self.text!r}")
        return " with ".join(parts) or "a 2xx with a body"


@dataclass(frozen=True)
class _Verdict:
    status: Status
    summary: str
    label: str  # one short line per attempt, for the evidence


def json_mismatch(expected: Any, actual: Any, path: str = "") -> str | None:
    """Where `actual` fails to contain `expected` (objects: every key, recursively; lists:
    every expected item matched by some actual item; scalars: equal); None when it does."""
    where = path or "the answer"
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return f"{where} is not a JSON object"
        for key, value in expected.items():
            if key not in actual:
                return f"{path + '.' if path else ''}{key} is missing"
            found = json_mismatch(value, actual[key], f"{path + '.' if path else ''}{key}")
            if found is not None:
                return found
        return None
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return f"{where} is not a JSON list"
        for item in expected:
            if all(json_mismatch(item, other) is not None for other in actual):
                return f"{where} has no item matching {json.dumps(item)}"
        return None
    same_kind = isinstance(expected, bool) == isinstance(actual, bool)
    if same_kind and expected == actual:
        return None
    return f"{where} is {json.dumps(actual)[:80]}, expected {json.dumps(expected)}"


def _judge(service: str, url: str, response: httpx.Response, expect: Expectation) -> _Verdict:
    status = response.status_code
    head = f"{service} is unhealthy: HTTP {status} from {url}"
    if expect.status is not None and status != expect.status:
        return _Verdict(Status.FAIL, f"{head}, expected {expect.status}", f"HTTP {status}")
    if expect.status is None and not response.is_success:
        return _Verdict(Status.FAIL, head, f"HTTP {status}")
    declared_empty = expect.status is not None and expect.json is None and expect.text is None
    if not response.content and not declared_empty:
        return _Verdict(
            Status.ERROR,
            f"{service} answered HTTP {status} with an empty body at {url}: nothing says it is "
            f"healthy (declare `expect_status: {status}` if that is its healthy answer)",
            f"HTTP {status}, empty",
        )
    if looks_like_login(response):
        return _Verdict(
            Status.ERROR,
            f"{service}'s health URL {url} answered a sign-in page, not its health",
            f"HTTP {status}, sign-in page",
        )
    if expect.json is not None:
        if "html" in response.headers.get("content-type", "").lower():
            return _Verdict(
                Status.ERROR,
                f"{service}'s health URL {url} answered an HTML page where JSON was declared",
                f"HTTP {status}, HTML",
            )
        try:
            data = json.loads(response.content)
        except ValueError:
            return _Verdict(
                Status.ERROR,
                f"{service}'s health URL {url} answered malformed JSON where JSON was declared",
                f"HTTP {status}, not JSON",
            )
        mismatch = json_mismatch(expect.json, data)
        if mismatch is not None:
            return _Verdict(Status.FAIL, f"{head}: {mismatch}", f"HTTP {status}, {mismatch}")
    if expect.text is not None and expect.text not in response.text:
        return _Verdict(
            Status.FAIL,
            f"{head}: the answer does not contain {expect.text!r}",
            f"HTTP {status}, without the text",
        )
    return _Verdict(Status.PASS, f"{service} is healthy ({status} from {url})", f"HTTP {status}")


async def check_health(
    client: httpx.AsyncClient,
    service: str,
    url: str,
    *,
    expect: Expectation = Expectation(),
    attempts: int = 3,
    delay: float = 1.0,
    timeout: float = 5.0,
    sleep: Sleep = asyncio.sleep,
) -> CheckResult:
    """GET the health URL until it answers healthy (`expect`) or `attempts` run out."""
    name = f"health:{service}"
    shown = safe_url(url)  # the real URL (credentials and all) is only for the request
    started = time.monotonic()
    tries: list[str] = []
    verdict: _Verdict | None = None
    last: httpx.Response | None = None
    for attempt in range(1, attempts + 1):
        try:
            last = await send(client, "GET", url, provider=f"{service} at {shown}", timeout=timeout)
        except ProviderError as exc:
            last = None
            verdict = _Verdict(Status.ERROR, exc.message, exc.message)
        else:
            verdict = _judge(service, shown, last, expect)
            if verdict.status is Status.PASS:
                return CheckResult(
                    name,
                    Status.PASS,
                    verdict.summary,
                    {
                        "url": shown,
                        "status_code": last.status_code,
                        "attempts": attempt,
                        "expected": expect.describe(),
                    },
                    time.monotonic() - started,
                )
        tries.append(verdict.label)
        if attempt < attempts:
            await sleep(delay)
    assert verdict is not None
    evidence: dict[str, object] = {
        "url": shown,
        "attempts": attempts,
        "answers": tries,
        "expected": expect.describe(),
    }
    if last is not None:
        evidence["body"] = excerpt(last)
    return CheckResult(
        name,
        verdict.status,
        verdict.summary
        + (f" after {attempts} tries" if verdict.status is Status.FAIL and attempts > 1 else ""),
        evidence,
        time.monotonic() - started,
    )
