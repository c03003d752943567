"""The console: a terminal chat that drives the same engine with no Slack.

Type `/golive …` as the current user, react with `+:white_check_mark: m12`, switch user with
`/as U0BACKEND`. Every message the bot sends is printed with its id (`m12`), so a release can be
rehearsed end to end before anyone trusts the bot in a real channel.
"""

from __future__ import annotations

import asyncio
import base64
import re
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from bot.domain.config import Config
from bot.engine.runtime import Runtime
from bot.render.fmt import MESSAGE_LINK
from bot.store import OutboxRow
from commands import MappingDirectory, dispatch
from commands.base import parse_user

Write = Callable[[str], None]

_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
_CHANNEL = re.compile(r"<#([CGD][A-Z0-9]+)(?:\|[^>]*)?>")
_LINK = re.compile(r"<([a-z][a-z0-9+.-]*:[^<>|]*)\|([^<>]*)>")

CONSOLE_HELP = """\
Console commands:
  /golive <subcommand> …      run a golive command as the current user (try /golive help)
  +:white_check_mark: m12     react to message m12 (approve a step you own)
  /as U0BACKEND               act as another user (an id, or a name from `users:` in the config)
  /channel C0RELEASE1         act in another channel
  /who                        who and where you are
  /quit                       leave (state stays in the database)"""


def plain(text: str, names: dict[str, str] | None = None) -> str:
    """Slack markup made readable in a terminal: mentions become @names, links show their
    target, and the escaped `&amp;` `&lt;` `&gt;` the characters they stand for."""
    names = names or {}
    text = MESSAGE_LINK.sub(lambda m: f"{m.group(3)} ({m.group(2)})", text)  # (m12): its id
    text = _MENTION.sub(lambda m: "@" + names.get(m.group(1), m.group(1)), text)
    text = _CHANNEL.sub(lambda m: "#" + m.group(1), text)
    text = _LINK.sub(lambda m: _link_text(m.group(1), m.group(2)), text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _link_text(target: str, label: str) -> str:
    return target if label in ("", target) else f"{label} ({target})"


class ConsoleTransport:
    """Delivers outbox messages by printing them; a message's id is its timestamp."""

    def __init__(
        self, write: Write, names: dict[str, str] | None = None, files_dir: Path | None = None
    ) -> None:
        self.write = write
        self.names = names or {}
        self.files_dir = files_dir
        self._cards: dict[str, str] = {}  # card id → the summary printed last

    async def deliver(
        self, message: OutboxRow, thread_ts: str | None, target_ts: str | None
    ) -> str | None:
        """Print one message."""
        text = plain(message.text, self.names)
        if message.kind == "update":
            if message.step_key is None and message.thread_of is None:
                first = text.splitlines()[0] if text else ""
                rest = [
                    line
                    for line in text.splitlines()[1:]
                    if line.startswith(("Now", "Soak", "Every", "Waiting", "Reason"))
                ]
                summary = " · ".join([first, *rest])
                if self._cards.get(str(target_ts)) != summary:  # sparkline-only edits stay quiet
                    self._cards[str(target_ts)] = summary
                    self.write(f"[card {target_ts} updated] {summary}")
            else:
                self.write(f"[{target_ts} updated] {text}")
            return target_ts
        if message.kind == "ephemeral":
            who = self.names.get(message.user or "", message.user or "")
            self.write(f"[only @{who} sees this] {text}")
            return None
        if message.kind == "dm":
            who = self.names.get(message.user or "", message.user or "")
            self.write(f"[direct message to @{who}] {text}")
            return None
        if message.kind == "home":
            return None  # the console has no App Home; /golive status says the same
        ts = f"m{message.id}"
        if message.kind == "file":
            self.write(f"[{ts}] #{message.channel} golive: {text} — {self._save(message)}")
            return ts
        where = f"#{message.channel}" + (f" ↳{thread_ts}" if thread_ts else "")
        self.write(f"[{ts}] {where} golive: {text}")
        return ts

    def _save(self, message: OutboxRow) -> str:
        """Write an attached file where the person can open it; say where."""
        file = message.file or {}
        name = re.sub(r"[^A-Za-z0-9._-]", "_", str(file.get("filename") or f"m{message.id}"))
        if self.files_dir is None:
            return f"{name} (not saved; `golive report` prints records)"
        if "content_b64" in file:
            data = base64.b64decode(str(file["content_b64"]))
        else:
            data = str(file.get("content", "")).encode("utf-8")
        self.files_dir.mkdir(parents=True, exist_ok=True)
        path = self.files_dir / name
        path.write_bytes(data)
        return f"saved to {path}"


class ConsoleSession:
    """Turns typed lines into commands, reactions and user switches."""

    def __init__(
        self, runtime: Runtime, config: Config, user: str, write: Write, channel: str | None = None
    ) -> None:
        self.runtime = runtime
        self.config = config
        self.user = user
        self.channel = channel or config.slack.release_channels[0]
        self.write = write
        self.directory = MappingDirectory(config.users)
        self.names = {v: k for k, v in config.users.items()}

    def _name(self, user: str) -> str:
        return f"@{self.names.get(user, user)}"

    async def handle(self, line: str) -> bool:
        """Process one typed line; False when the user wants to leave."""
        line = line.strip()
        if not line:
            return True
        if line in ("/quit", "/exit"):
            return False
        if line.startswith("/golive"):
            reply = await dispatch(
                self.runtime.service, self.user, self.channel, line, self.directory
            )
            self.write(f"[only {self._name(self.user)} sees this] {plain(reply.text, self.names)}")
        elif line.startswith("+"):
            self._react(line)
        elif line.startswith("/as"):
            self._switch_user(line[3:].strip())
        elif line.startswith("/channel"):
            self.channel = line[len("/channel") :].strip().lstrip("#") or self.channel
            self.write(f"(now in #{self.channel})")
        elif line == "/who":
            self.write(f"(you are {self._name(self.user)} in #{self.channel})")
        else:
            self.write(CONSOLE_HELP)
        await self.runtime.pump()
        return True

    def _react(self, line: str) -> None:
        match = re.fullmatch(r"\+:?([a-z0-9_+\-']+):?\s+m?(\d+)", line)
        if not match:
            self.write("react like this: +:white_check_mark: m12")
            return
        reaction, message_id = match.group(1), int(match.group(2))
        message = self.runtime.store.message(message_id)
        if message is None:
            self.write(f"(there is no message m{message_id})")
            return
        outcome = self.runtime.service.react(message, self.user, reaction, via="console")
        if outcome is None:
            self.write(f"({self._name(self.user)} reacted :{reaction}: to m{message_id})")

    def _switch_user(self, who: str) -> None:
        if who and not who.startswith(("@", "<")):
            who = "@" + who
        try:
            self.user = parse_user(who, self.directory)
        except Exception as exc:  # a bad name is a message, not a crash
            self.write(f"({exc})")
            return
        self.write(f"(you are now {self._name(self.user)})")


async def run_console(
    runtime: Runtime, config: Config, user: str, write: Write = print, banner: str | None = None
) -> None:
    """Read lines from standard input until EOF or /quit."""
    session = ConsoleSession(runtime, config, user, write)
    await runtime.start()
    write(
        banner
        or f"golive console — you are {session._name(user)} in #{session.channel}. "
        "Type /golive help, or /help for console commands."
    )
    try:
        await read_stdin(session.handle)
    finally:
        await runtime.stop()


async def read_stdin(handle: Callable[[str], Awaitable[bool]]) -> None:
    """Feed typed lines to `handle` until end of input or until it says to stop."""
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line or not await handle(line):
            return
