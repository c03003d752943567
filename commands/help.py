"""`/golive help [subcommand]`: what golive can do."""

from __future__ import annotations

from bot.render.fmt import code
from bot.render.refusals import who_may
from commands.base import Command, Invocation, Reply


def help_text(commands: dict[str, Command], only: str | None = None) -> str:
    """Usage of every subcommand (or of one)."""
    if only and only in commands:
        c = commands[only]
        who = f" ({who_may(c.who)})" if c.who else ""
        return f"{code(c.usage)}\n{c.summary}{who}"
    lines = ["*golive* runs the go-live runbook with you. Subcommands:"]
    for c in commands.values():
        who = f" _({who_may(c.who)})_" if c.who else ""
        lines.append(f"• {code(c.usage)} — {c.summary}{who}")
    lines.append("Approve a step by reacting to its message with the approve reaction.")
    return "\n".join(lines)


def run(inv: Invocation) -> Reply:
    """Show the help."""
    from commands import COMMANDS

    return Reply(help_text(COMMANDS, inv.args[0] if inv.args else None))


COMMAND = Command("help", "/golive help [subcommand]", "show this help", None, run, reads_only=True)
