"""Every `/golive` subcommand, registered in one place, and the dispatcher that runs them."""

from __future__ import annotations

import logging
from datetime import datetime

from bot.domain.errors import GoliveError, UsageError
from bot.engine.service import ReleaseService
from bot.render.refusals import refusal
from commands import (
    abort,
    approve,
    complete,
    followup,
    handover,
    help,
    history,
    note,
    preflight,
    retry,
    rollback,
    start,
    status,
    unfreeze,
    waive,
)
from commands.base import (
    Command,
    Directory,
    Invocation,
    MappingDirectory,
    Reply,
    bounded,
    unescape,
)

log = logging.getLogger(__name__)

COMMANDS: dict[str, Command] = {
    c.name: c
    for c in (
        start.COMMAND,
        status.COMMAND,
        approve.COMMAND,
        waive.COMMAND,
        retry.COMMAND,
        preflight.COMMAND,
        note.COMMAND,
        followup.COMMAND,
        handover.COMMAND,
        rollback.COMMAND,
        abort.COMMAND,
        complete.COMMAND,
        unfreeze.COMMAND,
        history.COMMAND,
        help.COMMAND,
    )
}

__all__ = [
    "COMMANDS",
    "Command",
    "Directory",
    "MappingDirectory",
    "Reply",
    "changes_state",
    "dispatch",
]


def _split(text: str) -> tuple[str, str]:
    """The subcommand's name (lower case) and the text after it."""
    body = unescape(text or "").strip()
    if body.lower().startswith("/golive"):
        body = body[len("/golive") :].strip()
    name, _, rest = body.partition(" ")
    return name.lower(), rest


def changes_state(text: str) -> bool:
    """True when the text names a subcommand that may change something (not status, history,
    help, nor an unknown word answered with usage)."""
    command = COMMANDS.get(_split(text)[0])
    return command is not None and not command.reads_only


def dispatch(
    service: ReleaseService,
    user: str,
    channel: str,
    text: str,
    directory: Directory,
    sent_at: datetime | None = None,
) -> Reply:
    """Run one `/golive …` text as `user` in `channel`; every failure becomes a clear reply.

    `sent_at`: when the person sent it, where known (Slack), so that a command refers to the
    state they saw rather than to whatever an earlier command of theirs left behind."""
    name, rest = _split(text)
    if not name:
        return Reply(help.help_text(COMMANDS))
    command = COMMANDS.get(name)
    if command is None:
        return Reply(f"I don't know `{name}`.\n" + help.help_text(COMMANDS))
    try:
        if command.event is not None:
            service.authorize(channel, user, command.event)
        invocation = Invocation(
            service, user, channel, rest.split(), bounded(rest, name), directory, sent_at
        )
        return command.run(invocation)
    except UsageError as exc:
        return Reply(f"{refusal(exc)}\nUsage: `{command.usage}`")
    except GoliveError as exc:
        return Reply(refusal(exc))
    except Exception:
        log.exception("/golive %s failed", name)
        return Reply(
            f"golive hit an internal error while handling `/golive {name}` (it is logged). "
            f"Check `/golive status` before trying again."
        )
