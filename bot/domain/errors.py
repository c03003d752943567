"""Domain errors whose message is a sentence a person in the release channel can act on."""

from __future__ import annotations


class GoliveError(Exception):
    """An error with user-facing text; adapters show it as an ephemeral reply."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UsageError(GoliveError):
    """The command was malformed; the message carries the usage text."""


class NotAllowed(GoliveError):
    """The user may not do this (wrong role, wrong channel)."""


class IllegalMove(GoliveError):
    """The runbook does not allow this event in the current state."""


class ConfigError(GoliveError):
    """The configuration file is broken; `problems` lists each with its field path."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid configuration:\n" + "\n".join(f"  {p}" for p in problems))
        self.problems = problems


class MissingSecret(GoliveError):
    """An environment variable that holds a secret is not set."""
