"""FakePagerDuty speaks PagerDuty's REST incidents list and Events API v2."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from bot.sandbox import FakeClock, FakePagerDuty
from bot.sandbox.pagerduty import DEFAULT_ROUTING_KEY, DEFAULT_TOKEN

AUTH = {"Authorization": f"Token token={DEFAULT_TOKEN}"}
OPEN_HIGH = httpx.QueryParams(
    [
        ("statuses[]", "triggered"),
        ("statuses[]", "acknowledged"),
        ("urgencies[]", "high"),
        ("service_ids[]", "PSVC001"),
    ]
)


@pytest.fixture
async def pagerduty() -> AsyncIterator[FakePagerDuty]:
    """A FakePagerDuty with no incidents."""
    async with FakePagerDuty() as fake:
        yield fake


def trigger(**changes: Any) -> dict[str, Any]:
    """A valid trigger event, with changes applied."""
    event: dict[str, Any] = {
        "routing_key": DEFAULT_ROUTING_KEY,
        "event_action": "trigger",
        "dedup_key": "golive-v2.4.0-errors",
        "payload": {"summary": "5xx elevated", "source": "golive", "severity": "critical"},
    }
    event.update(changes)
    return event


@pytest.mark.parametrize("header", [None, "Token token=wrong", f"Bearer {DEFAULT_TOKEN}"])
async def test_rest_requires_token_header(
    pagerduty: FakePagerDuty, client: httpx.AsyncClient, header: str | None
) -> None:
    """Without `Token token=<token>` the REST API answers 401 with PagerDuty's error 2006."""
    headers = {"Authorization": header} if header else {}
    response = await client.get(f"{pagerduty.url}/incidents", headers=headers)
    assert response.status_code == 401
    assert response.json() == {"error": {"message": "Unauthorized", "code": 2006}}


async def test_incident_filters(pagerduty: FakePagerDuty, client: httpx.AsyncClient) -> None:
    """statuses[], urgencies[] and service_ids[] each narrow the incident list."""
    wanted = pagerduty.add_incident("Checkout down")
    acked = pagerduty.add_incident("Slow search", status="acknowledged")
    pagerduty.add_incident("Low one", urgency="low")
    pagerduty.add_incident("Other service", service_id="POTHER1")
    done = pagerduty.add_incident("Fixed")
    pagerduty.resolve_incident(done.id)
    response = await client.get(f"{pagerduty.url}/incidents", params=OPEN_HIGH, headers=AUTH)
    body = response.json()
    assert [i["id"] for i in body["incidents"]] == [wanted.id, acked.id]
    incident = body["incidents"][0]
    assert set(incident) >= {
        "id",
        "incident_number",
        "title",
        "status",
        "urgency",
        "html_url",
        "created_at",
        "service",
    }
    assert incident["service"]["type"] == "service_reference"
    assert incident["service"]["id"] == "PSVC001"
    everything = await client.get(f"{pagerduty.url}/incidents", headers=AUTH)
    assert len(everything.json()["incidents"]) == 5


async def test_limit_offset_pagination(pagerduty: FakePagerDuty, client: httpx.AsyncClient) -> None:
    """limit/offset page through incidents; `more` says whether another page exists."""
    for i in range(5):
        pagerduty.add_incident(f"incident {i}")
    titles, offset, more = [], 0, True
    while more:
        page = (
            await client.get(
                f"{pagerduty.url}/incidents",
                params={"limit": 2, "offset": offset, "total": "true"},
                headers=AUTH,
            )
        ).json()
        assert (page["limit"], page["offset"], page["total"]) == (2, offset, 5)
        titles += [i["title"] for i in page["incidents"]]
        more, offset = page["more"], offset + 2
    assert titles == [f"incident {i}" for i in range(5)]


async def test_trigger_accepted_recorded_and_opens_incident(
    pagerduty: FakePagerDuty, client: httpx.AsyncClient
) -> None:
    """A valid trigger is 202 success with its dedup key, recorded, and opens one incident."""
    response = await client.post(f"{pagerduty.url}/v2/enqueue", json=trigger())
    assert response.status_code == 202
    assert response.json() == {
        "status": "success",
        "message": "Event processed",
        "dedup_key": "golive-v2.4.0-errors",
    }
    await client.post(f"{pagerduty.url}/v2/enqueue", json=trigger())
    assert len(pagerduty.events_for("golive-v2.4.0-errors")) == 2
    [incident] = pagerduty.open_incidents()
    assert (incident.urgency, incident.title) == ("high", "5xx elevated")
    resolve = {
        "routing_key": DEFAULT_ROUTING_KEY,
        "event_action": "resolve",
        "dedup_key": "golive-v2.4.0-errors",
    }
    assert (await client.post(f"{pagerduty.url}/v2/enqueue", json=resolve)).status_code == 202
    assert pagerduty.open_incidents() == []


async def test_trigger_without_dedup_key_gets_one(
    pagerduty: FakePagerDuty, client: httpx.AsyncClient
) -> None:
    """A trigger without dedup_key is accepted and the answer carries a generated key."""
    event = trigger()
    del event["dedup_key"]
    response = await client.post(f"{pagerduty.url}/v2/enqueue", json=event)
    assert response.status_code == 202
    assert response.json()["dedup_key"]


@pytest.mark.parametrize(
    ("event", "fragment"),
    [
        (trigger(routing_key=""), "routing_key"),
        (trigger(routing_key="0" * 32), "routing key"),
        (trigger(event_action="explode"), "event_action"),
        (trigger(payload={"summary": "x", "source": "y", "severity": "fatal"}), "severity"),
        (trigger(payload={"source": "y", "severity": "info"}), "summary"),
        (trigger(payload={"summary": "x", "severity": "info"}), "source"),
        ({"routing_key": DEFAULT_ROUTING_KEY, "event_action": "resolve"}, "dedup_key"),
    ],
)
async def test_invalid_events_are_400(
    pagerduty: FakePagerDuty, client: httpx.AsyncClient, event: dict[str, Any], fragment: str
) -> None:
    """Events missing or misspelling required fields get 400 "invalid event" with the reason."""
    response = await client.post(f"{pagerduty.url}/v2/enqueue", json=event)
    assert response.status_code == 400
    body = response.json()
    assert (body["status"], body["message"]) == ("invalid event", "Event object is invalid")
    assert any(fragment in error for error in body["errors"])
    assert pagerduty.events == []


async def test_fault_scopes_rest_and_events(
    pagerduty: FakePagerDuty, client: httpx.AsyncClient
) -> None:
    """A fault on the "events" scope breaks enqueue only; "*" breaks both."""
    pagerduty.set_fault("500", scope="events")
    assert (await client.post(f"{pagerduty.url}/v2/enqueue", json=trigger())).status_code == 500
    assert (await client.get(f"{pagerduty.url}/incidents", headers=AUTH)).status_code == 200
    pagerduty.clear_faults()
    pagerduty.set_fault("html")
    rest = await client.get(f"{pagerduty.url}/incidents", headers=AUTH)
    assert rest.headers["content-type"].startswith("text/html")
    pagerduty.set_fault("garbage")
    with pytest.raises(ValueError):
        (await client.get(f"{pagerduty.url}/incidents", headers=AUTH)).json()


async def test_incident_list_defaults_to_the_last_month(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    """Without since/until only the last month's incidents are listed; date_range=all or an
    explicit since reaches older ones, as PagerDuty documents."""
    async with FakePagerDuty(clock=clock) as pagerduty:
        old = pagerduty.add_incident("Replica lag", age=timedelta(days=40))
        new = pagerduty.add_incident("Checkout slow", age=timedelta(days=2))
        url = f"{pagerduty.url}/incidents"

        async def ids(**params: str) -> list[str]:
            response = await client.get(url, params=params, headers=AUTH)
            assert response.status_code == 200, response.text
            return [i["id"] for i in response.json()["incidents"]]

        assert await ids() == [new.id]
        assert await ids(date_range="all") == [old.id, new.id]
        since = (clock() - timedelta(days=60)).isoformat()
        assert await ids(since=since) == [old.id, new.id]
        until = (clock() - timedelta(days=10)).isoformat()
        assert await ids(since=since, until=until) == [old.id]
        too_wide = (clock() - timedelta(days=400)).isoformat()
        refused = await client.get(url, params={"since": too_wide}, headers=AUTH)
        assert refused.status_code == 400


async def test_old_open_incident_and_endless_pages_switches(
    pagerduty: FakePagerDuty, client: httpx.AsyncClient
) -> None:
    """`old_open_incident` holds a 40-day-old triggered high-urgency incident (off removes it);
    `endless_pages` answers `more: true` with no incidents on every page."""
    pagerduty.set_fault_switch("old_open_incident")
    [old] = pagerduty.open_incidents()
    assert (old.status, old.urgency) == ("triggered", "high")
    assert old.created_at <= pagerduty.clock() - timedelta(days=40)
    listed = await client.get(
        f"{pagerduty.url}/incidents", params={"date_range": "all"}, headers=AUTH
    )
    assert [i["id"] for i in listed.json()["incidents"]] == [old.id]
    pagerduty.set_fault_switch("old_open_incident", False)
    assert pagerduty.open_incidents() == []
    pagerduty.set_fault_switch("endless_pages")
    page = (
        await client.get(f"{pagerduty.url}/incidents", params={"offset": 500}, headers=AUTH)
    ).json()
    assert (page["incidents"], page["more"]) == ([], True)
