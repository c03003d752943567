"""Outbox delivery through Slack's Web API: the Slack sibling of the console's printer.

The outbox owns retries, so the client's own retry handlers are off and every failure is sorted
here into "try again later" (`RetryLater`) or "never" (`Undeliverable`).
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
from collections.abc import Mapping
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.engine.outbox import RetryLater, Undeliverable
from bot.render.fmt import MESSAGE_LINK, esc, map_text
from bot.store import OutboxRow

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://slack.com/api/"
TIMEOUT = 10.0  # seconds for one Web API call; the outbox retries what times out
POST_KINDS = frozenset(
    {"card", "thread", "approval", "reminder", "confirm", "channel", "announce"}
)
# chat.getPermalink answers these for a message that is gone: the link shows as plain text.
GONE = frozenset({"message_not_found", "channel_not_found"})
PERMALINKS_KEPT = 2000  # permalinks never change; this many are remembered

# The token is wrong, revoked or lacks a scope: every message would fail the same way, and a
# person can fix it (new token, reinstall) without losing anything. So hold and retry, loudly.
AUTH_ERRORS = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "token_revoked",
        "token_expired",
        "account_inactive",
        "missing_scope",
        "no_permission",
        "ekm_access_denied",
    }
)
# The bot is not a member of the channel: inviting it fixes this, and dropping the release card
# would leave the release without its card for good. Hold and retry, loudly.
INVITE_ERRORS = frozenset({"not_in_channel"})
# Slack's own passing troubles, reported with HTTP 200 and ok=false.
TRANSIENT_ERRORS = frozenset(
    {
        "ratelimited",
        "rate_limited",
        "internal_error",
        "fatal_error",
        "service_unavailable",
        "request_timeout",
        "team_added_to_org",
    }
)
BLOCK_ERRORS = frozenset({"invalid_blocks", "invalid_blocks_format"})
HOLD_SECONDS = 60.0  # retry interval while a person has to fix the token or invite the bot


def api_url(value: str | None) -> str:
    """The Web API base URL (`SLACK_API_URL`, e.g. GovSlack or a fake), ending in a slash."""
    url = (value or DEFAULT_API_URL).strip()
    return url if url.endswith("/") else url + "/"


def make_client(
    token: str | None, base_url: str | None = None, session: aiohttp.ClientSession | None = None
) -> AsyncWebClient:
    """An AsyncWebClient with no retry handlers of its own (the outbox retries)."""
    return AsyncWebClient(
        token=token,
        base_url=api_url(base_url),
        timeout=int(TIMEOUT),
        session=session,
        retry_handlers=[],
    )


def _header(headers: Any, name: str) -> str | None:
    if not headers:
        return None
    for key, value in dict(headers).items():
        if str(key).lower() == name.lower():
            return str(value)
    return None


def _retry_after(headers: Any) -> float | None:
    value = _header(headers, "Retry-After")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        return None


def _error_code(exc: SlackApiError) -> tuple[int, str, Any]:
    response = exc.response
    status = int(getattr(response, "status_code", 0) or 0)
    data = getattr(response, "data", None)
    error = str(data.get("error") or "") if isinstance(data, Mapping) else ""
    return status, error, getattr(response, "headers", None)


def classify(exc: SlackApiError, message: OutboxRow) -> RetryLater | Undeliverable:
    """Sort a failed Web API call into retry-later or give-up."""
    status, error, headers = _error_code(exc)
    where = f"message {message.id} ({message.kind}) to {message.channel}"
    if status == 429 or error in ("ratelimited", "rate_limited"):
        return RetryLater(f"rate limited by Slack (HTTP {status})", _retry_after(headers))
    if status >= 500:
        return RetryLater(f"Slack answered HTTP {status}", _retry_after(headers))
    if error in AUTH_ERRORS:
        log.error(
            "Slack refuses the bot token (%s) for %s: messages are held, not dropped; "
            "check SLACK_BOT_TOKEN and the app's scopes, then they go out in order",
            error,
            where,
        )
        return RetryLater(f"Slack refuses the bot token: {error}", HOLD_SECONDS)
    if error in INVITE_ERRORS:
        log.error(
            "golive is not a member of channel %s (%s): invite the bot (/invite @golive); "
            "its messages are held until then",
            message.channel,
            error,
        )
        return RetryLater(f"the bot is not in {message.channel}: {error}", HOLD_SECONDS)
    if error in TRANSIENT_ERRORS:
        return RetryLater(f"Slack error {error}", _retry_after(headers))
    if status not in (0, 200):
        return RetryLater(f"Slack answered HTTP {status} ({error or 'no error code'})")
    return Undeliverable(f"Slack refused {where}: {error or 'unknown error'}")


class SlackTransport:
    """Delivers outbox rows with chat.postMessage / chat.update / chat.postEphemeral / files."""

    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client
        self._permalinks: dict[tuple[str, str], str | None] = {}

    async def deliver(
        self, message: OutboxRow, thread_ts: str | None, target_ts: str | None
    ) -> str | None:
        """Send one message; return its ts. Raise RetryLater or Undeliverable."""
        try:
            return await self._send(message, thread_ts, target_ts, message.blocks)
        except SlackApiError as exc:
            _, error, _ = _error_code(exc)
            if error in BLOCK_ERRORS and message.blocks:
                # Better the plain text than nothing: it says what to do, reaction included.
                log.error("Slack rejected the blocks of message %s (%s)", message.id, error)
                try:
                    return await self._send(message, thread_ts, target_ts, None)
                except SlackApiError as again:
                    raise classify(again, message) from again
                except Exception as again:
                    raise self._other(again, message) from again
            raise classify(exc, message) from exc
        except (Undeliverable, RetryLater):
            raise
        except Exception as exc:
            raise self._other(exc, message) from exc

    def _other(self, exc: Exception, message: OutboxRow) -> RetryLater | Undeliverable:
        if isinstance(exc, aiohttp.ClientError | TimeoutError | OSError):
            return RetryLater(f"cannot reach Slack: {type(exc).__name__}: {exc}".strip())
        if isinstance(exc, SlackClientError):
            # e.g. the upload step of files_upload_v2 answered non-200
            return RetryLater(f"Slack client error: {exc}")
        log.exception("unexpected error delivering message %s", message.id)
        return RetryLater(f"unexpected {type(exc).__name__}: {exc}")

    async def _send(
        self,
        message: OutboxRow,
        thread_ts: str | None,
        target_ts: str | None,
        blocks: list[dict[str, Any]] | None,
    ) -> str | None:
        kind = message.kind
        if kind in POST_KINDS:
            response = await self.client.chat_postMessage(
                channel=message.channel, text=message.text, blocks=blocks, thread_ts=thread_ts
            )
            return str(response["ts"])
        if kind == "update":
            if not target_ts:
                raise Undeliverable("an update without the message it updates")
            # An empty list clears blocks the earlier version had; omitting them would keep them.
            await self.client.chat_update(
                channel=message.channel, ts=target_ts, text=message.text, blocks=blocks or []
            )
            return target_ts
        if kind == "ephemeral":
            if not message.user:
                raise Undeliverable("an ephemeral message without its user")
            await self.client.chat_postEphemeral(
                channel=message.channel,
                user=message.user,
                text=message.text,
                blocks=blocks,
                thread_ts=thread_ts,
            )
            return None  # an ephemeral message cannot be reacted to or updated
        if kind == "file":
            return await self._upload(message, thread_ts)
        if kind == "dm":
            await self._direct(message, blocks)
            return None  # the message is in the direct conversation, not the release channel
        if kind == "home":
            await self._publish(message, blocks)
            return None
        raise Undeliverable(f"unknown message kind {kind!r}")

    async def _direct(self, message: OutboxRow, blocks: list[dict[str, Any]] | None) -> None:
        """A direct message: conversations.open with the person, then chat.postMessage there,
        its links to golive's messages made permalinks."""
        if not message.user:
            raise Undeliverable("a direct message without its user")
        text, blocks = await self._linked(message.text, blocks)
        opened = await self.client.conversations_open(users=message.user)
        channel = (opened.get("channel") or {}).get("id")
        if not isinstance(channel, str) or not channel:
            raise Undeliverable(f"conversations.open gave no channel for {message.user}")
        await self.client.chat_postMessage(channel=channel, text=text, blocks=blocks)

    async def _publish(self, message: OutboxRow, blocks: list[dict[str, Any]] | None) -> None:
        """A person's App Home tab (views.publish), its links made permalinks."""
        if not message.user:
            raise Undeliverable("an App Home view without its user")
        _, blocks = await self._linked("", blocks)
        await self.client.views_publish(
            user_id=message.user, view={"type": "home", "blocks": blocks or []}
        )

    async def _linked(
        self, text: str, blocks: list[dict[str, Any]] | None
    ) -> tuple[str, list[dict[str, Any]] | None]:
        """Text and blocks with every link to a golive message made its permalink (a message
        that is gone leaves its label as plain text)."""
        wanted = {
            (found.group(1), found.group(2))
            for found in MESSAGE_LINK.finditer(f"{text} {blocks or ''}")
        }
        for channel, ts in wanted - set(self._permalinks):
            self._remember((channel, ts), await self._permalink(channel, ts))

        def swap(found: re.Match[str]) -> str:
            url = self._permalinks.get((found.group(1), found.group(2)))
            return f"<{esc(url)}|{found.group(3)}>" if url else found.group(3)

        def change(value: str) -> str:
            return MESSAGE_LINK.sub(swap, value)

        return change(text), map_text(blocks, change)

    async def _permalink(self, channel: str, ts: str) -> str | None:
        try:
            response = await self.client.chat_getPermalink(channel=channel, message_ts=ts)
        except SlackApiError as exc:
            _, error, _ = _error_code(exc)
            if error in GONE:
                return None
            raise
        link = response.get("permalink")
        return link if isinstance(link, str) and link.startswith("https://") else None

    def _remember(self, key: tuple[str, str], link: str | None) -> None:
        if len(self._permalinks) >= PERMALINKS_KEPT:
            self._permalinks.pop(next(iter(self._permalinks)))
        self._permalinks[key] = link

    async def _upload(self, message: OutboxRow, thread_ts: str | None) -> str | None:
        spec = message.file or {}
        filename = str(spec.get("filename") or "")
        if not filename:
            raise Undeliverable("a file message without a filename")
        content: str | bytes
        if spec.get("content_b64") is not None:
            try:
                content = base64.b64decode(str(spec["content_b64"]), validate=True)
            except (binascii.Error, ValueError) as exc:
                raise Undeliverable(f"file {filename}: content_b64 is not base64") from exc
        elif spec.get("content") is not None:
            content = str(spec["content"])
        else:
            raise Undeliverable(f"file {filename} has no content")
        response = await self.client.files_upload_v2(
            channel=message.channel,
            filename=filename,
            title=str(spec.get("title") or filename),
            content=content,
            initial_comment=message.text or None,
            thread_ts=thread_ts,
        )
        uploaded = response.get("file") or {}
        return str(uploaded.get("id")) if isinstance(uploaded, Mapping) and uploaded else None
