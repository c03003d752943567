"""The small pieces every message is made of: mentions, times, Block Kit sections, titles."""

from __future__ import annotations

from collections.abc import Mapping
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


def mention(user: str | None) -> str:
    """Slack's mention syntax for a user id."""
    return f"<@{user}>" if user else "nobody"


def escape(text: str) -> str:
    """Text golive did not write (a provider's title), made inert for Slack mrkdwn."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def when(moment: datetime | None, tz: ZoneInfo) -> str:
    """A time as people in the configured timezone read it."""
    if moment is None:
        return "—"
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")


def clock_time(moment: datetime, tz: ZoneInfo) -> str:
    """Just the hour and minute in the configured timezone."""
    return moment.astimezone(tz).strftime("%H:%M %Z")


def section(text: str) -> dict[str, Any]:
    """A Block Kit mrkdwn section (Slack caps its text at 3,000 characters)."""
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}


def context(text: str) -> dict[str, Any]:
    """A Block Kit context line (small grey text)."""
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text[:3000]}]}


STATUS_TITLES: Mapping[ReleaseStatus, str] = {
    ReleaseStatus.SCHEDULED: "scheduled",
    ReleaseStatus.ACTIVE: "in progress",
    ReleaseStatus.COMPLETED: "completed",
    ReleaseStatus.ABORTED: "aborted",
    ReleaseStatus.ROLLED_BACK: "rolled back",
}
