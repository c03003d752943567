"""Checks speak to providers as their published docs say: unit tests with in-process transports.

The integration tests against the sandbox's real servers live in tests/test_preconditions.py and
tests/test_provider_servers.py.
"""

from __future__ import annotations

import httpx

from checks.base import Status
from checks.incidents import MAX_PAGES, check_incidents


async def test_incident_pages_beyond_the_cap_are_an_error() -> None:
    """PagerDuty answering `more: true` with a full page for ever stops at the page cap with an
    error, never a pass."""
    calls: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        incident = {"id": f"Q{len(calls)}", "incident_number": len(calls), "status": "triggered"}
        return httpx.Response(200, json={"incidents": [incident], "more": True})

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        result = await check_incidents(
            client, base_url="https://api.pagerduty.test", token="t", service_ids=[]
        )
    assert result.status is Status.ERROR
    assert result.summary.startswith("PagerDuty kept answering further pages")
    assert len(calls) == MAX_PAGES
