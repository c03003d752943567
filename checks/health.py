"""Health gates: each service's health URL must answer 2xx, retried briefly."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import httpx

from checks.base import CheckResult, Status
from checks.redact import safe_url

Sleep = Callable[[float], Awaitable[None]]


async def check_health(
    client: httpx.AsyncClient,
    service: str,
    url: str,
    *,
    attempts: int = 3,
    delay: float = 1.0,
    timeout: float = 5.0,
    sleep: Sleep = asyncio.sleep,
) -> CheckResult:
    """GET the health URL; pass on 2xx, fail on another answer, error when unreachable."""
    name = f"health:{service}"
    shown = safe_url(url)  # the real URL (credentials and all) is only for the request
    started = time.monotonic()
    tries: list[str] = []
    last: httpx.Response | None = None
    for attempt in range(1, attempts + 1):
        try:
            last = await client.get(url, timeout=timeout)
        except httpx.HTTPError as exc:
            last = None
            tries.append(f"{type(exc).__name__}: {exc}".rstrip(": "))
        else:
            if last.is_success:
                return CheckResult(
                    name,
                    Status.PASS,
                    f"{service} is healthy ({last.status_code} from {shown})",
                    {"url": shown, "status_code": last.status_code, "attempts": attempt},
                    time.monotonic() - started,
                )
            tries.append(f"HTTP {last.status_code}")
        if attempt < attempts:
            await sleep(delay)
    evidence: dict[str, object] = {"url": shown, "attempts": attempts, "answers": tries}
    if last is None:
        return CheckResult(
            name,
            Status.ERROR,
            f"could not reach {service} at {shown} ({tries[-1]})",
            evidence,
            time.monotonic() - started,
        )
    evidence["body"] = last.text[:300]
    return CheckResult(
        name,
        Status.FAIL,
        f"{service} is unhealthy: HTTP {last.status_code} from {shown} after {attempts} tries",
        evidence,
        time.monotonic() - started,
    )
