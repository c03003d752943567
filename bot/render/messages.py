"""What people read: the release card, step messages and announcements, as text and Block Kit.

Every message has a plain `text` (the notification fallback, and what the console prints) and,
where it helps, Block Kit `blocks`. Block Kit is plain JSON here; no Slack library is needed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from bot.domain.config import Config, Shortened, format_duration
from bot.domain.events import Evidence
from bot.domain.model import (
    KICKOFF_PHASES,
    PHASE_TITLES,
    Outcome,
    Phase,
    Release,
    ReleaseStatus,
    Role,
    Stage,
    StageKind,
    Step,
    StepStatus,
)
from bot.domain.records import ActionRun, Approval, CheckRow
from bot.render.card import (
    OUTCOME_WORDS,
    STATUS_ICONS,
    phase_mark,
    shortened_line,
    soak_progress,
    step_mark,
)
from bot.render.fmt import (
    STATUS_TITLES,
    Blocks,
    Rendered,
    clock_time,
    code,
    code_block,
    context,
    echo,
    esc,
    link,
    mention,
    row_link,
    section,
    when,
)
from bot.render.refusals import ROLE_WORDS, describe_position

APPROVE_ACTION = "golive_approve"
CONFIRM_ROLLBACK_ACTION = "golive_confirm_rollback"
STOP_ACTION = "golive_stop"  # the Stop button beside Approve: opens the reason modal
SNOOZE_ACTION = "golive_snooze"  # the Snooze button on a reminder
STOP_VIEW = "golive_stop_reason"  # callback_id of the modal that asks why a step is stopped
STOP_REASON_BLOCK = "reason"
STOP_REASON_INPUT = "reason_input"
MAX_REASON = 1000  # characters a stop's reason may have (it is echoed in the thread)
HOME_ITEMS = 30  # steps listed in an App Home view at most (Slack allows 100 blocks)


class Verdict(Protocol):
    """What an alert shows of a monitoring verdict (checks.judgment.Judgment fits)."""

    @property
    def summary(self) -> str:
        """The verdict in one sentence."""
        ...

    @property
    def evidence(self) -> Mapping[str, Any]:
        """The figures behind it (the query among them)."""
        ...


def render_approval_request(
    release: Release, step: Step, reaction: str, url: str | None = None
) -> Rendered:
    """Ask a step's owner to approve its current stage; says how (reaction, button, command).

    `url` (the release notes) comes from the config: it is shown as a link golive makes, with
    its target visible.
    """
    stage = step.current
    owner = mention(release.roles.user(step.owner))
    label = stage.label + (f": {link(url, url)}" if url else "")
    if stage.manual:
        lead = (
            f"✋ {owner} *{step.title}*: no automated check is configured, so "
            f"{label[0].lower() + label[1:]}."
        )
    else:
        lead = f"👉 {owner} *{step.title}*: {label}."
    how = (
        f"React with :{reaction}: or press Approve (or `/golive approve {step.key}`). "
        f"Only {owner} can approve this. Something wrong? Press Stop (or "
        f"{code(f'/golive reject {step.key} <reason>')})."
    )
    blocks: Blocks = [
        section(f"{lead}\n{how}"),
        {
            "type": "actions",
            "block_id": f"approve:{release.id}:{step.key}",
            "elements": [
                _button(APPROVE_ACTION, "Approve", f"{release.id}:{step.key}", "primary"),
                _button(STOP_ACTION, "Stop", f"{release.id}:{step.key}", "danger"),
            ],
        },
    ]
    return Rendered(f"{lead} {how}", blocks)


def _button(action: str, label: str, value: str, style: str | None = None) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "action_id": action,
        "text": {"type": "plain_text", "text": label},
        "value": value,
    }
    if style:
        button["style"] = style
    return button


def render_approved(
    release: Release,
    step: Step,
    stage_index: int,
    user: str,
    outcome: Outcome,
    at: datetime,
    tz: ZoneInfo,
    note: str | None = None,
) -> Rendered:
    """The approval request, rewritten once approved (no button)."""
    stage = step.stages[stage_index]
    verb = "confirmed by hand" if outcome is Outcome.MANUAL else "approved"
    extra = f" ({echo(note)})" if note else ""
    text = (
        f"✅ *{step.title}*: {stage.label} — {verb} by {mention(user)} at "
        f"{clock_time(at, tz)}{extra}"
    )
    return Rendered(text, [section(text)])


RUN_MARKS: Mapping[str, str] = {
    "pending": "▫️",
    "dispatching": "🔄",
    "dispatched": "🔄",
    "running": "🔄",
    "succeeded": "✅",
    "failed": "❌",
    "skipped": "⏭️",
}


def run_line(run: ActionRun) -> str:
    """One run of an action: mark, what it is for, how it stands, its link."""
    what = run.target or "the action"
    state = run.detail or {"pending": "not started", "dispatching": "starting"}.get(
        run.state, run.state
    )
    link = f" — {run.url}" if run.url and run.url not in state else ""
    return esc(f"{RUN_MARKS.get(run.state, '•')} {what}: {state}{link}")


def render_action_status(
    release: Release,
    step: Step,
    approval: Approval | None,
    runs: Sequence[ActionRun],
    tz: ZoneInfo,
    again: bool = False,
) -> Rendered:
    """A step's message while golive runs its action: who approved, each run and its link
    (`again`: the action ran before and this is a retry)."""
    head = f"*{step.title}*"
    if approval is not None:
        at = clock_time(approval.at, tz)
        head += f": approved by {mention(approval.user)} at {at}"
    if step.status is StepStatus.ACTING:
        head = f"🔄 {head} — golive is running it{' again' if again else ''}"
    elif step.status is StepStatus.BLOCKED:
        head = f"❌ {head} — the action failed; `/golive retry {step.key}` runs it again"
    else:
        head = f"✅ {head} — the action succeeded"
    lines = [head, *(run_line(r) for r in runs)]
    text = "\n".join(lines)
    return Rendered(text, [section(text)])


def render_rollback_proposal(
    release: Release, by: str, reason: str, plan: Sequence[str], order: Sequence[str]
) -> Rendered:
    """On-call's rollback, waiting for their confirmation: the plan and a Confirm button."""
    on_call = mention(release.roles.on_call)
    lines = [
        f"⏪ {mention(by)} wants to roll back release {release.version}: {echo(reason)}",
        "*Rollback plan* (golive runs the rollback action for each, in this order: "
        + " → ".join(order)
        + ")",
        *(f"• {line}" for line in plan),
        f"{on_call}: press *Confirm rollback* (or react with the approve reaction) to run it. "
        f"Nothing runs until then.",
    ]
    text = "\n".join(lines)
    blocks: Blocks = [
        section(text),
        {
            "type": "actions",
            "block_id": f"rollback:{release.id}",
            "elements": [
                {
                    "type": "button",
                    "action_id": CONFIRM_ROLLBACK_ACTION,
                    "text": {"type": "plain_text", "text": "Confirm rollback"},
                    "style": "danger",
                    "value": f"{release.id}:rollback",
                    "confirm": {
                        "title": {"type": "plain_text", "text": "Roll back?"},
                        "text": {
                            "type": "plain_text",
                            "text": f"Run the rollback actions for {release.version} now.",
                        },
                        "confirm": {"type": "plain_text", "text": "Roll back"},
                        "deny": {"type": "plain_text", "text": "Not yet"},
                    },
                }
            ],
        },
    ]
    return Rendered(text, blocks)


def render_rollback_confirmed(
    release: Release, by: str, when_: datetime, tz: ZoneInfo
) -> Rendered:
    """The proposal, rewritten once confirmed (no button)."""
    text = (
        f"⏪ Rollback of {release.version} confirmed by {mention(by)} at {clock_time(when_, tz)}; "
        f"the rollback actions are running (results in the thread)."
    )
    return Rendered(text, [section(text)])


def render_rollback_run(run: ActionRun) -> Rendered:
    """One service's rollback started, or ended."""
    if run.state == "succeeded":
        head = f"⏪ ✅ *{run.target}* rolled back"
    elif run.state == "failed":
        head = f"⏪ ❌ *Rollback of {run.target} failed*"
    else:
        head = f"⏪ 🔄 Rolling back *{run.target}*"
    text = f"{head}: {run_line(run).split(': ', 1)[1]}"
    return Rendered(text, [section(text)])


def render_rollback_done(release: Release, runs: Sequence[ActionRun]) -> Rendered:
    """The rollback actions are over: what was rolled back, what was not and what to do."""
    done = [r.target for r in runs if r.state == "succeeded"]
    failed = [r.target for r in runs if r.state == "failed"]
    skipped = [r.target for r in runs if r.state == "skipped"]
    on_call = mention(release.roles.on_call)
    if not failed and not skipped:
        head = f"⏪ Rollback of {release.version} done: {', '.join(done)} rolled back."
    else:
        head = (
            f"⏪ Rollback of {release.version} stopped: {', '.join(failed)} failed"
            + (f"; not attempted: {', '.join(skipped)}" if skipped else "")
            + f". {on_call}: finish the rollback by hand"
            + (f" (rolled back: {', '.join(done)})" if done else "")
            + "."
        )
    text = f"{head} Merges stay frozen and monitoring continues."
    return Rendered(text, [section(text)])


def render_check_results(step: Step, results: Iterable[CheckRow], ok: bool) -> Rendered:
    """Check verdicts with their summaries; a failure says how to move on."""
    icon = {"pass": "✅", "warn": "⚠️", "fail": "❌", "error": "💥", "inconclusive": "❔"}
    rows = []
    for r in results:
        rows.append(f"{icon.get(r.status, '•')} {code(r.name)} {esc(r.summary)}")
        tail = r.evidence.get("output_tail")
        if tail:
            rows.append(code_block(str(tail)[-1500:]))
    head = f"✅ *{step.title}* passed" if ok else f"❌ *{step.title}* is blocked"
    lines = [head, *rows]
    if not ok:
        lines.append(
            f"Fix it and `/golive retry {step.key}`, or the commander may "
            f"{code(f'/golive waive {step.key} <reason>')}."
        )
    text = "\n".join(lines)
    return Rendered(text, [section(text)])


def render_timer_started(step: Step, tz: ZoneInfo) -> Rendered:
    """A timer stage (the soak) began."""
    assert step.deadline is not None
    text = (
        f"⏱️ *{step.title}*: {step.current.label} — until "
        f"{clock_time(step.deadline, tz)}. Traffic stays narrow until then."
    )
    return Rendered(text, [section(text)])


def evidence_words(evidence: Evidence) -> str:
    """Plain words: 27 of 30 ticks could judge 5xx and p95 (90%; need 80% and the last), …"""
    if evidence.ticks == 0:
        return "no tick could measure anything"
    last = "including the last" if evidence.last else "but not the last"
    return (
        f"{evidence.conclusive} of {evidence.ticks} ticks could judge 5xx and p95 "
        f"({evidence.conclusive / evidence.ticks:.0%}; need {evidence.needed:.0%} and the last), "
        f"{last}"
    )


def render_soak_blocked(
    release: Release, breaches: Sequence[str], evidence: Evidence | None = None
) -> Rendered:
    """The soak ended while a breach is open (or golive was blind, or could judge too few of
    its ticks): no widening; what to do."""
    breached = [b for b in breaches if b not in ("metrics", "evidence")]
    reasons = []
    if breached:
        reasons.append(f"{esc(', '.join(breached))} still breached")
    if "metrics" in breaches:
        reasons.append("golive unable to read the metrics, so nobody saw the end of the soak")
    if "evidence" in breaches:
        why = f" ({evidence_words(evidence)})" if evidence else ""
        reasons.append(f"not enough evidence{why}")
    advice = (
        f"Recommended: {mention(release.roles.on_call)} rolls back "
        f"({code('/golive rollback <reason>')}). "
        if breached
        else f"{mention(release.roles.on_call)}: check the dashboards by hand. "
    )
    text = (
        f"⛔ *Soak* ended with {' and '.join(reasons)}: traffic stays narrow. {advice}"
        f"`/golive retry soak` soaks again, or the commander may "
        f"{code('/golive waive soak <reason>')}."
    )
    return Rendered(text, [section(text)])


ALERT_HEADS = {
    "open": "🚨 {on_call} *{signal} breach* during the {period} of {version}",
    "remind": "🔁 {on_call} *{signal} still breached* after {duration} ({period} of {version})",
    "recover": "✅ *{signal} recovered* after {duration} ({period} of {version})",
    "blind": "🙈 {on_call} *golive cannot read metrics* ({signal}) during the {period} of "
    "{version}: monitoring of {signal} is blind",
    "sight": "👀 *Metrics are back* ({signal}) after {duration} ({period} of {version})",
}


def render_alert(
    release: Release,
    kind: str,
    signal: str,
    period: str,
    judgment: Verdict,
    duration: timedelta | None,
    config: Config,
) -> Rendered:
    """An alert for on-call: the figure, the threshold, the baseline — and what to do."""
    head = ALERT_HEADS[kind].format(
        on_call=mention(release.roles.on_call),
        signal=signal,
        period=period,
        version=release.version,
        duration=format_duration(duration) if duration else "a moment",
    )
    evidence = judgment.evidence
    facts = [esc(judgment.summary)]
    if evidence.get("query"):
        facts.append(f"query {code(evidence['query'])}")
    lines = [head, *facts]
    if kind == "open" and period == "soak":
        lines.append(
            "Traffic stays narrow. If it does not recover, roll back: "
            f"{code('/golive rollback <reason>')}."
        )
    elif kind == "open":
        lines.append(f"Decide on a rollback: {code('/golive rollback <reason>')}.")
    text = "\n".join(lines)
    return Rendered(text, [section(text)])


def render_soak_sight(release: Release, seen: str, short: bool, soak: str) -> Rendered:
    """What the soak can see at the baseline's traffic; a warning when it is too short."""
    text = f"🔭 *What the soak can see* at the baseline's traffic: {seen}."
    if short:
        text += (
            f"\n⚠️ {mention(release.roles.on_call)} the soak ({soak}) is "
            f"shorter than that: a doubling of 5xx may go unseen until heightened "
            f"monitoring. Watch the dashboards, or soak longer (`/golive retry soak` "
            f"once it ends)."
        )
    return Rendered(text)


def page_summary(release: Release, signal: str, verdict: Verdict, period: str, blind: bool) -> str:
    """The summary line of a PagerDuty incident golive opens."""
    if blind:
        return f"golive cannot read metrics during {period} of {release.version}: {verdict.summary}"
    return f"{signal} breach during {period} of {release.version}: {verdict.summary}"


def render_monitoring_closed(
    release: Release,
    alerts: int,
    still_open: Sequence[str],
    config: Config,
    evidence: Evidence | None = None,
    by_hand: bool = False,
) -> Rendered:
    """Heightened (or post-rollback) monitoring ended; it says so when too few of its ticks
    could judge."""
    hours = format_duration(config.monitoring.heightened.duration)
    if by_hand:
        text = (
            f"👋 Heightened monitoring of {release.version} ended after {hours}; it was watched "
            f"by hand (no metrics source is configured), so golive judged nothing itself."
        )
        return Rendered(text, [section(text)])
    if still_open:
        tail = f"{esc(', '.join(still_open))} still breached — watch it by hand from here."
    elif alerts:
        tail = f"{alerts} alert(s) along the way, all recovered."
    else:
        tail = "no breach."
    if evidence is not None and not evidence.enough:
        tail += (
            f" Not enough evidence: {evidence_words(evidence)} — golive could not watch this "
            f"hour as it should; {mention(release.roles.on_call)}, check the dashboards by hand."
        )
    text = f"👋 Monitoring of {release.version} ended after {hours}: {tail}"
    return Rendered(text, [section(text)])


def _branch(config: Config) -> str:
    if config.preconditions.ci and config.preconditions.ci.freeze_branch:
        return code(config.preconditions.ci.freeze_branch)
    return "the release branch"


def render_freeze(
    release: Release,
    config: Config,
    frozen: bool,
    now: datetime,
    still_held_by: Sequence[str] = (),
) -> Rendered:
    """The merge-freeze announcement, or its lifting (saying so when other releases still hold
    a freeze of their own)."""
    branch = _branch(config)
    if not frozen and still_held_by:
        text = (
            f"🟢 *Merge freeze of {release.version} lifted* ({STATUS_TITLES[release.status]}), "
            f"but merges to {branch} stay frozen: release {', '.join(still_held_by)} still "
            f"holds a freeze ({clock_time(now, config.tz)})."
        )
    elif frozen:
        text = (
            f"🧊 *Merge freeze*: feature merges to {branch} are frozen for release "
            f"{release.version} from {clock_time(now, config.tz)} "
            f"(commander {mention(release.roles.commander)}). Merges resume when the "
            f"release completes; ask the commander for anything urgent."
        )
    else:
        text = (
            f"🟢 *Merge freeze lifted*: release {release.version} is "
            f"{STATUS_TITLES[release.status]}; merges to {branch} may resume "
            f"({clock_time(now, config.tz)})."
        )
    return Rendered(text, [section(text)])


# GitHub keeps at most 140 characters of a commit status description.
GATE_DESCRIPTION_LIMIT = 140


def _gate_text(text: str) -> str:
    if len(text) <= GATE_DESCRIPTION_LIMIT:
        return text
    return text[: GATE_DESCRIPTION_LIMIT - 1] + "…"


def gate_frozen(version: str, status: ReleaseStatus, reason: str | None) -> str:
    """The merge gate's failing status on GitHub: which release holds the freeze, and why."""
    if status is ReleaseStatus.ROLLED_BACK:
        why = f" ({reason})" if reason else ""
        return _gate_text(
            f"Frozen: release {version} was rolled back{why}; its commander lifts the freeze"
        )
    return _gate_text(f"Frozen for release {version} until it completes")


def gate_open() -> str:
    """The merge gate's passing status on GitHub when nothing is frozen."""
    return "No merge freeze: merges may proceed"


def gate_allowed(version: str, reason: str) -> str:
    """The merge gate's passing status on a head the commander let through a freeze."""
    return _gate_text(f"Allowed through the {version} freeze: {' '.join(reason.split())}")


def render_merge_allowed(
    number: int, sha: str, title: str, user: str, reason: str, config: Config
) -> Rendered:
    """The thread hears that one pull request may merge during the freeze, and until when."""
    named = f" ({esc(title)})" if title else ""
    text = (
        f"🚦 {mention(user)} let pull request #{number}{named} through the merge freeze: "
        f"{reason}. Its head `{sha[:7]}` is marked success on GitHub, so it may merge into "
        f"{_branch(config)}; a new push to it is frozen again."
    )
    return Rendered(text, [section(text)])


def render_refrozen(number: int, sha: str, version: str) -> Rendered:
    """A pull request let through the freeze got a new head commit: frozen again."""
    text = (
        f"🧊 Pull request #{number} has a new head `{sha[:7]}`, frozen again by the {version} "
        f"freeze; `/golive freeze allow {number} <reason>` lets it through again."
    )
    return Rendered(text)


def render_freeze_handed_on(old: str, new: str, by: str) -> Rendered:
    """In the old release's thread: its freeze now belongs to a newer release."""
    text = (
        f"🧊 The merge freeze of {old} now belongs to release {new} ({mention(by)} took it "
        f"over); merges stay frozen until {new} lifts it."
    )
    return Rendered(text)


def render_freeze_taken_over(new: str, old: str, by: str) -> Rendered:
    """In the new release's thread: it holds the freeze a rolled-back release kept."""
    text = (
        f"🧊 Release {new} holds the merge freeze taken over from {old} (rolled back) by "
        f"{mention(by)}: merges stay frozen until {new} completes or is aborted."
    )
    return Rendered(text)


def render_started(release: Release, config: Config) -> Rendered:
    """The channel announcement that a release has begun (or been scheduled)."""
    if release.status is ReleaseStatus.SCHEDULED and release.kickoff_at:
        text = (
            f"🗓️ Release {release.version} is scheduled for "
            f"{when(release.kickoff_at, config.tz)}; preconditions and preflight run at T-30. "
            f"Commander {mention(release.roles.commander)}."
        )
    else:
        text = (
            f"🚀 Release {release.version} has started. Commander "
            f"{mention(release.roles.commander)}. Follow along in the thread of the card."
        )
    return Rendered(text)


def render_reminder(release: Release, config: Config) -> Rendered:
    """T-30: the owners are reminded and the automatic checks begin."""
    r = release.roles
    people = " ".join(mention(u) for u in (r.commander, r.on_call, r.backend, r.frontend))
    at = when(release.kickoff_at, config.tz)
    text = (
        f"⏰ T-30: release {release.version} goes live at {at}. {people} — preconditions and "
        f"preflight are running now."
    )
    return Rendered(text)


def render_ended(
    release: Release,
    config: Config,
    by: str | None,
    reason: str | None,
    summary: Sequence[str],
    rollback_plan: Sequence[str] = (),
    shortened: Shortened | None = None,
) -> Rendered:
    """Completion, abort or rollback, with the validation summary (and, first, the runbook
    minimums the release ran below)."""
    status = release.status
    if status is ReleaseStatus.COMPLETED:
        head = f"🎉 Release {release.version} is complete (go by {mention(by)})."
    elif status is ReleaseStatus.ABORTED:
        head = f"🛑 Release {release.version} was aborted by {mention(by)}: {echo(reason or '')}"
    else:
        head = (
            f"⏪ {mention(by)} is rolling back release {release.version}: {echo(reason or '')}. "
            f"Merges stay frozen until the commander lifts the freeze "
            f"(`/golive unfreeze`)."
        )
    lines = [head] + ([shortened_line(shortened)] if shortened else [])
    if rollback_plan:
        lines.append("*Rollback plan*")
        lines.extend(f"• {line}" for line in rollback_plan)
    if summary:
        lines.append("*Validation summary*")
        lines.extend(f"• {line}" for line in summary)
    if status is ReleaseStatus.COMPLETED:
        hours = format_duration(config.monitoring.heightened.duration)
        lines.append(f"Heightened monitoring continues for {hours}.")
    text = "\n".join(lines)
    return Rendered(text, [section(text)])


def validation_summary(release: Release) -> list[str]:
    """One line per phase: how each finished, with waivers and manual confirmations named."""
    lines = []
    for phase in Phase:
        steps = [s for s in release.steps if s.phase is phase]
        if not steps:
            continue
        parts = []
        for step in steps:
            word = OUTCOME_WORDS[step.outcome] if step.outcome else step.status.value
            parts.append(f"{step.title} {word}")
        lines.append(f"{phase_mark(steps)} {PHASE_TITLES[phase]}: " + "; ".join(parts))
    if release.waivers:
        lines.append("⚠️ Waived: " + esc(", ".join(sorted(release.waivers))))
    return lines


def stage_kind_word(kind: StageKind) -> str:
    """What a stage waits for, in words."""
    return {
        StageKind.CHECK: "check",
        StageKind.APPROVE: "approval",
        StageKind.TIMER: "timer",
        StageKind.ACTION: "action",
    }[kind]


def render_timer_done(step: Step, stage: Stage, now: datetime, tz: ZoneInfo) -> Rendered:
    """A timer stage (the soak) ran its course."""
    return Rendered(f"⏱️ *{step.title}*: {stage.label} — done at {clock_time(now, tz)}.")


def render_step_blocked(
    release: Release, step: Step, results: Iterable[CheckRow]
) -> Rendered:
    """A check failed: its results, and the commander mentioned to decide."""
    rendered = render_check_results(step, results, ok=False)
    text = f"{rendered.text}\n{mention(release.roles.commander)}"
    return Rendered(text, rendered.blocks)


def render_phase_done(release: Release, phase: Phase, now: datetime, tz: ZoneInfo) -> Rendered:
    """Every step of a phase is done (and when deployment opens, if it waits for T-0)."""
    text = f"✅ *{PHASE_TITLES[phase]}* done."
    following = release.phase
    if following in KICKOFF_PHASES and release.kickoff_at is not None and now < release.kickoff_at:
        text += f" Deployment opens at the scheduled go-live, {when(release.kickoff_at, tz)}."
    return Rendered(text)


def render_waived(
    step: Step, name: str, user: str, reason: str, still_failing: Sequence[str]
) -> Rendered:
    """A waiver, on the record in the thread."""
    text = f"⚠️ {mention(user)} waived {code(name)} ({step.title}): {echo(reason)}"
    if still_failing:
        text += f"\nStill failing: {esc(', '.join(still_failing))}."
    return Rendered(text)


def rollback_plan_line(service: str, image: str, target: str | None) -> str:
    """One line of the rollback plan."""
    if target:
        return f"{esc(service)}: roll back to {code(f'{image}:{target}')}"
    return f"{esc(service)}: no rollback target recorded — choose {code(image)} by hand"


@dataclass(frozen=True)
class NamedFile:
    """How an uploaded file is named and introduced."""

    filename: str
    title: str
    text: str


def chart_file(version: str) -> NamedFile:
    """The soak chart's file name, title and message."""
    return NamedFile(f"soak-{version}.png", f"Soak of {version}", f"📈 Soak of {version}")


def record_file(version: str) -> NamedFile:
    """The release record's file name, title and message."""
    return NamedFile(
        f"release-{version}.md", f"Release record {version}", f"📒 Release record of {version}"
    )


def final_record_file(version: str) -> NamedFile:
    """The final release record's file name, title and message (the release is closed)."""
    return NamedFile(
        f"release-{version}-final.md",
        f"Final release record {version}",
        f"📒 Final release record of {version}: heightened monitoring is over, the release is "
        f"closed.",
    )


def render_watching_by_hand(release: Release, until: datetime, tz: ZoneInfo) -> Rendered:
    """No Prometheus: on-call watches the dashboards."""
    return Rendered(
        f"👀 No Prometheus is configured: {mention(release.roles.on_call)} "
        f"watches the dashboards by hand until {when(until, tz)}."
    )


def render_handed_over(
    release: Release, old: str, new: str, role: Role = Role.COMMANDER, waiting: int = 0
) -> Rendered:
    """A role changed hands (`waiting`: requests now addressed to the new holder)."""
    if role is Role.COMMANDER:
        text = (
            f"🤝 {mention(old)} handed release {release.version} over to "
            f"{mention(new)}, who is now the commander."
        )
    else:
        text = (
            f"🤝 {mention(new)} takes over from {mention(old)} as {ROLE_WORDS[role]} of "
            f"release {release.version}."
        )
    if waiting:
        many = waiting > 1
        text += (
            f" {waiting} waiting request{'s' if many else ''} {'go' if many else 'goes'} to "
            f"{mention(new)} now."
        )
    return Rendered(text)


def render_note(
    user: str,
    text: str,
    *,
    followup: bool,
    owner: str | None,
    late: str | None = None,
    version: str = "",
    in_notes: bool = False,
) -> Rendered:
    """A note or a follow-up, echoed in the thread; one added after the release ended (`late`:
    "completion" or "the rollback", or "closed" once monitoring is over too) says where it will
    be kept."""
    if followup:
        who = mention(owner) if owner else "unassigned"
        head = f"📌 Follow-up for {who} (from {mention(user)}): {echo(text)}"
    else:
        head = f"📝 Note from {mention(user)}: {echo(text)}"
    also = " and golive's section of the GitHub release notes" if in_notes else ""
    if late == "closed":
        wrote = "; golive writes it into the GitHub release notes too" if in_notes else ""
        head += (
            f"\n↪ Added after the release closed: it is kept in the record "
            f"(`golive report {version}`){wrote}."
        )
    elif late is not None:
        head += (
            f"\n↪ Added after {late}: it goes into the final record{also} when monitoring "
            f"ends."
        )
    return Rendered(head)


def render_progress(title: str, text: str) -> Rendered:
    """A running check says what it is waiting for."""
    return Rendered(f"⏳ *{title}*: {esc(text)}")


def ack_started(version: str, took_freeze_of: str | None = None) -> str:
    """The reply to a start that began at once."""
    held = f" It holds the merge freeze taken over from {took_freeze_of}." if took_freeze_of else ""
    return f"Release {version} started.{held} Watch the card in this channel."


def ack_scheduled(version: str, at: datetime, activate_at: datetime, tz: ZoneInfo) -> str:
    """The reply to a start scheduled with `at=`."""
    return (
        f"Release {version} scheduled for {when(at, tz)}; "
        f"preconditions and preflight run at {when(activate_at, tz)}."
    )


def ack(action: str, subject: str = "") -> str:
    """The short reply confirming a command (`subject` is a step title, check name or user)."""
    return {
        "approve": f"Approved {subject}.",
        "waive": f"Waived {code(subject)}.",
        "retry": f"Running {subject} again.",
        "note": "Note recorded.",
        "followup": "Follow-up recorded.",
        "handover": f"{mention(subject)} is now the commander.",
        "reject": f"Stopped {subject}.",
        "snooze": f"Reminders of {subject} snoozed.",
        "rollback": "Rollback recorded; the plan is in the channel.",
        "rollback_proposed": "The rollback plan is in the channel; confirm it there to run it.",
        "confirm_rollback": "Rollback confirmed; the rollback actions are running.",
        "abort": "Release aborted.",
        "complete": "Release completed.",
        "unfreeze": f"Merge freeze of release {subject} lifted.",
        "allow": f"Pull request {subject} may merge during the freeze.",
    }[action]


def render_degraded(problem: str) -> str:
    """Said once, straight to the release channel, when golive finds it cannot write."""
    return (
        f"⚠️ golive cannot write to its database ({problem}). Messages are held back and new "
        "approvals may wait until it can; nothing already recorded is lost. golive keeps "
        "trying on its own — check the disk and `/healthz`."
    )


def render_recovered() -> str:
    """Said once when golive can write again after `render_degraded`."""
    return "✅ golive can write to its database again; held-back messages follow."


def render_database_busy(problem: str) -> str:
    """The reply to a command that could not be recorded."""
    return (
        f"golive cannot write to its database right now ({problem}), so nothing was done. "
        "Try again in a minute; `/golive status` still answers."
    )


def ack_handover(role: Role, to: str) -> str:
    """The reply to a handover."""
    return f"{mention(to)} is now {ROLE_WORDS[role]}."


# -- stopping a step ---------------------------------------------------------------------------


def render_stopped(
    release: Release, step: Step, by: str, reason: str, rollback_plan: Sequence[str] = ()
) -> Rendered:
    """A person stopped a step: why, the commander mentioned, the ways on (and, when on-call
    stopped the soak or a verification, the rollback plan)."""
    lines = [
        f"🛑 {mention(by)} stopped *{step.title}*: {echo(reason)}",
        f"{mention(release.roles.commander)}: it stays blocked until it is sorted — then "
        f"{code(f'/golive retry {step.key}')} (the commander or its owner), or "
        f"{code(f'/golive waive {step.key} <reason>')}.",
    ]
    if rollback_plan:
        lines.append("*Rollback plan*")
        lines.extend(f"• {line}" for line in rollback_plan)
        lines.append(f"On-call decides: {code('/golive rollback <reason>')}.")
    text = "\n".join(lines)
    return Rendered(text, [section(text)])


def render_request_stopped(
    step: Step, stage: Stage, by: str, reason: str, at: datetime, tz: ZoneInfo
) -> Rendered:
    """An approval request, rewritten once the step was stopped (no buttons)."""
    text = (
        f"🛑 *{step.title}*: {stage.label} — stopped by {mention(by)} at "
        f"{clock_time(at, tz)}: {echo(reason)}"
    )
    return Rendered(text, [section(text)])


def render_stop_modal(release: Release, step: Step) -> dict[str, Any]:
    """The modal that asks why a step is stopped (views.open)."""
    return {
        "type": "modal",
        "callback_id": STOP_VIEW,
        "private_metadata": f"{release.id}:{step.key}",
        "title": {"type": "plain_text", "text": "Stop a step"},
        "submit": {"type": "plain_text", "text": "Stop it"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            section(
                f"Stop *{step.title}* of release {release.version}? It stays blocked until "
                f"the commander or its owner retries it, or the commander waives it; the "
                f"commander is told at once."
            ),
            {
                "type": "input",
                "block_id": STOP_REASON_BLOCK,
                "label": {"type": "plain_text", "text": "Why stop it?"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": STOP_REASON_INPUT,
                    "multiline": True,
                    "min_length": 1,
                    "max_length": MAX_REASON,
                },
            },
        ],
    }


def stop_reason_error() -> str:
    """What the modal shows under an empty reason."""
    return "Say why you stop it: the commander needs to know."


# -- reminders ---------------------------------------------------------------------------------


def _waited(seconds: float) -> str:
    """How long something has waited, in whole minutes (seconds under a minute)."""
    if seconds < 60:
        return format_duration(timedelta(seconds=max(round(seconds), 1)))
    return format_duration(timedelta(seconds=round(seconds / 60) * 60))


def render_step_reminder(
    release: Release, step: Step, owner: str, escalate_to: str | None, waited: timedelta
) -> Rendered:
    """A reminder in the thread: the owner mentioned (and, once late, someone else too), with a
    Snooze button."""
    how_long = _waited(waited.total_seconds())
    if step.status is StepStatus.BLOCKED:
        what = (
            f"has been blocked for {how_long} ({esc(', '.join(step.failing))}): "
            f"{code(f'/golive retry {step.key}')} once it is fixed, or the commander may "
            f"{code(f'/golive waive {step.key} <reason>')}"
        )
    else:
        what = f"has waited {how_long} for you: {step.current.label} (the request is above)"
    text = f"⏰ {mention(owner)} *{step.title}* {what}."
    if escalate_to is not None:
        text = f"⏫{text[1:]}\n{mention(escalate_to)}, it needs you too."
    blocks: Blocks = [
        section(text),
        {
            "type": "actions",
            "block_id": f"remind:{release.id}:{step.key}",
            "elements": [_button(SNOOZE_ACTION, "Snooze 30 min", f"{release.id}:{step.key}")],
        },
    ]
    return Rendered(text, blocks)


def render_reminder_dm(
    release: Release, step: Step, waited: timedelta, request: int | None
) -> Rendered:
    """The direct message to a step's owner, with a link to its request (the outbox row of the
    approval request, or of the message saying why it is blocked) in the thread."""
    how_long = _waited(waited.total_seconds())
    doing = "is blocked" if step.status is StepStatus.BLOCKED else "waits for you"
    where = f" — {row_link(request, 'open it in the thread')}" if request is not None else ""
    text = (
        f"⏰ Release {release.version}: *{step.title}* {doing} ({how_long} now) in "
        f"<#{release.channel}>{where}."
    )
    return Rendered(text, [section(text)])


def render_reminder_quiet(text: str, by: str, until: datetime, tz: ZoneInfo) -> Rendered:
    """A reminder, rewritten once snoozed (no button)."""
    line = f"{text}\n💤 Snoozed by {mention(by)} until {clock_time(until, tz)}."
    return Rendered(line, [section(line)])


def render_snoozed(step: Step, by: str, until: datetime, tz: ZoneInfo) -> Rendered:
    """Someone snoozed a step's reminders."""
    return Rendered(
        f"💤 {mention(by)} snoozed the reminders of *{step.title}* until {clock_time(until, tz)}."
    )


# -- App Home ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class HomeStep:
    """A step waiting on the person whose Home tab is drawn."""

    release: Release
    step: Step
    since: datetime | None
    link: str | None  # a message link to its request (fmt.message_link), once delivered


@dataclass(frozen=True)
class HomeRelease:
    """A release as the Home tab lists it."""

    release: Release
    ended_at: datetime | None = None


def render_home(
    user: str,
    waiting: Sequence[HomeStep],
    active: Sequence[HomeRelease],
    completed: Sequence[HomeRelease],
    config: Config,
    now: datetime,
) -> Rendered:
    """A person's App Home: what waits on them, the releases in progress, the last completed."""
    tz = config.tz
    mine = [_home_step(item, tz) for item in waiting[:HOME_ITEMS]]
    if len(waiting) > HOME_ITEMS:
        mine.append(
            f"…and {len(waiting) - HOME_ITEMS} more: `/golive status` in each release channel."
        )
    parts = (
        ("Waiting on you", mine, "Nothing waits on you. 🎉"),
        (
            "Releases in progress",
            [_home_active(e.release, now) for e in active],
            "No release is in progress.",
        ),
        ("Recently completed", [_home_done(e, tz) for e in completed], "No release completed yet."),
    )
    blocks: Blocks = []
    lines = [f"golive for {mention(user)}"]
    for title, entries, empty in parts:
        if blocks:
            blocks.append({"type": "divider"})
        blocks.append(_header(title))
        blocks += [section(entry) for entry in entries] or [context(empty)]
        lines += [f"{title}:", *(entries or [empty])]
    return Rendered("\n".join(lines), blocks)


def _home_step(item: HomeStep, tz: ZoneInfo) -> str:
    step, release = item.step, item.release
    since = f" · since {clock_time(item.since, tz)}" if item.since else ""
    what = (
        f"blocked: {esc(', '.join(step.failing))}"
        if step.status is StepStatus.BLOCKED
        else step.current.label
    )
    where = f" · {item.link}" if item.link else ""
    return (
        f"{step_mark(step)} *{step.title}* — release {release.version} in "
        f"<#{release.channel}>{since}\n{what}{where}"
    )


def _home_active(release: Release, now: datetime) -> str:
    phase = PHASE_TITLES[release.phase] if release.phase else "every step done"
    line = (
        f"{STATUS_ICONS[release.status]} *{release.version}* in <#{release.channel}> — "
        f"{phase} (commander {mention(release.roles.commander)})\n" + describe_position(release)
    )
    bar = soak_progress(release, now)
    return f"{line}\n{bar}" if bar else line


def _home_done(item: HomeRelease, tz: ZoneInfo) -> str:
    release = item.release
    return (
        f"🎉 *{release.version}* in <#{release.channel}> — completed "
        f"{when(item.ended_at, tz)} (commander {mention(release.roles.commander)})"
    )


def _header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": text, "emoji": True}}
