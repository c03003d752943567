"""The shape every `/golive` subcommand shares: usage, permission, a handler returning a reply."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from bot.domain.errors import UsageError
from bot.domain.rules import PERMISSIONS, Holder
from bot.engine.service import ReleaseService
from bot.render.fmt import code


class Directory(Protocol):
    """Finds the Slack user id behind a plain `@name`."""

    def resolve(self, name: str) -> str | None:
        """The user id for a display or user name, if known."""
        ...


class MappingDirectory:
    """A directory backed by a fixed name → id mapping (the config's `users:`)."""

    def __init__(self, users: Mapping[str, str]) -> None:
        self._users = {k.lower(): v for k, v in users.items()}

    def resolve(self, name: str) -> str | None:
        """The id configured for that name."""
        return self._users.get(name.lower())


@dataclass(frozen=True)
class Invocation:
    """One call of a subcommand: who, where, and the words after the subcommand."""

    service: ReleaseService
    user: str
    channel: str
    args: list[str]
    rest: str
    directory: Directory
    sent_at: datetime | None = None  # when the person sent it (Slack), for "the step pending then"
    asked: Any = None  # what the command's `ask` step learnt from a provider


@dataclass(frozen=True)
class Reply:
    """What the caller sees (ephemeral unless `public`)."""

    text: str
    public: bool = False


@dataclass(frozen=True)
class Command:
    """A subcommand: its name, usage line, one-line summary, the runbook event it causes (whose
    permission the runbook's rules decide; None when anyone may), its handler, whether it
    only reads (answered afresh every time, even while the database cannot be written), and
    what it must first ask a provider or Slack's directory (`ask`, a coroutine run on the
    event loop before `run`, whose answer `run` finds in `Invocation.asked`)."""

    name: str
    usage: str
    summary: str
    event: type | None
    run: Callable[[Invocation], Reply]
    reads_only: bool = False
    ask: Callable[[Invocation], Awaitable[Any]] | None = None

    @property
    def who(self) -> tuple[Holder, ...]:
        """Who may run it, from the runbook's permission table (empty: anyone)."""
        return tuple(PERMISSIONS.get(self.event, ())) if self.event is not None else ()


# How far ahead `at=` may schedule a go-live: a release is planned days, not years, ahead, and a
# bound keeps every later date computation (reminders, T-30, monitoring) far from overflow.
MAX_AHEAD = timedelta(days=30)
# The most text a command takes: Slack shows at most 3,000 characters in a message section
# (and truncates whole messages at 40,000), and a note is echoed to the thread as it was typed.
MAX_TEXT = 3000

_MENTION = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$")
_RAW_ID = re.compile(r"^@?([UW][A-Z0-9]{2,})$")


def unescape(text: str) -> str:
    """Undo Slack's escaping of &, < and > in command text: what is stored is what people typed
    (with Slack's own `<@U…>` mentions); render escapes it again wherever it is shown."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def parse_user(token: str, directory: Directory) -> str:
    """A user id from `<@U123|name>`, `<@U123>`, `@U123`, `U123` or a known `@name`."""
    token = token.strip()
    found = _MENTION.match(token) or _RAW_ID.match(token)
    if found:
        return found.group(1)
    if token.startswith("@") and len(token) > 1:
        user = directory.resolve(token[1:])
        if user:
            return user
        raise UsageError(
            f"I don't know who {code(token)} is; mention them with Slack's @-autocomplete so the "
            f"command carries their id"
        )
    raise UsageError(f"{code(token)} is not a user; mention someone like @alice")


def looks_like_user(token: str) -> bool:
    """True for a token written as a mention."""
    return token.startswith("@") or token.startswith("<@")


def parse_time(text: str, tz: ZoneInfo, now: datetime) -> datetime:
    """`14:00` (today, in the configured timezone) or ISO 8601 (`2026-11-28T14:00[+01:00]`),
    at most MAX_AHEAD from now; anything else is a UsageError, never an internal error."""
    value = text.strip()
    if not value.isascii():
        raise UsageError(f"{code(value)} is not a time; write at=14:00 or at=2026-11-28T14:00")
    clock = re.fullmatch(r"([0-9]{1,2}):([0-9]{2})", value)
    if clock:
        hour, minute = int(clock.group(1)), int(clock.group(2))
        if hour > 23 or minute > 59:
            raise UsageError(f"{code(value)} is not a time of day")
        local_now = now.astimezone(tz)
        moment = local_now.replace(hour=hour, minute=minute, second=0, microsecond=0)
        if moment <= local_now:
            tomorrow = (local_now.date() + timedelta(days=1)).isoformat()
            raise UsageError(
                f"{value} has already passed today; give a date, like at={tomorrow}T{value}"
            )
        return moment
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"{code(value)} is not a time; write at=14:00 or at=2026-11-28T14:00"
        ) from None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=tz)
    try:
        ahead = moment.astimezone(UTC) - now
    except OverflowError:  # e.g. 9999-12-31T23:59-14:00 is past the last date Python knows
        raise UsageError(f"{code(value)} is not a time golive can schedule") from None
    if ahead > MAX_AHEAD:
        raise UsageError(
            f"{code(f'at={value}')} is more than {MAX_AHEAD.days} days ahead; "
            f"schedule a go-live at most {MAX_AHEAD.days} days from now"
        )
    return moment


def bounded(text: str, name: str) -> str:
    """The text of a command, refused whole when longer than MAX_TEXT (never cut silently)."""
    if len(text) > MAX_TEXT:
        raise UsageError(
            f"`/golive {name}` takes at most {MAX_TEXT:,} characters and this was "
            f"{len(text):,}; nothing was recorded. Put long output (logs, traces) in a file "
            f"or a document and give its link."
        )
    return text


def no_arguments(inv: Invocation) -> None:
    """Refuse stray words after a subcommand that takes none."""
    if inv.args:
        raise UsageError(f"unexpected {code(' '.join(inv.args))}")


def reason_of(inv: Invocation, what: str) -> str:
    """The free-text reason after a subcommand; required."""
    reason = inv.rest.strip()
    if not reason:
        raise UsageError(f"say why: {what} needs a reason")
    return reason


def subject_and_reason(inv: Invocation, missing: str, why: str) -> tuple[str, str]:
    """The word after a subcommand (a step, a check) and the reason after it, both required:
    `missing` says what to name, `why` (with `{name}`) that a reason is needed."""
    if not inv.args:
        raise UsageError(missing)
    name = inv.args[0]
    reason = inv.rest.strip()[len(name) :].strip()
    if not reason:
        raise UsageError(why.format(name=code(name)))
    return name, reason


def one_step(inv: Invocation, what: str) -> str:
    """The single step a subcommand names (`what`: the usage error without it)."""
    if len(inv.args) != 1:
        raise UsageError(what)
    return inv.args[0]
