"""No unresolved critical incident: PagerDuty's open high-urgency incidents on our services."""

from __future__ import annotations

import time
from typing import Any

import httpx

from checks.base import CheckResult, Status
from checks.http import ProviderError, expect, request_json

PROVIDER = "PagerDuty"
NAME = "incidents"


async def check_incidents(
    client: httpx.AsyncClient, *, base_url: str, token: str, service_ids: list[str]
) -> CheckResult:
    """Fail when any triggered or acknowledged high-urgency incident is open."""
    started = time.monotonic()
    headers = {
        "Authorization": f"Token token={token}",
        "Accept": "application/vnd.pagerduty+json;version=2",
    }
    params: list[tuple[str, str | int]] = [
        ("statuses[]", "triggered"),
        ("statuses[]", "acknowledged"),
        ("urgencies[]", "high"),
        *(("service_ids[]", s) for s in service_ids),
    ]
    incidents: list[dict[str, Any]] = []
    offset, limit = 0, 100
    try:
        for _ in range(50):
            answer = await request_json(
                client,
                "GET",
                f"{base_url.rstrip('/')}/incidents",
                provider=PROVIDER,
                headers=headers,
                params=[*params, ("limit", limit), ("offset", offset)],
            )
            data = answer.data
            expect(
                isinstance(data, dict) and isinstance(data.get("incidents"), list),
                PROVIDER,
                "an `incidents` list",
                answer,
            )
            incidents.extend(i for i in data["incidents"] if isinstance(i, dict))
            if not data.get("more"):
                break
            offset += len(data["incidents"]) or limit
    except ProviderError as exc:
        return exc.result(NAME, time.monotonic() - started)
    scope = f"services {', '.join(service_ids)}" if service_ids else "all services"
    evidence: dict[str, Any] = {
        "query": "statuses triggered+acknowledged, urgency high, " + scope,
        "incidents": [
            {k: i.get(k) for k in ("id", "incident_number", "title", "status", "html_url")}
            for i in incidents
        ],
    }
    elapsed = time.monotonic() - started
    if not incidents:
        return CheckResult(
            NAME, Status.PASS, f"no open high-urgency incident on {scope}", evidence, elapsed
        )
    listed = "; ".join(
        f"#{i.get('incident_number', '?')} {i.get('title', '(untitled)')} ({i.get('status')})"
        + (f" {i['html_url']}" if i.get("html_url") else "")
        for i in incidents[:5]
    )
    more = f" and {len(incidents) - 5} more" if len(incidents) > 5 else ""
    return CheckResult(
        NAME,
        Status.FAIL,
        f"{len(incidents)} open critical incident(s): {listed}{more}",
        evidence,
        elapsed,
    )
