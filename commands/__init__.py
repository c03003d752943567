"""Every `/golive` subcommand, registered in one place, and the dispatcher that runs them."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.domain.errors import GoliveError, UsageError
from bot.engine.service import ReleaseService
from bot.render.refusals import refusal
from commands import (
    abort,
    approve,
    complete,
    followup,
    freeze,
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
        freeze.COMMAND,
        history.COMMAND,
        help.COMMAND,
    )
}

__all__ = [
    "COMMANDS",
    "Asked",
    "Command",
    "Directory",
    "MappingDirectory",
    "Reply",
    "ask",
    "changes_state",
    "dispatch",
    "handle",
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


@dataclass(frozen=True)
class Asked:
    """What a subcommand's `ask` step learnt from a provider, or the reply that ends it there."""

    answer: Any = None
    reply: Reply | None = None


async def ask(
    service: ReleaseService, user: str, channel: str, text: str, directory: Directory
) -> Asked:
    """Run a subcommand's `ask` step on the event loop (a provider's answer it needs before it
    may change anything); nothing to ask for most subcommands."""
    name, rest = _split(text)
    command = COMMANDS.get(name)
    if command is None or command.ask is None:
        return Asked()
    try:
        if command.event is not None:
            service.authorize(channel, user, command.event)
        invocation = Invocation(
            service, user, channel, rest.split(), bounded(rest, name), directory
        )
        return Asked(answer=await command.ask(invocation))
    except Exception as exc:
        return Asked(reply=_failed(command, exc))


def dispatch(
    service: ReleaseService,
    user: str,
    channel: str,
    text: str,
    directory: Directory,
    sent_at: datetime | None = None,
    asked: Any = None,
) -> Reply:
    """Run one `/golive …` text as `user` in `channel`; every failure becomes a clear reply.

    `sent_at`: when the person sent it, where known (Slack), so that a command refers to the
    state they saw rather than to whatever an earlier command of theirs left behind. `asked`:
    what its `ask` step learnt (see `ask`)."""
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
            service, user, channel, rest.split(), bounded(rest, name), directory, sent_at, asked
        )
        return command.run(invocation)
    except Exception as exc:
        return _failed(command, exc)


async def handle(
    service: ReleaseService, user: str, channel: str, text: str, directory: Directory
) -> Reply:
    """`ask`, then `dispatch`: one subcommand run where nothing else stands between them (the
    console, tests)."""
    asked = await ask(service, user, channel, text, directory)
    if asked.reply is not None:
        return asked.reply
    return dispatch(service, user, channel, text, directory, asked=asked.answer)


def _failed(command: Command, exc: Exception) -> Reply:
    """The reply to a subcommand that failed: usage help, a refusal, or an internal error."""
    if isinstance(exc, UsageError):
        return Reply(f"{refusal(exc)}\nUsage: `{command.usage}`")
    if isinstance(exc, GoliveError):
        return Reply(refusal(exc))
    log.error("/golive %s failed", command.name, exc_info=exc)
    return Reply(
        f"golive hit an internal error while handling `/golive {command.name}` (it is logged). "
        f"Check `/golive status` before trying again."
    )
