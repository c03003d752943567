"""`/golive note <text>`: record an issue or observation in the release record."""

from __future__ import annotations

from commands.base import Command, Invocation, Reply


def run(inv: Invocation) -> Reply:
    """Record a note."""
    return Reply(inv.service.note(inv.channel, inv.user, inv.rest))


COMMAND = Command("note", "/golive note <text>", "record an issue or observation", None, run)
