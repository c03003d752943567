"""Refusals and failures said as data: a reason and the facts behind it.

The domain and the engine never write sentences: they raise an error naming *why* (a `Why`) with
the facts people need (user ids, step keys, versions, the release itself), and `bot.render`
words it (`render.refusal`). Errors raised above the engine — a command's usage text, the
problems of a config file — carry their words in `text` instead.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class Why(StrEnum):
    """Every reason golive refuses or cannot do something; `bot.render` words each one."""

    # The runbook's tables
    NO_SUCH_STEP = "no_such_step"
    NOT_ALLOWED = "not_allowed"
    NOT_A_FAILING_CHECK = "not_a_failing_check"
    REASON_REQUIRED = "reason_required"
    NOT_COMPLETE_YET = "not_complete_yet"
    ALREADY_HOLDS_ROLE = "already_holds_role"
    NOT_FROZEN = "not_frozen"
    RELEASE_NOT_ACTIVE = "release_not_active"
    STEP_REFUSES = "step_refuses"
    RELEASE_REFUSES = "release_refuses"
    NO_ROLLBACK_PROPOSED = "no_rollback_proposed"
    # The service's own checks
    NO_RELEASE_HERE = "no_release_here"
    NOT_A_RELEASE_CHANNEL = "not_a_release_channel"
    RELEASE_ALREADY_OPEN = "release_already_open"
    BAD_VERSION = "bad_version"
    AT_IN_THE_PAST = "at_in_the_past"
    UNKNOWN_SERVICES = "unknown_services"
    NO_OWNER = "no_owner"
    NOTHING_WAITS_ON_YOU = "nothing_waits_on_you"
    SEVERAL_WAIT_ON_YOU = "several_wait_on_you"
    MOVED_ON = "moved_on"
    NOTHING_TO_RECORD = "nothing_to_record"
    # Who may hold a role, and which workspace may talk to golive
    CANNOT_HOLD_ROLE = "cannot_hold_role"
    CANNOT_CHECK_PERSON = "cannot_check_person"
    OTHER_WORKSPACE = "other_workspace"
    # The merge freeze and its gate on GitHub
    NOTHING_FROZEN_HERE = "nothing_frozen_here"
    FREEZE_HELD = "freeze_held"
    NO_FREEZE_TO_TAKE = "no_freeze_to_take"
    NO_MERGE_GATE = "no_merge_gate"
    UNKNOWN_PULL = "unknown_pull"
    PULL_CLOSED = "pull_closed"
    PULL_NOT_GATED = "pull_not_gated"
    GITHUB_UNAVAILABLE = "github_unavailable"
    # Words written above the engine (usage text, config problems, a missing secret)
    TEXT = "text"


class GoliveError(Exception):
    """Something golive will not or cannot do; adapters show it as an ephemeral reply.

    Either `why` with `facts` (rendered by `bot.render.refusal`), or plain `text` written by
    the layer that raised it (commands, config).
    """

    def __init__(self, why: Why | str = Why.TEXT, /, **facts: Any) -> None:
        if isinstance(why, Why):
            self.why = why
            self.text = ""
        else:
            self.why = Why.TEXT
            self.text = why
        self.facts = facts
        super().__init__(self.text or f"{self.why.value} {facts}")

    @property
    def message(self) -> str:
        """The words this error was raised with (empty for a `Why`: render those)."""
        return self.text


class UsageError(GoliveError):
    """The command was malformed; the reply adds the usage text."""


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
