"""Every `/golive` subcommand, registered in one place, and the dispatcher that runs them."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime

from bot.domain.errors import GoliveError, UsageError
from bot.engine.service import ReleaseService
from bot.render.fmt import code
from bot.render.refusals import refusal
from bot.store.writer import unwritable
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
    reject,
    retry,
    rollback,
    snooze,
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
        reject.COMMAND,
        snooze.COMMAND,
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


Execute = Callable[[Callable[[], Reply]], Awaitable[Reply]]


async def inline(core: Callable[[], Reply]) -> Reply:
    """Run a command's handler where dispatch runs (the console, tests)."""
    return core()


async def dispatch(
    service: ReleaseService,
    user: str,
    channel: str,
    text: str,
    directory: Directory,
    sent_at: datetime | None = None,
    execute: Execute = inline,
) -> Reply:
    """Run one `/golive …` text as `user` in `channel`; every failure becomes a clear reply.

    `sent_at`: when the person sent it, where known (Slack), so that a command refers to the
    state they saw rather than to whatever an earlier command of theirs left behind.
    `execute` runs the handler once what it must ask (`Command.ask`) is answered: inline, or as
    one unit of work on the database's writer (the Slack app, which records the reply with it).
    A database that cannot be written is not a refusal: its error reaches the caller."""
    name, rest = _split(text)
    if not name:
        return Reply(help.help_text(COMMANDS))
    command = COMMANDS.get(name)
    if command is None:
        return Reply(f"I don't know {code(name)}.\n" + help.help_text(COMMANDS))
    try:
        if command.event is not None:
            service.authorize(channel, user, command.event)
        invocation = Invocation(
            service, user, channel, rest.split(), bounded(rest, name), directory, sent_at
        )
        if command.ask is not None:
            invocation = replace(invocation, asked=await command.ask(invocation))
        return await execute(lambda: command.run(invocation))
    except UsageError as exc:
        return Reply(f"{refusal(exc)}\nUsage: {code(command.usage)}")
    except GoliveError as exc:
        return Reply(refusal(exc))
    except Exception as exc:
        if unwritable(exc):
            raise
        log.exception("/golive %s failed", name)
        return Reply(
            f"golive hit an internal error while handling {code('/golive ' + name)} "
            f"(it is logged). Check `/golive status` before trying again."
        )
