"""Every `/golive` subcommand, registered in one place, and the dispatcher that runs them."""

from __future__ import annotations

import logging

from bot.errors import GoliveError, NotAllowed, UsageError
from bot.render import mention
from bot.service import ReleaseService
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
    Who,
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

__all__ = ["COMMANDS", "Command", "Directory", "MappingDirectory", "Reply", "dispatch"]


def _authorize(command: Command, service: ReleaseService, user: str, channel: str) -> None:
    if command.who is Who.ANYONE:
        return
    record = service.require_current(channel)
    roles = record.release.roles
    holder = roles.commander if command.who is Who.COMMANDER else roles.on_call
    if user != holder:
        title = "the commander" if command.who is Who.COMMANDER else "on-call"
        raise NotAllowed(f"only {title} ({mention(holder)}) can {command.name} this release")


def dispatch(
    service: ReleaseService, user: str, channel: str, text: str, directory: Directory
) -> Reply:
    """Run one `/golive …` text as `user` in `channel`; every failure becomes a clear reply."""
    body = unescape(text or "").strip()
    if body.lower().startswith("/golive"):
        body = body[len("/golive") :].strip()
    name, _, rest = body.partition(" ")
    name = name.lower()
    if not name:
        return Reply(help.help_text(COMMANDS))
    command = COMMANDS.get(name)
    if command is None:
        return Reply(f"I don't know `{name}`.\n" + help.help_text(COMMANDS))
    try:
        invocation = Invocation(
            service, user, channel, rest.split(), bounded(rest, name), directory
        )
        _authorize(command, service, user, channel)
        return command.run(invocation)
    except UsageError as exc:
        return Reply(f"{exc.message}\nUsage: `{command.usage}`")
    except GoliveError as exc:
        return Reply(exc.message)
    except Exception:
        log.exception("/golive %s failed", name)
        return Reply(
            f"golive hit an internal error while handling `/golive {name}` (it is logged). "
            f"Check `/golive status` before trying again."
        )
