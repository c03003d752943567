"""`POST /github/webhook`: GitHub tells golive at once of new pull requests and pushes.

Nothing in a delivery is trusted before it is checked: the body is bounded, its
`X-Hub-Signature-256` must be the HMAC-SHA256 of the raw body with the secret named by
`preconditions.ci.webhook_secret_env` (compared in constant time), and it must be about the
configured repository. A refused delivery changes nothing. Each delivery is recognised by
`X-GitHub-Delivery`, so a redelivery is answered but not judged twice. A `pull_request` that was
opened, reopened, pushed to, marked ready or moved onto the frozen branch is handed to the merge
gate, which sets its status at once; every other event is acknowledged and ignored.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web

from bot.engine.runtime import Runtime
from bot.store.writer import reason, unwritable
from checks.freeze import pull_event, repository_of, signature_ok

log = logging.getLogger(__name__)

PATH = "/github/webhook"
MAX_BODY = 2 * 1024 * 1024  # a pull_request payload with the longest body GitHub allows fits
MAX_DELIVERY_ID = 100
_CHUNK = 64 * 1024


def _answer(status: int, **body: Any) -> web.Response:
    return web.json_response({"ok": status < 400, **body}, status=status)


async def _bounded_body(request: web.Request) -> bytes | None:
    """The raw body, or None when it is larger than MAX_BODY (read no further than that)."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        return None
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.read(_CHUNK)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)


class GitHubWebhook:
    """The aiohttp handler for GitHub's webhook deliveries."""

    def __init__(self, runtime: Runtime, secret: str | None) -> None:
        self.runtime = runtime
        self.secret = secret if secret and secret.strip() else None

    async def receive(self, request: web.Request) -> web.Response:
        """Check a delivery and hand what it says to the merge gate."""
        ci = self.runtime.config.preconditions.ci
        if self.secret is None or ci is None or not ci.freeze_branch:
            return _answer(
                404,
                error="the GitHub webhook is not set up here: golive needs "
                "preconditions.ci.freeze_branch and preconditions.ci.webhook_secret_env",
            )
        body = await _bounded_body(request)
        if body is None:
            return _answer(413, error=f"a delivery may be at most {MAX_BODY:,} bytes")
        if not signature_ok(self.secret, body, request.headers.get("X-Hub-Signature-256")):
            log.warning("GitHub webhook: refused a delivery with a missing or wrong signature")
            return _answer(401, error="X-Hub-Signature-256 is missing or does not match")
        event = request.headers.get("X-GitHub-Event", "")
        delivery = request.headers.get("X-GitHub-Delivery", "")
        if not event or not delivery or len(delivery) > MAX_DELIVERY_ID:
            return _answer(400, error="X-GitHub-Event and X-GitHub-Delivery are required")
        if request.content_type != "application/json":
            return _answer(
                415, error="set the webhook's content type to application/json in GitHub"
            )
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return _answer(400, error="the delivery is not JSON")
        if not isinstance(payload, dict):
            return _answer(400, error="the delivery is not a JSON object")
        repository = repository_of(payload)
        if repository is not None and repository.lower() != ci.repository.lower():
            log.warning("GitHub webhook: refused a delivery about %s", repository[:100])
            return _answer(403, error=f"golive gates {ci.repository} only")
        store, now = self.runtime.store, self.runtime.clock.now()
        key = f"github:delivery:{delivery}"
        try:
            first = await store.writes.run(lambda: store.first_delivery(key, now), urgent=True)
        except Exception as exc:
            if not unwritable(exc):
                raise
            log.error("GitHub webhook: the delivery could not be recorded: %s", reason(exc))
            return _answer(503, error="golive cannot write its database now; the sweep catches up")
        if not first:
            return _answer(200, duplicate=True)
        if event == "ping":
            return _answer(200, pong=True)
        if event != "pull_request":
            return _answer(200, ignored=f"golive does not act on {event[:50]} events")
        head = pull_event(payload, ci.freeze_branch)
        if head is None:
            return _answer(200, ignored="this pull_request delivery does not change the gate")
        log.info("GitHub webhook: #%d has head %s; judging it now", head.number, head.sha[:7])
        self.runtime.freeze.pull_changed(head)
        return _answer(202, queued=head.number, sha=head.sha)
