"""The check runner and the health check: anything that cannot evaluate is never a pass."""

from __future__ import annotations

import asyncio

import httpx

from bot.domain.serial import dump, load
from checks.base import Check, CheckResult, Status, run_checks
from checks.health import check_health


async def _never() -> CheckResult:
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


async def _boom() -> CheckResult:
    raise ValueError("provider answered garbage")


async def _empty() -> list[CheckResult]:
    return []


async def _ok() -> CheckResult:
    return CheckResult("ok", Status.PASS, "fine")


async def test_runner_turns_crashes_timeouts_and_silence_into_errors() -> None:
    """Exceptions, timeouts and empty answers are errors with a reason; a pass stays a pass."""
    results = await run_checks(
        [
            Check("slow", _never, timeout=0.05),
            Check("boom", _boom),
            Check("silent", _empty),
            Check("ok", _ok),
        ]
    )
    by_name = {r.name: r for r in results}
    assert by_name["slow"].status is Status.ERROR
    assert by_name["slow"].summary == "slow did not finish within 0.05s"
    assert by_name["boom"].status is Status.ERROR
    assert "ValueError: provider answered garbage" in by_name["boom"].summary
    assert by_name["silent"].status is Status.ERROR
    assert by_name["ok"].status is Status.PASS


async def test_runner_runs_checks_concurrently() -> None:
    """Two checks that each wait for the other finish only if they run at the same time."""
    a_started, b_started = asyncio.Event(), asyncio.Event()

    async def a() -> CheckResult:
        a_started.set()
        await asyncio.wait_for(b_started.wait(), 1)
        return CheckResult("a", Status.PASS, "")

    async def b() -> CheckResult:
        b_started.set()
        await asyncio.wait_for(a_started.wait(), 1)
        return CheckResult("b", Status.PASS, "")

    results = await run_checks([Check("a", a), Check("b", b)])
    assert [r.status for r in results] == [Status.PASS, Status.PASS]


def test_only_pass_and_warn_are_ok() -> None:
    """Inconclusive and error block a step like a failure does."""
    assert {s for s in Status if s.ok} == {Status.PASS, Status.WARN}


def test_results_round_trip() -> None:
    """Stored results read back identically."""
    result = CheckResult("x", Status.FAIL, "bad", {"url": "http://x"}, 1.5)
    assert load(CheckResult, dump(result)) == result


async def _no_sleep(_: float) -> None:
    return None


async def test_health_retries_then_passes() -> None:
    """A service that answers 503 once and then 200 is healthy."""
    answers = iter([503, 200])
    transport = httpx.MockTransport(lambda request: httpx.Response(next(answers), text="ok"))
    async with httpx.AsyncClient(transport=transport) as client:
        result = await check_health(client, "api", "http://api/healthz", sleep=_no_sleep)
    assert result.status is Status.PASS and result.evidence["attempts"] == 2


async def test_health_fails_on_persistent_bad_answers() -> None:
    """Three 503s fail the gate, with the answers as evidence."""
    transport = httpx.MockTransport(lambda request: httpx.Response(503, text="draining"))
    async with httpx.AsyncClient(transport=transport) as client:
        result = await check_health(client, "api", "http://api/healthz", sleep=_no_sleep)
    assert result.status is Status.FAIL
    assert result.evidence["answers"] == ["HTTP 503"] * 3 and result.evidence["body"] == "draining"


async def test_health_unreachable_is_an_error() -> None:
    """A connection failure means the bot cannot tell: error, not fail and never pass."""

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as client:
        result = await check_health(client, "api", "http://api/healthz", sleep=_no_sleep)
    assert result.status is Status.ERROR
    assert result.summary.startswith("could not reach api at http://api/healthz: ConnectError")
