"""PagerDuty Events API v2 delivery of queued trigger/resolve events (the `page` outbox rows).

The routing key is read from the environment at delivery time and never stored with the event.
"""

from __future__ import annotations

import json

import httpx

from bot.engine.outbox import RetryLater, Undeliverable
from bot.store import OutboxRow

PAGE_KIND = "page"


class PagerTransport:
    """Posts each queued event to the Events API; 429/5xx/unreachable are retried."""

    def __init__(self, client: httpx.AsyncClient, url: str, routing_key: str) -> None:
        self.client = client
        self.url = url
        self.routing_key = routing_key

    async def deliver(
        self, message: OutboxRow, thread_ts: str | None, target_ts: str | None
    ) -> str | None:
        """Send one event; returns PagerDuty's dedup key."""
        try:
            event = json.loads(message.text)
        except ValueError as exc:
            raise Undeliverable(f"the queued PagerDuty event is not JSON: {exc}") from None
        event["routing_key"] = self.routing_key
        try:
            response = await self.client.post(self.url, json=event, timeout=10.0)
        except httpx.HTTPError as exc:
            raise RetryLater(f"PagerDuty unreachable: {type(exc).__name__}") from None
        if response.status_code == 429 or response.status_code >= 500:
            after = response.headers.get("retry-after")
            raise RetryLater(
                f"PagerDuty answered HTTP {response.status_code}",
                float(after) if after and after.isdigit() else None,
            )
        if response.status_code >= 400:
            raise Undeliverable(
                f"PagerDuty refused the event (HTTP {response.status_code}): {response.text[:200]}"
            )
        try:
            answer = response.json()
        except ValueError:
            return str(event.get("dedup_key"))
        return str(answer.get("dedup_key") or event.get("dedup_key"))
