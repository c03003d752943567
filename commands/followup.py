"""`/golive followup [@owner] <text>`: record a follow-up action, optionally with an owner."""

from __future__ import annotations

from commands.base import Command, Invocation, Reply, looks_like_user, parse_user


def run(inv: Invocation) -> Reply:
    """Record a follow-up."""
    owner = None
    text = inv.rest.strip()
    if inv.args and looks_like_user(inv.args[0]):
        owner = parse_user(inv.args[0], inv.directory)
        text = text[len(inv.args[0]) :].strip()
    return Reply(inv.service.note(inv.channel, inv.user, text, owner=owner, followup=True))


COMMAND = Command(
    "followup", "/golive followup [@owner] <text>", "record a follow-up action", None, run
)
