"""The release record: a Markdown document a finance auditor would accept, and the history list.

The record is a file, not a Slack message: Slack does not parse it, so mentions and links in it
notify nobody. Markdown viewers do parse it, so text golive did not write (check summaries,
reasons, notes) has Markdown's link, HTML and emphasis characters backslash-escaped (`_md`): a
provider title cannot become a disguised link or raw HTML in the record either.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import partial
from typing import Any

from bot.domain.config import Config
from bot.domain.model import PHASE_TITLES, Phase, ReleaseStatus
from bot.domain.records import (
    ActionRun,
    Alert,
    Approval,
    CheckRow,
    MergeAllowance,
    Note,
    OutboxRow,
    ReleaseRecord,
    ReleaseRow,
    Sample,
    TimelineEvent,
    Waiver,
)
from bot.domain.redact import safe_url
from bot.render.card import OUTCOME_WORDS, closed_line, shortened_line
from bot.render.chart import SoakSample, render_soak_chart
from bot.render.fmt import STATUS_TITLES, when


def _t(value: datetime | None, config: Config) -> str:
    return when(value, config.tz) if value else "—"


_MARKDOWN = re.compile(r"([\\`*_\[\]<>|!#~])")


def _md(value: Any) -> str:
    """Foreign text on one line of Markdown, shown as written (CommonMark backslash escapes)."""
    text = str(value if value is not None else "")
    return _MARKDOWN.sub(r"\\\1", " ".join(text.splitlines()))


def release_record(
    record: ReleaseRecord,
    config: Config,
    *,
    approvals: Sequence[Approval],
    results: Sequence[CheckRow],
    waivers: Sequence[Waiver],
    alerts: Sequence[Alert],
    samples: Sequence[Sample],
    notes: Sequence[Note],
    events: Sequence[TimelineEvent],
    actions: Sequence[ActionRun] = (),
    allowances: Sequence[MergeAllowance] = (),
    writebacks: Sequence[OutboxRow] = (),
) -> str:
    """The whole story of a release: owners, steps, approvals, checks, waivers, merges allowed
    during its freeze, notes, timeline; where its issues and follow-ups were written, and what
    verification left in the product.

    `writebacks` are the queued writes of golive's section into the GitHub release's notes."""
    release = record.release
    roles = release.roles
    lines = [f"# Release {release.version} — {STATUS_TITLES[release.status]}", ""]
    if record.shortened:
        lines += [f"> {shortened_line(record.shortened)}", ""]
    if record.closed_at:
        lines += [f"> {closed_line(record.closed_at, config.tz)}", ""]
    lines += [
        f"- Release id: {release.id}; channel <#{release.channel}>",
        f"- Started: {when(record.created_at, config.tz)} by <@{record.created_by}>",
        f"- Ended: {when(record.ended_at, config.tz)}",
        f"- Major: {'yes' if release.major else 'no'}",
        f"- Services: {_md(', '.join(release.services))}",
        f"- Commander <@{roles.commander}>, on-call <@{roles.on_call}>, backend "
        f"<@{roles.backend}>, frontend <@{roles.frontend}>",
    ]
    for e in events:
        if e.type == "handed_over":
            data = e.data
            role = str(data.get("role", "commander")).replace("_", "-")
            lines.append(
                f"- {_t(e.at, config)}: {role} handed over from <@{data.get('old')}> to "
                f"<@{data.get('new')}>" + (f" by <@{e.actor}>" if e.actor else "")
            )
    if release.kickoff_at:
        lines.append(f"- Scheduled go-live: {when(release.kickoff_at, config.tz)}")
    if release.reason:
        lines.append(f"- Reason ({release.status.value}): {_md(release.reason)}")
    if release.status is ReleaseStatus.ROLLED_BACK or release.frozen:
        lines.append(f"- Merge freeze: {'still on' if release.frozen else 'lifted'}")
    lines += ["", "## Steps", "", "| phase | step | result |", "|---|---|---|"]
    for step in release.steps:
        word = OUTCOME_WORDS[step.outcome] if step.outcome else step.status.value
        lines.append(f"| {PHASE_TITLES[Phase(step.phase)]} | {step.title} | {word} |")
    lines += ["", "## Approvals", ""]
    if approvals:
        lines += ["| when | step | who | how | note |", "|---|---|---|---|---|"]
        for a in approvals:
            how = "confirmed by hand" if a.outcome == "manual" else "approved"
            lines.append(
                f"| {_t(a.at, config)} | {a.step_key} | <@{a.user}> | {how} via "
                f"{a.via} | {_md(a.note)} |"
            )
    else:
        lines.append("None.")
    lines += ["", "## Check results", ""]
    if results:
        lines += ["| when | step | check | status | summary |", "|---|---|---|---|---|"]
        for r in results:
            lines.append(
                f"| {_t(r.at, config)} | {r.step_key} #{r.attempt} | {_md(r.name)} | "
                f"{r.status} | {_md(r.summary)} |"
            )
    else:
        lines.append("None.")
    if actions:
        lines += [
            "",
            "## Actions",
            "",
            "| started | step | for | outcome | run | detail |",
            "|---|---|---|---|---|---|",
        ]
        for run in actions:
            started = when(run.started_at, config.tz) if run.started_at else "—"
            lines.append(
                f"| {started} | {run.step_key} #{run.attempt} | {run.target or '—'} | "
                f"{run.state} | {_md(run.url or run.run_id or '')} | {_md(run.detail)} |"
            )
    lines += ["", "## Waivers", ""]
    lines += [
        f"- {_t(w.at, config)}: <@{w.user}> waived {_md(w.name)} ({w.step_key}): {_md(w.reason)}"
        for w in waivers
    ] or ["None."]
    if allowances:
        lines += ["", "## Merges allowed during the freeze", ""]
        lines += [
            f"- {_t(a.at, config)}: <@{a.user}> let pull request #{a.pr_number} "
            f"({_md(a.title)}) at `{a.sha[:7]}` through: {_md(a.reason)}"
            for a in allowances
        ]
    lines += ["", "## Alerts", ""]
    lines += [f"- {_t(a.at, config)} {a.signal} {a.action}: {_md(a.summary)}" for a in alerts] or [
        "None."
    ]
    if samples:
        lines += ["", "## Monitoring", ""]
        for period in dict.fromkeys(s.period for s in samples):
            ticks = [s for s in samples if s.period == period]
            judged = [s.verdicts.get("errors", {}).get("status") for s in ticks]
            lines.append(
                f"- {period}: {len(ticks)} ticks from {_t(ticks[0].at, config)} to "
                f"{_t(ticks[-1].at, config)}; 5xx verdicts "
                + ", ".join(f"{judged.count(v)} {v}" for v in sorted({str(j) for j in judged}))
            )
    lines += ["", "## Notes and follow-ups", ""]
    lines += [
        f"- {_t(n.at, config)} {'follow-up' if n.kind == 'followup' else 'note'} by "
        f"<@{n.user}>" + (f" for <@{n.owner}>" if n.owner else "") + f": {_md(n.text)}"
        for n in notes
    ] or ["None."]
    lines += ["", "## Release notes (runbook §7)", ""]
    lines += _release_notes(record, config, writebacks)
    cleanup = [r for r in results if r.name == "verify:cleanup"]
    if cleanup:
        lines += ["", "## Test data left by verification", ""]
        lines += _test_data(cleanup[-1])
    lines += ["", "## Timeline", ""]
    for e in events:
        actor = f" <@{e.actor}>" if e.actor else ""
        detail = ", ".join(f"{k}={_md(v)}" for k, v in e.data.items() if k not in ("user",))
        lines.append(f"- {_t(e.at, config)}{actor} {e.type}" + (f" ({detail})" if detail else ""))
    return "\n".join(lines) + "\n"


def _release_notes(
    record: ReleaseRecord, config: Config, writebacks: Sequence[OutboxRow]
) -> list[str]:
    """Where the issues and follow-up actions went: into the GitHub release, or only here."""
    notes = config.preconditions.release_notes
    version = record.release.version
    if notes is None:
        return [
            "The release notes were confirmed by hand; golive cannot write into them, so the "
            "issues and follow-up actions are recorded here only."
        ]
    if notes.url is not None:
        return [
            f"The release notes live at {safe_url(notes.url.replace('{version}', version))}, a "
            f"page golive reads but cannot write: the issues and follow-up actions could not be "
            f"written back into the notes and are recorded here only."
        ]
    if not writebacks:
        return [
            f"The release notes are the GitHub release of {version}; golive writes its section "
            f"“Issues and follow-up actions” into it when the release completes and again when "
            f"heightened monitoring ends"
            + (
                ""
                if record.release.status is ReleaseStatus.COMPLETED
                else " (this release did not complete, so nothing was written)"
            )
            + "."
        ]
    latest = writebacks[-1]
    final = " (final)" if len(writebacks) > 1 else ""
    if latest.status == "delivered":
        where = f" at {latest.ts}" if latest.ts else ""
        return [
            f"golive's section “Issues and follow-up actions”{final} is written into the GitHub "
            f"release of {version}{where} ({len(writebacks)} write(s))."
        ]
    if latest.status == "failed":
        return [
            f"golive's section “Issues and follow-up actions”{final} could not be written into "
            f"the GitHub release of {version}: {_md(latest.error)}. It is recorded here."
        ]
    if not latest.attempts:
        return [
            f"golive's section “Issues and follow-up actions”{final} is being written into the "
            f"GitHub release of {version}."
        ]
    return [
        f"golive's section “Issues and follow-up actions”{final} is being written into the "
        f"GitHub release of {version} after {latest.attempts} failed attempt(s): "
        f"{_md(latest.error)}; golive keeps retrying."
    ]


def _test_data(cleanup: CheckRow) -> list[str]:
    """The leads and invoice a verification round created, and whether the invoice was voided."""
    evidence = cleanup.evidence
    leads = ", ".join(_md(i) for i in evidence.get("leads") or []) or "none"
    invoice = evidence.get("invoice") or {}
    lines = [f"- Leads created: {leads}"]
    if invoice.get("id") is not None:
        name = invoice.get("invoice_number") or "(no number)"
        fate = "voided" if evidence.get("voided") else "**remains in the product**"
        lines.append(f"- Invoice created: {_md(name)} (id {_md(invoice['id'])}) — {fate}")
    lines.append(f"- {_md(cleanup.summary)}")
    return lines


def soak_points(samples: Sequence[Sample]) -> list[SoakSample]:
    """The stored ticks of a soak as the chart draws them."""
    points = []
    for s in samples:
        verdicts = s.verdicts
        points.append(
            SoakSample(
                at=s.at,
                error_ratio=s.ratio,
                p95_seconds=s.p95,
                errors_breach=verdicts.get("errors", {}).get("status") == "fail",
                latency_breach=verdicts.get("latency", {}).get("status") == "fail",
            )
        )
    return points


def soak_chart(
    record: ReleaseRecord, samples: Sequence[Sample], baseline_ratio: float | None, config: Config
) -> Callable[[], bytes]:
    """The drawing of the soak as a PNG (5xx ratio and p95 against the baseline and the SLO),
    ready to be run where it slows nobody: a call with only plain data in it."""
    return partial(
        render_soak_chart,
        soak_points(samples),
        baseline_ratio=baseline_ratio,
        slo_seconds=config.monitoring.slo_p95.total_seconds(),
        title=f"Soak of {record.release.version}",
    )


def history_text(rows: Sequence[ReleaseRow], config: Config) -> str:
    """One line per release, newest first."""
    if not rows:
        return "No releases yet."
    lines = []
    for row in rows:
        started = when(row.created_at, config.tz)
        lines.append(
            f"#{row.id} {row.version} — {STATUS_TITLES[row.status]}, started {started} by "
            f"<@{row.created_by}> in <#{row.channel}>"
        )
    return "\n".join(lines)
