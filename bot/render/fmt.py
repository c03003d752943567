"""The small pieces every message is made of: mentions, times, Block Kit sections, titles.

Slack reads `&`, `<` and `>` as control characters in message text, in Block Kit mrkdwn and even
inside code spans: `<!channel>` notifies a whole channel and `<https://x|click>` shows a link
whose target is hidden. Every piece of text golive did not write itself (provider answers, check
evidence, URLs, preflight output, what people type) goes through `esc`, `echo`, `code` or
`code_block` here before it is put into a message; the mentions and links golive means come
from `mention` and `link`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.domain.model import ReleaseStatus

Blocks = list[dict[str, Any]]


@dataclass(frozen=True)
class Rendered:
    """A message's notification text and optional blocks."""

    text: str
    blocks: Blocks | None = None


_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")
# What people type arrives with Slack's own markup: <@U…|name>, <#C…|name>, <https://…|label>,
# <!channel>. Only the first two survive an echo (see `echo`).
_MARKUP = re.compile(r"<([^<>]*)>")
_FENCE = "```"


def esc(text: object) -> str:
    """Text made inert for Slack mrkdwn: `&`, `<` and `>` become entities (Slack shows them as
    the characters; nothing in them notifies, links or formats)."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def code(text: object) -> str:
    """Inline code around foreign text (escaped: Slack parses `<!channel>` in code spans too)."""
    inner = esc(text).replace("`", "'")
    return f"`{inner}`" if inner else "`(empty)`"


def code_block(text: object) -> str:
    """A preformatted block around foreign text; a fence inside cannot close it early."""
    inner = esc(text).replace(_FENCE, "`\u200b``")
    return f"{_FENCE}\n{inner}\n{_FENCE}"


def link(url: str, label: str) -> str:
    """A link golive makes itself: `<url|label>`, each part escaped so neither can end it."""
    target = esc(url.strip()).replace("|", "%7C")
    return f"<{target}|{esc(label).replace('|', '¦')}>"


def echo(text: str) -> str:
    """What a person typed, shown back in a channel.

    Everything is escaped except the user and channel mentions Slack's autocomplete put in
    (`<@U123|bob>`, `<#C123|release>`): those stay live, because the person could have written
    them in the channel themselves. Broadcasts (`<!channel>`, `<!here>`, `<!everyone>`,
    `<!subteam^…>`) are shown as text — people who may not notify a whole channel must not be
    able to make golive do it for them — and a typed link shows where it goes.
    """
    out: list[str] = []
    last = 0
    for found in _MARKUP.finditer(text):
        out.append(esc(text[last : found.start()]))
        out.append(_echo_markup(found.group(1)))
        last = found.end()
    out.append(esc(text[last:]))
    return "".join(out)


def _echo_markup(inner: str) -> str:
    target, _, label = inner.partition("|")
    if target.startswith("@") and _USER_ID.match(target[1:]):
        return f"<{target}>"
    if target.startswith("#") and _CHANNEL_ID.match(target[1:]):
        return f"<{target}>"
    if re.match(r"^(?:https?|mailto):", target):
        shown = target if not label or label == target else f"{label} ({target})"
        return esc(shown)
    return esc(f"<{inner}>")


def mention(user: str | None) -> str:
    """Slack's mention syntax for a user id (anything that is not a user id is shown as text)."""
    if not user:
        return "nobody"
    return f"<@{user}>" if _USER_ID.match(user) else code(user)


def channel_ref(channel: str) -> str:
    """Slack's link to a channel id."""
    return f"<#{channel}>" if _CHANNEL_ID.match(channel) else code(channel)


def when(moment: datetime | None, tz: ZoneInfo) -> str:
    """A time as people in the configured timezone read it."""
    if moment is None:
        return "—"
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")


def clock_time(moment: datetime, tz: ZoneInfo) -> str:
    """Just the hour and minute in the configured timezone."""
    return moment.astimezone(tz).strftime("%H:%M %Z")


def clip(text: str, limit: int) -> str:
    """At most `limit` characters of mrkdwn, never ending inside an entity or a `<…>` sequence
    (half of `&amp;` or of `<@U123>` would show as garbage or swallow what follows)."""
    if len(text) <= limit:
        return text
    cut = text[:limit]
    opened = cut.rfind("<")
    if opened > cut.rfind(">"):
        cut = cut[:opened]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut


def section(text: str) -> dict[str, Any]:
    """A Block Kit mrkdwn section (Slack caps its text at 3,000 characters)."""
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, 3000)}}


def context(text: str) -> dict[str, Any]:
    """A Block Kit context line (small grey text)."""
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": clip(text, 3000)}]}


STATUS_TITLES: Mapping[ReleaseStatus, str] = {
    ReleaseStatus.SCHEDULED: "scheduled",
    ReleaseStatus.ACTIVE: "in progress",
    ReleaseStatus.COMPLETED: "completed",
    ReleaseStatus.ABORTED: "aborted",
    ReleaseStatus.ROLLED_BACK: "rolled back",
}


# Links to golive's own messages, written before Slack has given the message a permalink: a
# row of the outbox (resolved by the engine once that row is delivered) and a delivered message
# (resolved by the transport: chat.getPermalink in Slack, the message's id in the console).
ROW_LINK = re.compile(r"<golive-row:(\d+)\|([^<>|]*)>")
MESSAGE_LINK = re.compile(r"<golive-message:([A-Za-z0-9]+)/([^<>|/]+)\|([^<>|]*)>")


def row_link(row_id: int, label: str) -> str:
    """A link to the message an outbox row becomes, once it has been delivered."""
    return f"<golive-row:{row_id}|{esc(label).replace('|', '¦')}>"


def message_link(channel: str, ts: str, label: str) -> str:
    """A link to a delivered message of golive's (its permalink is looked up on delivery)."""
    return f"<golive-message:{channel}/{ts}|{label}>"


def map_text(value: Any, change: Callable[[str], str]) -> Any:
    """Every string in a message's text or Block Kit JSON, changed by `change`."""
    if isinstance(value, str):
        return change(value)
    if isinstance(value, list):
        return [map_text(v, change) for v in value]
    if isinstance(value, dict):
        return {k: map_text(v, change) for k, v in value.items()}
    return value
