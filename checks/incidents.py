"""No unresolved critical incident: PagerDuty's open high-urgency incidents on our services."""

from __future__ import annotations

import time
from typing import Any

import httpx

from checks.base import CheckResult, Status
from checks.http import ProviderError, expect, request_json

PROVIDER = "PagerDuty"
NAME = "incidents"
PAGE = 100  # PagerDuty's largest `limit`
MAX_PAGES = 50  # 5,000 open high-urgency incidents: more than any team has; beyond is a loop


async def check_incidents(
    client: httpx.AsyncClient, *, base_url: str, token: str, service_ids: list[str]
) -> CheckResult:
    """Fail when any triggered or acknowledged high-urgency incident is open, whatever its age.

    PagerDuty lists only the last month's incidents unless asked otherwise, so the query says
    `date_range=all`. A list that never ends (`more: true` with an empty page, or more pages
    than MAX_PAGES) is an error: golive cannot say that nothing is open.
    """
    started = time.monotonic()
    headers = {
        "Authorization": f"Token token={token}",
        "Accept": "application/vnd.pagerduty+json;version=2",
    }
    params: list[tuple[str, str | int]] = [
        ("statuses[]", "triggered"),
        ("statuses[]", "acknowledged"),
        ("urgencies[]", "high"),
        ("date_range", "all"),
        *(("service_ids[]", s) for s in service_ids),
    ]
    try:
        incidents = await _open_incidents(client, base_url, headers, params)
    except ProviderError as exc:
        return exc.result(NAME, time.monotonic() - started)
    scope = f"services {', '.join(service_ids)}" if service_ids else "all services"
    evidence: dict[str, Any] = {
        "query": "statuses triggered+acknowledged, urgency high, any age, " + scope,
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


async def _open_incidents(
    client: httpx.AsyncClient,
    base_url: str,
    headers: dict[str, str],
    params: list[tuple[str, str | int]],
) -> list[dict[str, Any]]:
    """Every incident the query matches, page by page (PagerDuty's offset pagination)."""
    incidents: list[dict[str, Any]] = []
    offset = 0
    for _ in range(MAX_PAGES):
        answer = await request_json(
            client,
            "GET",
            f"{base_url.rstrip('/')}/incidents",
            provider=PROVIDER,
            headers=headers,
            params=[*params, ("limit", PAGE), ("offset", offset)],
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
            return incidents
        if not data["incidents"]:
            raise ProviderError(
                f"{PROVIDER} said more incidents follow (`more: true`) but sent an empty page at "
                f"offset {offset}; golive cannot tell whether a critical incident is open",
                {**answer.asked, "offset": offset},
            )
        offset += len(data["incidents"])
    raise ProviderError(
        f"{PROVIDER} kept answering further pages ({MAX_PAGES} pages of {PAGE}); golive stopped "
        f"without a verdict",
        {"pages": MAX_PAGES, "incidents_seen": len(incidents)},
    )
