"""The section golive keeps in a GitHub release's notes (runbook §7: "record issues and follow-up
actions in release notes"), and how it is put into a body that people also edit.

The section sits between two HTML comments, invisible on the release page. It is replaced, never
added twice, and nothing outside it changes. Whatever people typed (notes, follow-ups, reasons)
is neutralised before it goes in: `<`, `>` and `&` become entities, so no text can open a
comment, close the section or smuggle HTML; Markdown's inline marks are escaped; `@name` cannot
notify someone on GitHub who was never asked; each entry stays on one line and is bounded.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.domain.config import Config
from bot.domain.records import Approval, Note, ReleaseRecord, TimelineEvent, Waiver
from bot.render.card import shortened_line
from bot.render.fmt import when

MARK_START = "<!-- golive:record -->"
MARK_END = "<!-- /golive:record -->"
TITLE = "Issues and follow-up actions"
ENTRY_LIMIT = 1_000  # characters of one note, follow-up or reason as written into the notes
SECTION_LIMIT = 60_000  # GitHub refuses bodies over 125,000 characters; the rest is the team's
PERIODS = {
    "soak": "the soak",
    "heightened": "heightened monitoring",
    "rollback": "monitoring after the rollback",
}

_SLACK_USER = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
_SLACK_CHANNEL = re.compile(r"<#([CGD][A-Z0-9]+)(?:\|([^>]*))?>")
_SLACK_LINK = re.compile(r"<((?:https?|mailto):[^|>\s]+)(?:\|([^>]*))?>")
_SLACK_SPECIAL = re.compile(r"<!(here|channel|everyone)(?:\|[^>]*)?>")
_MARKDOWN = re.compile(r"([\\`*_\[\]|~])")
_MENTION = re.compile(r"@(?=[A-Za-z0-9])")


class BrokenMarkers(ValueError):
    """The body holds half of golive's markers: someone edited the section; golive won't guess."""


@dataclass(frozen=True)
class Thread:
    """Where the release thread is: a Slack permalink when known, else the channel."""

    channel: str
    permalink: str | None = None


def people(config: Config) -> dict[str, str]:
    """Slack user id → the name the config gives (the console's and `@name`'s names)."""
    return {user: name for name, user in config.users.items()}


def neutral(text: str, names: Mapping[str, str], limit: int = ENTRY_LIMIT) -> str:
    """Someone's text, safe inside the section: one line, no HTML, no mention, bounded."""

    def user(match: re.Match[str]) -> str:
        return names.get(match.group(1), match.group(1))

    text = _SLACK_USER.sub(user, text)
    text = _SLACK_CHANNEL.sub(lambda m: f"#{m.group(2) or m.group(1)}", text)
    text = _SLACK_LINK.sub(
        lambda m: f"{m.group(2)} ({m.group(1)})" if m.group(2) else m.group(1), text
    )
    text = _SLACK_SPECIAL.sub(lambda m: m.group(1), text)
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    text = html.escape(text, quote=False)
    text = _MARKDOWN.sub(r"\\\1", text)
    return _MENTION.sub("@\u200b", text)


def _who(user: str | None, names: Mapping[str, str]) -> str:
    if not user:
        return "unassigned"
    return neutral(names.get(user, user), names, 80)


def _t(value: datetime | None, config: Config) -> str:
    return "—" if value is None else when(value, config.tz)


@dataclass(frozen=True)
class _Alert:
    at: datetime
    signal: str
    period: str
    summary: str
    blind: bool
    ended: datetime | None
    reminders: int


def _alerts(events: Sequence[TimelineEvent]) -> list[_Alert]:
    """Each breach (or blindness) with how it ended, from the timeline's alert events."""
    found: list[_Alert] = []
    openings = {"alert_open": False, "alert_blind": True}
    endings = {"alert_recover": False, "alert_sight": True}
    rows = [e for e in events if e.type.startswith("alert_")]
    for index, event in enumerate(rows):
        kind = event.type
        if kind not in openings:
            continue
        data = event.data
        signal = str(data.get("signal", "?"))
        blind = openings[kind]
        ended, reminders = None, 0
        for later in rows[index + 1 :]:
            if str(later.data.get("signal")) != signal:
                continue
            if later.type == "alert_remind" and not blind:
                reminders += 1
            if endings.get(later.type) is blind:
                ended = later.at
                break
        found.append(
            _Alert(
                at=event.at,
                signal=signal,
                period=str(data.get("period", "monitoring")),
                summary=str(data.get("summary", "")),
                blind=blind,
                ended=ended,
                reminders=reminders,
            )
        )
    return found


def _alert_line(alert: _Alert, closed: bool, config: Config, names: Mapping[str, str]) -> str:
    what = "golive could not read the metrics" if alert.blind else "breach"
    period = PERIODS.get(alert.period, alert.period)
    head = f"{_t(alert.at, config)} — {neutral(alert.signal, names, 40)} {what} during "
    head += f"{neutral(period, names, 60)}: {neutral(alert.summary, names)}"
    if alert.ended is not None:
        took = alert.ended - alert.at
        minutes = max(round(took.total_seconds() / 60), 1)
        back = "metrics back" if alert.blind else "recovered"
        outcome = f"{back} at {_t(alert.ended, config)} (after {minutes} min)"
    elif closed:
        outcome = "still open when monitoring ended"
    else:
        outcome = "still open when this was written"
    if alert.reminders:
        outcome += f"; on-call reminded {alert.reminders} time(s)"
    return f"- {head} — **{outcome}**"


def record_section(
    record: ReleaseRecord,
    config: Config,
    *,
    notes: Sequence[Note],
    waivers: Sequence[Waiver],
    approvals: Sequence[Approval],
    events: Sequence[TimelineEvent],
    thread: Thread,
    now: datetime,
) -> str:
    """The section, markers included: notes, follow-ups (with owners), alerts with their
    figures and outcomes, waivers, manual confirmations and shortened floors, and where the
    release thread is. Final once the release is closed."""
    release = record.release
    names = people(config)
    closed = record.closed_at is not None
    if closed:
        stamp = (
            f"Final: written by golive when heightened monitoring of {release.version} ended "
            f"({_t(record.closed_at, config)})."
        )
    else:
        stamp = (
            f"Written by golive when {release.version} completed ({_t(now, config)}); written "
            f"again, final, when heightened monitoring ends."
        )
    where = (
        f"[the release thread in Slack]({thread.permalink})"
        if thread.permalink
        else f"the thread of the release card in Slack channel {neutral(thread.channel, names)}"
    )
    lines = [f"## {TITLE}", "", f"_{stamp}_ The whole record is in {where}.", ""]
    if record.shortened:
        lines += [f"> {neutral(shortened_line(record.shortened), names)}", ""]
    plain = [n for n in notes if n.kind != "followup"]
    followups = [n for n in notes if n.kind == "followup"]
    lines += ["### Issues and notes", ""]
    lines += [
        f"- {_t(n.at, config)} — {_who(n.user, names)}: {neutral(n.text, names)}" for n in plain
    ] or ["None recorded."]
    lines += ["", "### Follow-up actions", ""]
    lines += [
        f"- {neutral(n.text, names)} — owner: {_who(n.owner, names)} "
        f"(raised by {_who(n.user, names)}, {_t(n.at, config)})"
        for n in followups
    ] or ["None recorded."]
    lines += ["", "### Alerts", ""]
    lines += [_alert_line(a, closed, config, names) for a in _alerts(events)] or [
        "None: no breach, and golive could read the metrics throughout."
        if config.monitoring.prometheus_url
        else "None raised by golive: no metrics source is configured; on-call watched by hand."
    ]
    lines += ["", "### Waivers", ""]
    lines += [
        f"- `{neutral(w.name, names, 80)}` waived by {_who(w.user, names)} "
        f"({_t(w.at, config)}): {neutral(w.reason, names)}"
        for w in waivers
    ] or ["None."]
    titles = {s.key: s.title for s in release.steps}
    manual = [a for a in approvals if a.outcome == "manual"]
    lines += ["", "### Confirmed by hand (no automated check)", ""]
    lines += [
        f"- {neutral(titles.get(a.step_key, a.step_key), names, 80)}: "
        f"{_who(a.user, names)} at {_t(a.at, config)}"
        for a in manual
    ] or ["None."]
    return _bounded(lines)


def _bounded(lines: list[str]) -> str:
    """The section between its markers, cut (whole lines, said so) to SECTION_LIMIT."""
    cut = "- … the rest is in the record in the release thread."
    kept: list[str] = []
    size = len(MARK_START) + len(MARK_END) + len(cut) + 4
    for line in lines:
        size += len(line) + 1
        if size > SECTION_LIMIT:
            kept.append(cut)
            break
        kept.append(line)
    content = "\n".join(kept)
    assert "<!--" not in content and "-->" not in content  # neutral() escapes every `<` and `>`
    return f"{MARK_START}\n{content}\n{MARK_END}"


def splice(body: str | None, section: str) -> str:
    """The body with golive's section replaced (or, the first time, appended); every character
    outside the markers stays as it was. A second copy of the section is removed."""
    text = body or ""
    start = text.find(MARK_START)
    if start == -1:
        if MARK_END in text:
            raise BrokenMarkers(
                "the release body holds golive's end marker without its start marker"
            )
        if not text:
            return f"{section}\n"
        separator = "\n" if text.endswith("\n") else "\n\n"
        return f"{text}{separator}{section}\n"
    end = text.find(MARK_END, start)
    if end == -1:
        raise BrokenMarkers("the release body holds golive's start marker without its end marker")
    head, tail = text[:start], text[end + len(MARK_END) :]
    while (again := tail.find(MARK_START)) != -1:
        close = tail.find(MARK_END, again)
        if close == -1:
            raise BrokenMarkers("the release body holds a second, unfinished golive section")
        tail = tail[:again] + tail[close + len(MARK_END) :]
    return f"{head}{section}{tail}"
