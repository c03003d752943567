"""FakePagerDuty: the REST incidents list and the Events API v2 enqueue endpoint."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from bot.domain.clock import Now
from bot.sandbox.base import FakeServer, json_response, read_json_object

DEFAULT_TOKEN = "u+golive-sandbox-pagerduty-token"
DEFAULT_ROUTING_KEY = "R0UT1NGKEY0G0L1VE0SANDB0X0000001"
DEFAULT_SERVICE_ID = "PSVC001"
INCIDENT_STATUSES = ("triggered", "acknowledged", "resolved")
URGENCIES = ("high", "low")
EVENT_ACTIONS = ("trigger", "acknowledge", "resolve")
SEVERITIES = ("critical", "error", "warning", "info")
# PagerDuty's `GET /incidents` looks only at the last month unless `since`/`until` or
# `date_range=all` say otherwise, and refuses a since..until range longer than six months.
DEFAULT_RANGE = timedelta(days=30)
MAX_RANGE = timedelta(days=183)
OLD_INCIDENT_AGE = timedelta(days=40)
OLD_INCIDENT_TITLE = "Primary database replica lag (opened 40 days ago, still open)"
FAULT_SWITCHES = ("old_open_incident", "endless_pages", "mrkdwn_titles")
# What a hostile or careless incident title can hold: Slack's broadcasts, a user-group mention,
# a bare `&` and a link whose label hides where it goes. Slack acts on every one of them in a
# message that does not escape it. The fault switch `mrkdwn_titles` appends it to every title.
MRKDWN_BAIT = "<!channel> <!here> <!subteam^S0ALLENG> & <https://evil.example|click>"


@dataclass
class Incident:
    """A PagerDuty incident on one service."""

    id: str
    incident_number: int
    title: str
    status: str
    urgency: str
    service_id: str
    created_at: datetime
    dedup_key: str | None = None

    def to_json(self, service_names: dict[str, str]) -> dict[str, Any]:
        """The incident as `GET /incidents` lists it."""
        summary = service_names.get(self.service_id, self.service_id)
        return {
            "id": self.id,
            "type": "incident",
            "summary": f"[#{self.incident_number}] {self.title}",
            "incident_number": self.incident_number,
            "title": self.title,
            "status": self.status,
            "urgency": self.urgency,
            "incident_key": self.dedup_key,
            "created_at": self.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "html_url": f"https://sandbox.pagerduty.com/incidents/{self.id}",
            "self": f"https://api.pagerduty.com/incidents/{self.id}",
            "service": {
                "id": self.service_id,
                "summary": summary,
                "type": "service_reference",
                "self": f"https://api.pagerduty.com/services/{self.service_id}",
                "html_url": f"https://sandbox.pagerduty.com/service-directory/{self.service_id}",
            },
        }


class FakePagerDuty(FakeServer):
    """PagerDuty REST (`GET /incidents`) and Events v2 (`POST /v2/enqueue`) on one server.

    An accepted trigger opens an incident on the routing key's service (critical/error → high
    urgency), acknowledge/resolve move it on, as PagerDuty does. Fault scopes: "rest", "events".
    """

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        routing_keys: dict[str, str] | None = None,
        *,
        services: dict[str, str] | None = None,
        clock: Now | None = None,
    ) -> None:
        """`routing_keys` maps each accepted integration key to the service id its events open."""
        super().__init__(clock=clock)
        self.token = token
        self.routing_keys = routing_keys or {DEFAULT_ROUTING_KEY: DEFAULT_SERVICE_ID}
        self.services = services or {DEFAULT_SERVICE_ID: "Platform API"}
        self.incidents: list[Incident] = []
        self.events: list[dict[str, Any]] = []
        self.rejected_events: list[dict[str, Any]] = []
        self.faults: dict[str, bool] = dict.fromkeys(FAULT_SWITCHES, False)
        self._numbers = itertools.count(1001)
        self._old: Incident | None = None

    # -- controls ----------------------------------------------------------------------------
    def add_incident(
        self,
        title: str,
        *,
        service_id: str = DEFAULT_SERVICE_ID,
        urgency: str = "high",
        status: str = "triggered",
        dedup_key: str | None = None,
        age: timedelta = timedelta(0),
    ) -> Incident:
        """Open an incident (triggered, high urgency by default; created `age` ago)."""
        if status not in INCIDENT_STATUSES or urgency not in URGENCIES:
            raise ValueError("bad status or urgency")
        number = next(self._numbers)
        incident = Incident(
            f"Q{number:07d}SBX",
            number,
            title,
            status,
            urgency,
            service_id,
            self.clock() - age,
            dedup_key,
        )
        self.incidents.append(incident)
        return incident

    def set_fault_switch(self, name: str, on: bool = True) -> None:
        """Turn one of FAULT_SWITCHES on or off."""
        if name not in self.faults:
            raise KeyError(f"unknown fault switch {name!r}; expected one of {FAULT_SWITCHES}")
        self.faults[name] = on
        if name == "old_open_incident" and on and self._old is None:
            self._old = self.add_incident(OLD_INCIDENT_TITLE, age=OLD_INCIDENT_AGE)
        elif name == "old_open_incident" and not on and self._old is not None:
            self.incidents.remove(self._old)
            self._old = None

    def set_incident_status(self, incident_id: str, status: str) -> None:
        """Move an incident to triggered, acknowledged or resolved."""
        if status not in INCIDENT_STATUSES:
            raise ValueError(f"status must be one of {INCIDENT_STATUSES}")
        for incident in self.incidents:
            if incident.id == incident_id:
                incident.status = status
                return
        raise KeyError(incident_id)

    def acknowledge_incident(self, incident_id: str) -> None:
        """Acknowledge an incident."""
        self.set_incident_status(incident_id, "acknowledged")

    def resolve_incident(self, incident_id: str) -> None:
        """Resolve an incident."""
        self.set_incident_status(incident_id, "resolved")

    def resolve_all(self) -> None:
        """Resolve every incident."""
        for incident in self.incidents:
            incident.status = "resolved"

    def open_incidents(self) -> list[Incident]:
        """Incidents that are triggered or acknowledged."""
        return [i for i in self.incidents if i.status != "resolved"]

    def events_for(self, dedup_key: str) -> list[dict[str, Any]]:
        """Accepted events with this dedup key, oldest first."""
        return [e for e in self.events if e.get("dedup_key") == dedup_key]

    # -- HTTP --------------------------------------------------------------------------------
    def fault_scope(self, request: web.Request) -> str | None:
        """Scope "events" for the Events API, "rest" for everything else."""
        return "events" if request.path.startswith("/v2/") else "rest"

    def add_routes(self, app: web.Application) -> None:
        """REST incidents list and the Events v2 enqueue endpoint."""
        app.router.add_get("/incidents", self._incidents)
        app.router.add_post("/v2/enqueue", self._enqueue)

    async def _incidents(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization", "").strip() != f"Token token={self.token}":
            return json_response({"error": {"message": "Unauthorized", "code": 2006}}, 401)
        query = request.query
        try:
            limit = int(query.get("limit", 25))
            offset = int(query.get("offset", 0))
        except ValueError:
            return _invalid_input("limit and offset must be integers")
        statuses = query.getall("statuses[]", [])
        urgencies = query.getall("urgencies[]", [])
        bad = [s for s in statuses if s not in INCIDENT_STATUSES]
        bad += [u for u in urgencies if u not in URGENCIES]
        if bad or not 1 <= limit <= 100 or offset < 0:
            return _invalid_input(f"Invalid parameter: {', '.join(bad) or 'limit/offset'}")
        window = self._window(query)
        if isinstance(window, web.Response):
            return window
        service_ids = query.getall("service_ids[]", [])
        found = [
            i
            for i in self.incidents
            if (not statuses or i.status in statuses)
            and (not urgencies or i.urgency in urgencies)
            and (not service_ids or i.service_id in service_ids)
            and (window is None or window[0] <= i.created_at <= window[1])
        ]
        if self.faults["endless_pages"]:
            body = {"incidents": [], "limit": limit, "offset": offset, "more": True, "total": None}
            return json_response(body)
        page = [i.to_json(self.services) for i in found[offset : offset + limit]]
        if self.faults["mrkdwn_titles"]:
            for item in page:
                item["title"] = f"{item['title']} {MRKDWN_BAIT}"
                item["summary"] = f"{item['summary']} {MRKDWN_BAIT}"
        body = {
            "incidents": page,
            "limit": limit,
            "offset": offset,
            "more": offset + limit < len(found),
            "total": len(found) if query.get("total") == "true" else None,
        }
        return json_response(body)

    def _window(self, query: Any) -> tuple[datetime, datetime] | web.Response | None:
        """The since..until range asked for (None for date_range=all), or a 400 answer."""
        if query.get("date_range") == "all":
            return None
        if "date_range" in query:
            return _invalid_input("Invalid parameter: date_range (the only value is 'all')")
        now = self.clock()
        try:
            until = _moment(query["until"]) if "until" in query else now
            since = _moment(query["since"]) if "since" in query else until - DEFAULT_RANGE
        except ValueError:
            return _invalid_input("Invalid parameter: since/until must be ISO 8601 date-times")
        if since > until or until - since > MAX_RANGE:
            return _invalid_input("Invalid parameter: the since..until range is at most 6 months")
        return since, until

    async def _enqueue(self, request: web.Request) -> web.Response:
        event = await read_json_object(request)
        errors = ["Event object is not a JSON object"] if event is None else validate_event(event)
        if event is not None and not errors and event["routing_key"] not in self.routing_keys:
            errors = ["Invalid routing key"]
        if errors or event is None:
            self.rejected_events.append(event or {})
            body = {
                "status": "invalid event",
                "message": "Event object is invalid",
                "errors": errors,
            }
            return json_response(body, 400)
        event.setdefault("dedup_key", uuid.uuid4().hex)
        self.events.append(event)
        self._apply(event)
        body = {"status": "success", "message": "Event processed", "dedup_key": event["dedup_key"]}
        return json_response(body, 202)

    def _apply(self, event: dict[str, Any]) -> None:
        key = event["dedup_key"]
        current = next((i for i in self.open_incidents() if i.dedup_key == key), None)
        action = event["event_action"]
        if action == "trigger" and current is None:
            severity = event["payload"]["severity"]
            self.add_incident(
                event["payload"]["summary"],
                service_id=self.routing_keys[event["routing_key"]],
                urgency="high" if severity in ("critical", "error") else "low",
                dedup_key=key,
            )
        elif action == "acknowledge" and current is not None:
            current.status = "acknowledged"
        elif action == "resolve" and current is not None:
            current.status = "resolved"


def validate_event(event: dict[str, Any]) -> list[str]:
    """Events API v2 validation errors for an event object (empty when valid)."""
    errors: list[str] = []
    if not isinstance(event.get("routing_key"), str) or not event["routing_key"]:
        errors.append("'routing_key' is missing or blank")
    action = event.get("event_action")
    if action not in EVENT_ACTIONS:
        errors.append(
            "'event_action' is invalid (must be one of the following: "
            "'trigger', 'acknowledge' or 'resolve')"
        )
    dedup = event.get("dedup_key")
    if dedup is not None and (not isinstance(dedup, str) or not dedup or len(dedup) > 255):
        errors.append("'dedup_key' must be a non-empty string of at most 255 characters")
    if action in ("acknowledge", "resolve") and dedup is None:
        errors.append("'dedup_key' is missing or blank")
    if action == "trigger":
        errors += _payload_errors(event.get("payload"))
    return errors


def _payload_errors(payload: Any) -> list[str]:
    if not isinstance(payload, dict):
        return ["'payload' is missing or not an object"]
    errors = [
        f"'payload.{key}' is missing or blank"
        for key in ("summary", "source")
        if not isinstance(payload.get(key), str) or not payload[key].strip()
    ]
    if isinstance(payload.get("summary"), str) and len(payload["summary"]) > 1024:
        errors.append("'payload.summary' is longer than 1024 characters")
    if payload.get("severity") not in SEVERITIES:
        errors.append(
            "'payload.severity' is invalid (must be one of the following: "
            "'critical', 'warning', 'error' or 'info')"
        )
    return errors


def _moment(text: str) -> datetime:
    """An ISO 8601 date or date-time; naive values are taken as UTC."""
    moment = datetime.fromisoformat(text.strip().replace(" ", "+"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _invalid_input(message: str) -> web.Response:
    body = {"error": {"message": "Invalid Input Provided", "code": 2001, "errors": [message]}}
    return json_response(body, 400)
