"""Calling providers: every way an answer can be wrong becomes a sentence, never a pass."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from checks.base import CheckResult, Status
from checks.redact import safe_url


class ProviderError(Exception):
    """A provider could not give a usable answer; the message says why in plain words."""

    def __init__(self, message: str, evidence: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.evidence = dict(evidence or {})

    def result(self, name: str, duration: float = 0.0) -> CheckResult:
        """This failure as an ERROR verdict (the bot could not evaluate)."""
        return CheckResult(name, Status.ERROR, self.message, self.evidence, duration)


@dataclass
class Answer:
    """A parsed JSON answer with what was asked, for evidence."""

    data: Any
    response: httpx.Response
    asked: dict[str, Any] = field(default_factory=dict)


def _excerpt(response: httpx.Response, limit: int = 300) -> str:
    try:
        text = response.text
    except Exception:  # undecodable bodies are still worth naming
        return f"<{len(response.content)} bytes>"
    return text[:limit]


def describe_request(request: httpx.Request) -> str:
    """`GET https://host/path?query` without credentials (user-info and token parameters)."""
    return f"{request.method} {safe_url(str(request.url))}"


async def request_json(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    provider: str,
    headers: Mapping[str, str] | None = None,
    params: Any = None,
    json_body: Any = None,
    timeout: float = 10.0,
    ok: tuple[int, ...] = (),
) -> Answer:
    """Send a request and parse a JSON answer; ProviderError says what went wrong."""
    try:
        response = await client.request(
            method, url, headers=headers, params=params, json=json_body, timeout=timeout
        )
    except httpx.TimeoutException:
        raise ProviderError(
            f"{provider} did not answer within {timeout:g}s",
            {"request": f"{method} {safe_url(url)}"},
        ) from None
    except httpx.HTTPError as exc:
        raise ProviderError(
            f"could not reach {provider}: {type(exc).__name__}: {exc}".rstrip(": "),
            {"request": f"{method} {safe_url(url)}"},
        ) from None
    asked = {"request": describe_request(response.request), "status_code": response.status_code}
    evidence = {
        **asked,
        "content_type": response.headers.get("content-type", ""),
        "body": _excerpt(response),
    }
    status = response.status_code
    if status in (401, 403) and status not in ok:
        raise ProviderError(
            f"{provider} refused the credentials (HTTP {status}); check the token", evidence
        )
    if status == 404 and status not in ok:
        shown = safe_url(str(response.url))
        raise ProviderError(f"{provider} answered 404 Not Found for {shown}", evidence)
    if status == 429:
        raise ProviderError(f"{provider} is rate-limiting golive (HTTP 429)", evidence)
    if status >= 400 and status not in ok:
        raise ProviderError(f"{provider} answered HTTP {status}", evidence)
    if status == 204 or not response.content:
        return Answer(None, response, asked)
    content_type = response.headers.get("content-type", "")
    if "html" in content_type.lower():
        raise ProviderError(
            f"{provider} answered an HTML page instead of JSON (HTTP {status}); is the URL right?",
            evidence,
        )
    try:
        data = json.loads(response.content)
    except ValueError as exc:
        raise ProviderError(f"{provider} answered malformed JSON ({exc})", evidence) from None
    return Answer(data, response, asked)


def expect(condition: bool, provider: str, what: str, answer: Answer) -> None:
    """Refuse an answer whose shape is not what the provider documents."""
    if not condition:
        raise ProviderError(
            f"{provider} answered JSON without {what}",
            {**answer.asked, "body": _excerpt(answer.response)},
        )
