"""Calling providers: every way an answer can be wrong becomes a sentence, never a pass.

Credentials only ever go to the origin (scheme, host, port) they were configured for: redirects
are followed only within that origin, and a next-page link to another origin is an error that
names the foreign host, with no request sent there.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from bot.domain.redact import safe_url
from checks.base import CheckResult, Status

REDIRECTS = (301, 302, 303, 307, 308)
MAX_REDIRECTS = 5
_DEFAULT_PORTS = {"http": 80, "https": 443}
_PASSWORD_INPUT = re.compile(rb"<input\b[^>]*\btype\s*=\s*[\"']?password\b", re.IGNORECASE)


class ProviderError(Exception):
    """A provider could not give a usable answer; the message says why in plain words."""

    def __init__(self, message: str, evidence: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.evidence = dict(evidence or {})

    def result(self, name: str, duration: float = 0.0) -> CheckResult:
        """This failure as an ERROR verdict (the bot could not evaluate)."""
        return CheckResult(name, Status.ERROR, self.message, self.evidence, duration)


class RateLimited(ProviderError):
    """The provider is rate-limiting golive (not a credentials problem); when to ask again."""

    def __init__(
        self,
        message: str,
        evidence: Mapping[str, Any] | None = None,
        *,
        retry_after: float | None = None,
        reset_at: float | None = None,
    ) -> None:
        super().__init__(message, evidence)
        self.retry_after = retry_after  # seconds from the answer, when the provider said so
        self.reset_at = reset_at  # epoch seconds when the limit resets, when the provider said so

    def wait_from(self, now: float, default: float = 60.0) -> float:
        """Seconds to wait from wall-clock `now` (epoch seconds) before asking again."""
        if self.retry_after is not None:
            return max(self.retry_after, 0.0)
        if self.reset_at is not None:
            return max(self.reset_at - now, 1.0)
        return default


@dataclass
class Answer:
    """A parsed JSON answer with what was asked, for evidence."""

    data: Any
    response: httpx.Response
    asked: dict[str, Any] = field(default_factory=dict)


def excerpt(response: httpx.Response, limit: int = 300) -> str:
    """The start of an answer's body, for evidence."""
    try:
        text = response.text
    except Exception:  # undecodable bodies are still worth naming
        return f"<{len(response.content)} bytes>"
    return text[:limit]


def describe_request(request: httpx.Request) -> str:
    """`GET https://host/path?query` without credentials (user-info and token parameters)."""
    return f"{request.method} {safe_url(str(request.url))}"


def origin(url: str | httpx.URL) -> tuple[str, str, int | None]:
    """(scheme, host, port) of a URL, the default port filled in."""
    parsed = httpx.URL(url)
    return parsed.scheme, parsed.host, parsed.port or _DEFAULT_PORTS.get(parsed.scheme)


def same_origin(a: str | httpx.URL, b: str | httpx.URL) -> bool:
    """True when both URLs share scheme, host and port."""
    return origin(a) == origin(b)


def host_of(url: str | httpx.URL) -> str:
    """`host` or `host:port` as a person would name it."""
    parsed = httpx.URL(url)
    return f"{parsed.host}:{parsed.port}" if parsed.port else parsed.host


def looks_like_login(response: httpx.Response) -> bool:
    """True when an answer is an HTML page with a password field: a sign-in form."""
    content_type = response.headers.get("content-type", "").lower()
    head = response.content[:65536]
    is_html = "html" in content_type or head.lstrip()[:15].lower().startswith(
        (b"<!doctype", b"<html")
    )
    return is_html and _PASSWORD_INPUT.search(head) is not None


async def send(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    provider: str,
    headers: Mapping[str, str] | None = None,
    params: Any = None,
    json_body: Any = None,
    timeout: float = 10.0,
    redirects: bool = True,
) -> httpx.Response:
    """One request; redirects are followed only within the request's origin (GET and HEAD), and
    not at all without `redirects` (the redirect is then the answer).

    A redirect to another origin is a ProviderError naming the host: whatever credentials the
    request carries never travel there. No answer at all is a ProviderError too.
    """
    target, query = url, params
    for _ in range(MAX_REDIRECTS + 1):
        try:
            response = await client.request(
                method,
                target,
                headers=headers,
                params=query,
                json=json_body,
                timeout=timeout,
                follow_redirects=False,
            )
        except httpx.TimeoutException:
            raise ProviderError(
                f"{provider} did not answer within {timeout:g}s",
                {"request": f"{method} {safe_url(target)}"},
            ) from None
        except httpx.HTTPError as exc:
            raise ProviderError(
                f"could not reach {provider}: {type(exc).__name__}: {exc}".rstrip(": "),
                {"request": f"{method} {safe_url(target)}"},
            ) from None
        location = response.headers.get("location")
        if not redirects or response.status_code not in REDIRECTS or not location:
            return response
        evidence = {
            "request": describe_request(response.request),
            "status_code": response.status_code,
        }
        moved = response.url.join(location)
        if not same_origin(moved, response.url):
            raise ProviderError(
                f"{provider} redirected to another host ({host_of(moved)}); golive does not "
                f"follow redirects off {host_of(response.url)} (a sign-in page?)",
                {**evidence, "location": str(moved)[:300]},
            )
        if method not in ("GET", "HEAD"):
            raise ProviderError(
                f"{provider} answered a redirect (HTTP {response.status_code}) to a {method} "
                f"request; is the URL right?",
                {**evidence, "location": str(moved)[:300]},
            )
        target, query = str(moved), None
    raise ProviderError(
        f"{provider} redirected more than {MAX_REDIRECTS} times", {"request": safe_url(url)}
    )


def rate_limit(
    response: httpx.Response, provider: str, evidence: dict[str, Any]
) -> RateLimited | None:
    """A RateLimited error when an answer is a rate-limit refusal, else None.

    429 always is; a 403 is when it says so (GitHub: `x-ratelimit-remaining: 0`, a
    `retry-after` header, or a "rate limit" message for its secondary limits).
    """
    status, found = response.status_code, response.headers
    said = "rate limit" in excerpt(response, 2000).lower()
    if status != 429 and not (
        status == 403
        and (found.get("x-ratelimit-remaining") == "0" or "retry-after" in found or said)
    ):
        return None
    retry_after, reset_at = _retry_after(found.get("retry-after"))
    if retry_after is None and reset_at is None and found.get("x-ratelimit-remaining") == "0":
        reset_at = _number(found.get("x-ratelimit-reset"))
    if retry_after is not None:
        when = f"; asks to wait {retry_after:g}s"
    elif reset_at is not None:
        when = f"; the limit resets at {datetime.fromtimestamp(reset_at, UTC):%H:%M:%S} UTC"
    else:
        when = ""
    return RateLimited(
        f"{provider} is rate-limiting golive (HTTP {status}{when}); the token is not the problem",
        evidence,
        retry_after=retry_after,
        reset_at=reset_at,
    )


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _retry_after(value: str | None) -> tuple[float | None, float | None]:
    """Retry-After as (seconds to wait, None) or, given as an HTTP date, (None, epoch seconds)."""
    if value is None:
        return None, None
    number = _number(value.strip())
    if number is not None:
        return max(number, 0.0), None
    try:
        return None, parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None, None


def read_json(response: httpx.Response, provider: str, ok: tuple[int, ...] = ()) -> Answer:
    """Judge an answer and parse its JSON; ProviderError says what went wrong."""
    asked = {"request": describe_request(response.request), "status_code": response.status_code}
    evidence = {
        **asked,
        "content_type": response.headers.get("content-type", ""),
        "body": excerpt(response),
    }
    status = response.status_code
    limited = rate_limit(response, provider, evidence)
    if limited is not None:
        raise limited
    if status in (401, 403) and status not in ok:
        raise ProviderError(
            f"{provider} refused the credentials (HTTP {status}); check the token", evidence
        )
    if status == 404 and status not in ok:
        shown = safe_url(str(response.url))
        raise ProviderError(f"{provider} answered 404 Not Found for {shown}", evidence)
    if 300 <= status < 400 and status not in ok:
        raise ProviderError(
            f"{provider} answered HTTP {status}, a redirect golive did not follow", evidence
        )
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
    response = await send(
        client,
        method,
        url,
        provider=provider,
        headers=headers,
        params=params,
        json_body=json_body,
        timeout=timeout,
    )
    return read_json(response, provider, ok)


def next_link(response: httpx.Response, configured: str, provider: str) -> str | None:
    """The `Link: rel="next"` URL of an answer, resolved against it; None on the last page.

    A link to another origin than the configured one is a ProviderError naming that host, and
    nothing is sent there: the token belongs to the configured origin only.
    """
    link = response.links.get("next", {}).get("url")
    if not link:
        return None
    target = response.url.join(link)
    if not same_origin(target, configured):
        raise ProviderError(
            f"{provider} sent a next-page link to another host ({host_of(target)}); golive sends "
            f"its token only to {host_of(configured)} and stopped there",
            {"request": describe_request(response.request), "link": str(target)[:300]},
        )
    return str(target)


def expect(condition: bool, provider: str, what: str, answer: Answer) -> None:
    """Refuse an answer whose shape is not what the provider documents."""
    if not condition:
        raise ProviderError(
            f"{provider} answered JSON without {what}",
            {**answer.asked, "body": excerpt(answer.response)},
        )
