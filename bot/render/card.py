"""The release card and `/golive status`: every phase and step with its mark, who or what it
waits on, soak progress and sparklines, and near the top what the runbook was shortened by and
whether the release is closed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.domain.config import HEIGHTENED_FLOOR, SOAK_FLOOR, Config, Shortened, format_duration
from bot.domain.model import (
    PHASE_TITLES,
    Outcome,
    Phase,
    Release,
    ReleaseStatus,
    Role,
    Step,
    StepStatus,
)
from bot.domain.records import Sample
from bot.render.chart import sparkline
from bot.render.fmt import (
    STATUS_TITLES,
    Blocks,
    Rendered,
    clock_time,
    context,
    echo,
    esc,
    mention,
    section,
    when,
)
from bot.render.refusals import describe_position

STEP_MARKS: Mapping[StepStatus, str] = {
    StepStatus.PENDING: "▫️",
    StepStatus.RUNNING: "🔄",
    StepStatus.AWAITING: "⏳",
    StepStatus.TIMING: "⏱️",
    StepStatus.ACTING: "🔄",
    StepStatus.BLOCKED: "❌",
    StepStatus.DONE: "✅",
}


OUTCOME_WORDS: Mapping[Outcome, str] = {
    Outcome.PASSED: "passed",
    Outcome.APPROVED: "approved",
    Outcome.MANUAL: "confirmed by hand",
    Outcome.WAIVED: "waived",
    Outcome.ELAPSED: "elapsed",
}


STATUS_ICONS: Mapping[ReleaseStatus, str] = {
    ReleaseStatus.SCHEDULED: "🗓️",
    ReleaseStatus.ACTIVE: "🚀",
    ReleaseStatus.COMPLETED: "🎉",
    ReleaseStatus.ABORTED: "🛑",
    ReleaseStatus.ROLLED_BACK: "⏪",
}


def step_mark(step: Step) -> str:
    """The status mark of a step; a finished step that needed a human says so."""
    if step.status is StepStatus.DONE and step.outcome in (Outcome.WAIVED, Outcome.MANUAL):
        return "⚠️" if step.outcome is Outcome.WAIVED else "✋"
    return STEP_MARKS[step.status]


def phase_mark(steps: Sequence[Step]) -> str:
    """✅ all done, ❌ something blocked, ⏳ something open, ▫️ not reached."""
    if any(s.status is StepStatus.BLOCKED for s in steps):
        return "❌"
    if all(s.status is StepStatus.DONE for s in steps):
        return "✅"
    if any(s.status is not StepStatus.PENDING for s in steps):
        return "⏳"
    return "▫️"


def progress_bar(fraction: float, width: int = 20) -> str:
    """A text progress bar: ▓▓▓░░░ 50%."""
    fraction = min(max(fraction, 0.0), 1.0)
    filled = round(fraction * width)
    return "▓" * filled + "░" * (width - filled) + f" {round(fraction * 100)}%"


def soak_progress(release: Release, now: datetime) -> str | None:
    """The soak's progress line while it runs."""
    soak = release.find_step("soak")
    if soak is None or soak.status is not StepStatus.TIMING or soak.deadline is None:
        return None
    total = soak.current.seconds
    left = max((soak.deadline - now).total_seconds(), 0.0)
    done = total - left
    return (
        f"Soak {progress_bar(done / total if total else 1.0)} "
        f"({_minutes(done)} of {_minutes(total)}, {_minutes(left)} left)"
    )


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f}m" if seconds >= 90 else f"{seconds:.0f}s"


def step_line(
    step: Step, release: Release, tz: ZoneInfo, links: Mapping[str, Sequence[str]] | None = None
) -> str:
    """One line of the card or status: mark, title, and who or what it waits for (with the
    links of a running action's runs, from `links` by step key)."""
    line = f"{step_mark(step)} {step.title}"
    if step.status is StepStatus.ACTING:
        urls = list((links or {}).get(step.key, ()))
        return line + (f" — running: {', '.join(urls)}" if urls else " — the bot is starting it")
    if step.status is StepStatus.AWAITING:
        line += f" — waiting on {mention(release.roles.user(step.owner))}"
        if step.current.manual:
            line += " (manual confirmation)"
    elif step.status is StepStatus.BLOCKED and step.reason:
        line += f" — stopped: {echo(step.reason)}"
    elif step.status is StepStatus.BLOCKED:
        line += f" — blocked: {esc(', '.join(step.failing))}"
    elif step.status is StepStatus.RUNNING:
        line += " — the bot is checking"
    elif step.status is StepStatus.TIMING and step.deadline is not None:
        line += f" — until {clock_time(step.deadline, tz)}"
    elif step.status is StepStatus.DONE and step.outcome is not None:
        line += f" — {OUTCOME_WORDS[step.outcome]}"
    return line


def monitoring_lines(samples: Sequence[Sample], config: Config) -> list[str]:
    """Sparklines of the 5xx ratio and p95 over the latest monitoring ticks."""
    if not samples:
        return []
    ratios = [s.ratio for s in samples]
    p95s = [s.p95 for s in samples]
    last = samples[-1]
    ratio = last.ratio
    p95 = last.p95
    ratio_text = f"{ratio:.2%}" if isinstance(ratio, float) else "no data"
    p95_text = f"{p95 * 1000:.0f}ms" if isinstance(p95, float) else "no data"
    slo = config.monitoring.slo_p95.total_seconds()
    return [
        f"5xx {sparkline(ratios)} {ratio_text}",
        f"p95 {sparkline(p95s, low=0.0, high=max(slo * 1.5, max(_numbers(p95s), default=0.0)))}"
        f" {p95_text} (SLO {slo * 1000:.0f}ms)",
    ]


def _numbers(values: Sequence[object]) -> list[float]:
    return [float(v) for v in values if isinstance(v, int | float)]


@dataclass(frozen=True)
class HandoverMark:
    """A role that changed hands, as the card shows it."""

    role: Role
    old: str
    at: datetime


ROLE_TITLES: Mapping[Role, str] = {
    Role.COMMANDER: "Commander",
    Role.ON_CALL: "On-call",
    Role.BACKEND: "Backend",
    Role.FRONTEND: "Frontend",
}


def shortened_line(shortened: Shortened) -> str:
    """What a release runs below the runbook's minimums, to what, and why."""
    parts = []
    if shortened.soak is not None:
        parts.append(
            f"soak {format_duration(shortened.soak)} (the runbook says at least "
            f"{format_duration(SOAK_FLOOR)})"
        )
    if shortened.heightened is not None:
        parts.append(
            f"heightened monitoring {format_duration(shortened.heightened)} (the runbook says "
            f"at least {format_duration(HEIGHTENED_FLOOR)})"
        )
    return f"⚠️ Runbook shortened: {' and '.join(parts)}. Why: {esc(shortened.reason)}"


def closed_line(closed_at: datetime, tz: ZoneInfo) -> str:
    """The release is closed: monitoring over, the final record posted."""
    return (
        f"🔒 Closed at {when(closed_at, tz)}: heightened monitoring is over and the final "
        f"record is in the thread."
    )


def render_card(
    release: Release,
    config: Config,
    now: datetime,
    frozen_at: datetime | None = None,
    samples: Sequence[Sample] = (),
    links: Mapping[str, Sequence[str]] | None = None,
    *,
    shortened: Shortened | None = None,
    closed_at: datetime | None = None,
    handovers: Sequence[HandoverMark] = (),
) -> Rendered:
    """The release card: status, owners (and who took a role over from whom, when), phases
    with marks, what waits on whom, soak progress (and the links of running actions, by step
    key); near the top, the runbook minimums it runs below and whether it is closed."""
    tz = config.tz
    icon = STATUS_ICONS[release.status]
    head = f"{icon} Release {release.version}{' (major)' if release.major else ''}"
    head += f" — {STATUS_TITLES[release.status]}"
    notices = [shortened_line(shortened)] if shortened else []
    if closed_at is not None:
        notices.append(closed_line(closed_at, tz))
    latest = {h.role: h for h in handovers}

    def holder(role: Role) -> str:
        words = f"{ROLE_TITLES[role]} {mention(release.roles.user(role))}"
        mark = latest.get(role)
        if mark is not None:
            words += f" (from {mention(mark.old)} at {clock_time(mark.at, tz)})"
        return words

    owners = " · ".join(holder(role) for role in Role)
    phases = []
    for phase in Phase:
        steps = [s for s in release.steps if s.phase is phase]
        if steps:
            phases.append(f"{phase_mark(steps)} {PHASE_TITLES[phase]}")
    services = esc(", ".join(release.services))
    lines = [head, owners, f"Services: {services}", "  ".join(phases)]
    if release.status is ReleaseStatus.SCHEDULED and release.kickoff_at:
        lines.append(f"Go-live at {when(release.kickoff_at, tz)}")
    if release.status is ReleaseStatus.ACTIVE:
        position = describe_position(release)
        lines.append(position[:1].upper() + position[1:])
    elif release.reason:
        lines.append(f"Reason: {echo(release.reason)}")
    bar = soak_progress(release, now)
    if bar:
        lines.append(bar)
    lines.extend(monitoring_lines(samples, config))
    if release.frozen:
        since = f" since {clock_time(frozen_at, tz)}" if frozen_at else ""
        lines.append(f"🧊 Merges frozen{since}")
    text = "\n".join(lines[:1] + notices + lines[1:])
    current = release.phase
    detail = [
        step_line(s, release, tz, links)
        for s in release.steps
        if current is not None and s.phase is current
    ]
    blocks: Blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": head[:150], "emoji": True}},
        *([context("\n".join(notices))] if notices else []),
        section(owners + f"\nServices: {services}"),
        section("  ".join(phases)),
    ]
    if detail:
        blocks.append(section("\n".join(detail)))
    tail = [line for line in lines[4:]]
    if tail:
        blocks.append(context("\n".join(tail)))
    return Rendered(text, blocks)


def render_status(
    release: Release,
    config: Config,
    now: datetime,
    links: Mapping[str, Sequence[str]] | None = None,
    *,
    shortened: Shortened | None = None,
    closed_at: datetime | None = None,
) -> str:
    """Every step with its mark and what it waits for: the answer to `/golive status`."""
    tz = config.tz
    card = render_card(release, config, now).text.splitlines()
    notices = [shortened_line(shortened)] if shortened else []
    if closed_at is not None:
        notices.append(closed_line(closed_at, tz))
    lines = [*card[:1], *notices, describe_position(release)]
    for phase in Phase:
        steps = [s for s in release.steps if s.phase is phase]
        if not steps:
            continue
        lines.append(f"{phase_mark(steps)} *{PHASE_TITLES[phase]}*")
        lines.extend(f"    {step_line(s, release, tz, links)}" for s in steps)
    if release.waivers:
        lines.append(f"Waived: {esc(', '.join(sorted(release.waivers)))}")
    bar = soak_progress(release, now)
    if bar:
        lines.append(bar)
    return "\n".join(lines)
