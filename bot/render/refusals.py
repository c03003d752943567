"""Refusals in words: every `Why` the domain and the engine raise, and where a release stands."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from bot.domain.errors import GoliveError, Why
from bot.domain.model import Release, ReleaseStatus, Role, Step, StepStatus, waiting_on
from bot.domain.people import Holding, Unfit
from bot.domain.rules import Holder
from bot.render.fmt import STATUS_TITLES, channel_ref, code, esc, mention, when

STATUS_WORDS: Mapping[ReleaseStatus, str] = {
    ReleaseStatus.SCHEDULED: "scheduled and has not started yet",
    ReleaseStatus.ACTIVE: "in progress",
    ReleaseStatus.COMPLETED: "already completed",
    ReleaseStatus.ABORTED: "aborted",
    ReleaseStatus.ROLLED_BACK: "rolled back",
}

# What a release cannot do, by event name (`release X is rolled back, so it cannot …`).
EVENT_WORDS: Mapping[str, str] = {
    "activate": "start",
    "kickoff": "kick off",
    "waive": "take waivers",
    "complete": "be completed",
    "rollback": "be rolled back",
    "unfreeze": "lift a freeze",
    "abort": "be aborted",
    "handover": "be handed over",
    "confirmrollback": "confirm a rollback",
    "allowmerge": "let pull requests through a merge freeze",
    "takefreeze": "hand its merge freeze on",
}

# What the permission table's freeze events are in words; they name the release that holds the
# freeze, which need not be the channel's newest.
FREEZE_ACTIONS: Mapping[str, str] = {
    "unfreeze": "lift the merge freeze of",
    "allowmerge": "let pull requests through the merge freeze of",
    "takefreeze": "take over the merge freeze of",
}

# Events whose class name does not read as a verb (`only on-call can confirm the rollback of …`).
ACTION_WORDS: Mapping[str, str] = {
    "confirmrollback": "confirm the rollback of",
    "handover": "hand over",
    "snooze": "snooze reminders of",
}

ROLE_WORDS: Mapping[Role, str] = {
    Role.COMMANDER: "the commander",
    Role.ON_CALL: "on-call",
    Role.BACKEND: "the backend owner",
    Role.FRONTEND: "the frontend owner",
}


def describe_position(release: Release) -> str:
    """One sentence: what the release is waiting for now."""
    if release.status is not ReleaseStatus.ACTIVE:
        return f"release {release.version} is {STATUS_WORDS[release.status]}"
    waits = waiting_on(release)
    if not waits:
        if release.all_done:
            return "every step is done; the commander may `/golive complete`"
        if release.kickoff_at is not None:
            return "waiting for the scheduled go-live time"
        return "nothing is open"
    parts = []
    for step, user in waits:
        if step.status is StepStatus.AWAITING:
            parts.append(f"{step.title} waits on {mention(user)}")
        elif step.status is StepStatus.BLOCKED:
            parts.append(f"{step.title} is blocked ({esc(', '.join(step.failing))})")
        elif step.status is StepStatus.TIMING:
            parts.append(f"{step.title} is running")
        elif step.status is StepStatus.ACTING:
            parts.append(f"the bot is running {step.title}")
        else:
            parts.append(f"the bot is checking {step.title}")
    return "now: " + "; ".join(parts)


def _step_refuses(release: Release, step: Step, event: str) -> str:
    where = describe_position(release)
    if event == "approve":
        return {
            StepStatus.PENDING: f"{step.title} is not open yet; {where}",
            StepStatus.RUNNING: f"the bot is still checking {step.title}; wait for the result",
            StepStatus.TIMING: f"{step.title} is still running its timer; approve when it ends",
            StepStatus.ACTING: f"the bot is running {step.title}; wait for its result",
            StepStatus.BLOCKED: (
                f"{step.title} is blocked by {esc(', '.join(step.failing))}: fix it and "
                f"`/golive retry {step.key}`, or {code(f'/golive waive {step.key} <reason>')}"
            ),
            StepStatus.DONE: f"{step.title} is already done",
        }.get(step.status, f"{step.title} cannot be approved now")
    if event == "retry":
        if step.status is StepStatus.RUNNING:
            return f"{step.title} is already being checked"
        if step.status is StepStatus.ACTING:
            return f"the bot is still running {step.title}; wait for its result"
        return f"{step.title} is not blocked, so there is nothing to retry; {where}"
    if event == "stop":
        if step.status is StepStatus.BLOCKED:
            return f"{step.title} is already stopped ({esc(', '.join(step.failing))}); {where}"
        return f"{step.title} is not under way, so there is nothing to stop; {where}"
    if event == "snooze":
        return f"{step.title} is not waiting on anyone, so there is nothing to snooze; {where}"
    return f"{step.title} cannot take that now; {where}"


def _holder_words(holder: Holder, uid: str, role: Role | None) -> str:
    if holder is Holder.COMMANDER:
        return f"the commander ({mention(uid)})"
    if holder is Holder.ON_CALL:
        return f"on-call ({mention(uid)})"
    if holder is Holder.ROLE_HOLDER and role is not None:
        return f"{ROLE_WORDS[role]} ({mention(uid)})"
    if holder is Holder.INCOMING_ON_CALL:
        return f"the incoming on-call ({mention(uid)})"
    return mention(uid)


def _not_allowed(
    action: str,
    holders: Sequence[tuple[Holder, str]],
    step: str | None,
    release: Release,
    role: Role | None = None,
) -> str:
    action = ACTION_WORDS.get(action, action)
    named = [h for h in holders if h[0] is not Holder.STEP_OWNER]
    owners = [
        uid
        for holder, uid in holders
        if holder is Holder.STEP_OWNER and uid not in {u for _, u in named}
    ]
    target = release.step(step).title if step else "this release"
    if action in FREEZE_ACTIONS:
        action, target = FREEZE_ACTIONS[action], f"release {release.version}"
    if role is not None:
        target = f"the {ROLE_WORDS[role].removeprefix('the ')} role"
    verb = action
    if owners and not named:
        return f"only {mention(owners[0])} can {verb} {target}"
    if len(named) > 1 or (named and owners and named[0][0] is not Holder.COMMANDER):
        people: dict[str, str] = {}
        for holder, uid in [*((Holder.STEP_OWNER, u) for u in owners), *named]:
            people.setdefault(uid, _holder_words(holder, uid, role))
        *most, last = people.values()
        who = f"{', '.join(most)} or {last}" if most else last
        return f"only {who} can {verb} {target}"
    if owners:
        return f"only the commander or {mention(owners[0])} can {verb} {target}"
    holder, uid = named[0]
    title = "the commander" if holder is Holder.COMMANDER else "on-call"
    return f"only {title} ({mention(uid)}) can {verb} {target}"


HOLDER_WORDS: Mapping[Holder, str] = {
    Holder.COMMANDER: "the commander",
    Holder.ON_CALL: "on-call",
    Holder.STEP_OWNER: "the step's owner",
    Holder.ROLE_HOLDER: "the role's holder",
    Holder.INCOMING_ON_CALL: "the incoming on-call",
}


def who_may(holders: Sequence[Holder]) -> str:
    """Who may do something, for help texts: `commander only`, `the commander or the step's
    owner`."""
    if len(holders) == 1 and holders[0] is not Holder.STEP_OWNER:
        return f"{HOLDER_WORDS[holders[0]].removeprefix('the ')} only"
    *most, last = (HOLDER_WORDS[h] for h in holders)
    return f"{', '.join(most)} or {last}" if most else last


def _already_open(release: Release) -> str:
    return (
        f"release {release.version} is already {STATUS_TITLES[release.status]} in this channel "
        f"(commander {mention(release.roles.commander)}); complete or abort it first"
    )


def _cannot_hold(user: str, role: Role, problem: Unfit, group: str | None, holding: Holding) -> str:
    who, what = mention(user), ROLE_WORDS[role]
    if problem is Unfit.NOT_IN_GROUP:
        source = HOLDING_WORDS[holding].format(role=role.value)
        key = f"roles.{role.value}_group"
        hint = (
            " (name a commander from it with `commander=@user`)"
            if holding is Holding.STARTER
            else ""
        )
        return (
            f"only members of the Slack user group {code(group)} ({key}) may be {what}, and "
            f"{who}{source} is not one{hint}"
        )
    return {
        Unfit.UNKNOWN: f"{code(user)} is not a user of this workspace, so they cannot be {what}",
        Unfit.DEACTIVATED: f"{who} is deactivated in Slack, so they cannot be {what}",
        Unfit.BOT: f"{who} is a bot or an app, and {what} must be a person",
        Unfit.OTHER_WORKSPACE: (
            f"{who} belongs to another workspace, so they cannot be {what} here"
        ),
    }[problem]


HOLDING_WORDS: Mapping[Holding, str] = {
    Holding.NAMED: "",
    Holding.STARTER: " (you, starting the release)",
    Holding.DEFAULT: " (the default from roles.{role})",
}


def _cannot_check(user: str, role: Role, reason: str) -> str:
    return (
        f"golive could not check with Slack whether {code(user)} may be {ROLE_WORDS[role]} "
        f"({esc(reason)}), so nothing was changed; try again in a moment"
    )


def other_workspace(team: str | None) -> str:
    """The answer to a slash command from a workspace golive is not installed in."""
    where = f"workspace {code(team)}" if team else "a request without a workspace"
    return f"golive serves only the workspace it is installed in, not {where}; nothing was done"


def workspace_unknown(status: str) -> str:
    """The answer to a slash command while golive cannot tell which workspace it serves."""
    return (
        f"golive cannot confirm which Slack workspace it serves yet (auth.test: {esc(status)}), "
        "so it takes no commands; try again in a moment"
    )


def _freeze_held(release: Release, version: str) -> str:
    return (
        f"release {release.version} was rolled back and still holds the merge freeze "
        f"(commander {mention(release.roles.commander)}). Lift it first with "
        f"`/golive unfreeze`, or take it over: `/golive start {version} take_freeze` "
        f"(release {version} then holds it, on the record)"
    )


def _no_merge_gate(token_env: str | None) -> str:
    if token_env:
        return f"{token_env} is not set, so golive cannot mark pull requests on GitHub"
    return (
        "golive gates no branch on GitHub here (preconditions.ci.freeze_branch is not set), "
        "so there is nothing to let through"
    )


WORDS: Mapping[Why, Callable[..., str]] = {
    Why.NO_SUCH_STEP: lambda key, known: (
        f"there is no step called {code(key)} in this release (steps: {', '.join(known)})"
    ),
    Why.NOT_ALLOWED: _not_allowed,
    Why.NOT_A_FAILING_CHECK: lambda name, failing: (
        f"{code(name)} is not a failing check; "
        + (f"failing now: {esc(', '.join(failing))}" if failing else "nothing is failing now")
    ),
    Why.REASON_REQUIRED: lambda action: (
        "a waiver needs a reason"
        if action == "waive"
        else "say why you stop it: a reason is required"
        if action == "stop"
        else "say why: a reason is required"
    ),
    Why.NOT_COMPLETE_YET: lambda release: (
        "the release cannot be completed yet: " + describe_position(release)
    ),
    Why.ALREADY_HOLDS_ROLE: lambda user, role: f"{mention(user)} is already {ROLE_WORDS[role]}",
    Why.NOT_FROZEN: lambda: "merges are not frozen",
    Why.RELEASE_NOT_ACTIVE: lambda release: describe_position(release),
    Why.STEP_REFUSES: _step_refuses,
    Why.RELEASE_REFUSES: lambda release, event: (
        f"release {release.version} is {STATUS_WORDS[release.status]}, so it cannot "
        f"{EVENT_WORDS.get(event, 'do that')}"
    ),
    Why.NO_ROLLBACK_PROPOSED: lambda release: (
        f"no rollback of {release.version} waits for confirmation; on-call proposes one with "
        f"`/golive rollback <reason>`"
    ),
    Why.NO_RELEASE_HERE: lambda: (
        f"there is no release in this channel; start one with {code('/golive start <version>')}"
    ),
    Why.NOT_A_RELEASE_CHANNEL: lambda channels: (
        "releases start only in a release channel ("
        + ", ".join(channel_ref(c) for c in channels)
        + ")"
    ),
    Why.RELEASE_ALREADY_OPEN: _already_open,
    Why.BAD_VERSION: lambda version: (
        f"{code(version)} is not a release version; write it like v2.4.0 or 2.4.1"
    ),
    Why.AT_IN_THE_PAST: lambda at, tz: f"at={when(at, tz)} is in the past; give a future time",
    Why.UNKNOWN_SERVICES: lambda unknown, configured: (
        f"unknown service{'s' if len(unknown) > 1 else ''}: {esc(', '.join(unknown))} "
        f"(configured: {', '.join(configured)})"
    ),
    Why.NO_OWNER: lambda missing: (
        f"no {', '.join(missing)} owner: set roles.{missing[0]} in golive.yml or pass "
        f"{missing[0]}=@user"
    ),
    Why.NOTHING_WAITS_ON_YOU: lambda release: (
        f"nothing is waiting on you; {describe_position(release)}"
    ),
    Why.SEVERAL_WAIT_ON_YOU: lambda keys: (
        f"several steps wait on you ({', '.join(keys)}); name one: {code('/golive approve <step>')}"
    ),
    Why.MOVED_ON: lambda keys: (
        "the step that waited on you when you sent this has moved on, so nothing was approved; "
        f"waiting on you now: {', '.join(keys)} — name it: `/golive approve {keys[0]}`"
    ),
    Why.NOTHING_TO_RECORD: lambda: "say what to record",
    Why.CANNOT_HOLD_ROLE: _cannot_hold,
    Why.CANNOT_CHECK_PERSON: _cannot_check,
    Why.OTHER_WORKSPACE: other_workspace,
    Why.NOTHING_FROZEN_HERE: lambda: "merges are not frozen by any release in this channel",
    Why.FREEZE_HELD: _freeze_held,
    Why.NO_FREEZE_TO_TAKE: lambda: (
        "no rolled-back release of this channel holds a merge freeze, so there is none to "
        "take over; start without `take_freeze`"
    ),
    Why.NO_MERGE_GATE: _no_merge_gate,
    Why.UNKNOWN_PULL: lambda number, repository: (
        f"there is no pull request #{number} in {repository}"
    ),
    Why.PULL_CLOSED: lambda number, merged: (
        f"pull request #{number} is {'already merged' if merged else 'closed'}; "
        f"there is nothing to let through"
    ),
    Why.PULL_NOT_GATED: lambda number, base, branch: (
        f"pull request #{number} is into `{base}`, not `{branch}`: the freeze does not hold it"
    ),
    Why.GITHUB_UNAVAILABLE: lambda error: (
        f"golive could not ask GitHub about the pull request ({error}); nothing was allowed, "
        f"try again"
    ),
}


def refusal(error: GoliveError) -> str:
    """The sentence for an error: its `Why` in words, or the words it was raised with."""
    if error.why is Why.TEXT:
        return error.text
    words: Callable[..., str] = WORDS[error.why]
    facts: dict[str, Any] = dict(error.facts)
    return words(**facts)
