"""Check results, statuses, and a concurrent runner that never turns a crash into a pass."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from bot.domain.serial import Millis


class Status(StrEnum):
    """How a check ended. Only PASS lets a release move on by itself."""

    PASS = "pass"
    FAIL = "fail"
    WARN = "warn"
    INCONCLUSIVE = "inconclusive"
    ERROR = "error"

    @property
    def ok(self) -> bool:
        """True for the statuses that let a step pass without a human (pass and warn)."""
        return self in (Status.PASS, Status.WARN)


@dataclass(frozen=True)
class CheckResult:
    """One verdict with the evidence a human needs to see why it was reached."""

    name: str
    status: Status
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)
    duration: Millis = 0.0  # stored to the millisecond


CheckFn = Callable[[], Awaitable["CheckResult | Sequence[CheckResult]"]]


@dataclass(frozen=True)
class Check:
    """A named, runnable check with its own time limit."""

    name: str
    run: CheckFn
    timeout: float = 30.0


async def _run_one(check: Check) -> list[CheckResult]:
    started = time.monotonic()
    try:
        outcome = await asyncio.wait_for(check.run(), timeout=check.timeout)
    except TimeoutError:
        return [
            CheckResult(
                check.name,
                Status.ERROR,
                f"{check.name} did not finish within {check.timeout:g}s",
                {"timeout_seconds": check.timeout},
                time.monotonic() - started,
            )
        ]
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # a crashing check is an error, never a pass
        return [
            CheckResult(
                check.name,
                Status.ERROR,
                f"{check.name} could not run: {type(exc).__name__}: {exc}",
                {"exception": type(exc).__name__, "message": str(exc)},
                time.monotonic() - started,
            )
        ]
    results = [outcome] if isinstance(outcome, CheckResult) else list(outcome)
    if not results:
        return [
            CheckResult(
                check.name,
                Status.ERROR,
                f"{check.name} returned no verdict",
                {},
                time.monotonic() - started,
            )
        ]
    elapsed = time.monotonic() - started
    return [r if r.duration else _with_duration(r, elapsed) for r in results]


def _with_duration(result: CheckResult, duration: float) -> CheckResult:
    return CheckResult(result.name, result.status, result.summary, result.evidence, duration)


async def run_checks(checks: Sequence[Check]) -> list[CheckResult]:
    """Run every check concurrently; a timeout or exception becomes an ERROR result."""
    groups = await asyncio.gather(*(_run_one(c) for c in checks))
    return [r for group in groups for r in group]
