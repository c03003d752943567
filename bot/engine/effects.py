"""Effects → outbox: what each runbook effect means in messages, files and records.

Called by the service inside the transaction that applies the transition, so a message is
queued exactly when the change that causes it is committed. Every sentence comes from
`bot.render`; this module decides only what goes where.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from bot.domain.clock import Clock, SystemClock
from bot.domain.config import Config
from bot.domain.events import (
    ActionFinished,
    CheckFinished,
    Effect,
    Event,
    FreezeChanged,
    FreezeTaken,
    HandedOver,
    MergeAllowed,
    PhaseDone,
    Reminded,
    RollbackProposed,
    RollbackStarted,
    RunAction,
    RunCheck,
    Snoozed,
    StageOpened,
    StagePassed,
    StatusChanged,
    StepBlocked,
    StepDone,
    StepStopped,
    TimerElapsed,
    WaitingForKickoff,
    Waived,
)
from bot.domain.model import Outcome, Release, ReleaseStatus, Role, StageKind, Step, StepStatus
from bot.domain.plan import rollback_order
from bot.domain.records import ActionRun, CheckRow
from bot.domain.redact import safe_url
from bot.engine.actions import ROLLBACK, STARTED, new_token
from bot.engine.checkbook import notes_in_github, stored_results
from bot.engine.home import HOME_KIND, HomeViews, waiting_keys
from bot.engine.records import DRAWN_LATER, SOAK_CHART, record_markdown
from bot.engine.writeback import WRITE_BACK_CHANNEL, WRITE_BACK_KIND, write_back_job
from bot.render import card, messages
from bot.render.fmt import Rendered
from bot.render.release_notes import Thread, record_section
from bot.store import ReleaseRecord, Store
from checks.github_release import notes_release
from checks.rollback import targets_from

REMINDER_KIND = "reminder"  # a reminder in the release thread (with its Snooze button)
DM_KIND = "dm"  # a direct message to `user` (its `channel` is the user id, a queue of its own)


@dataclass(frozen=True)
class Context:
    """Extra facts about an action that the runbook does not need but the record does."""

    via: str = "command"
    note: str | None = None
    event: Event | None = None


PLAIN = Context()
SLACK_TS = re.compile(r"\d+\.\d+")  # a message timestamp as Slack gives it: 1355517523.000005
# The kind of the message that asks on-call to confirm a rollback plan (button or reaction).
CONFIRM_KIND = "confirm"


@dataclass(frozen=True)
class PlanLine:
    """One changed service in a rollback plan: its image and the target the check found."""

    service: str
    image: str
    target: str | None


class Effects:
    """Turns the effects of a transition into outbox rows and records."""

    def __init__(
        self, config: Config, store: Store, *, clock: Clock | None = None, app_home: bool = False
    ) -> None:
        """`app_home`: keep each person's App Home tab up to date (Slack; not the console),
        drawn at the time `clock` tells."""
        self.config = config
        self.store = store
        self.homes = HomeViews(store, config, clock or SystemClock()) if app_home else None
        self._handlers: Mapping[type, Callable[[ReleaseRecord, Any, datetime, Context], None]] = {
            StageOpened: self._stage_opened,
            RunCheck: self._nothing,
            RunAction: self._nothing,
            RollbackProposed: self._rollback_proposed,
            RollbackStarted: self._rollback_started,
            StagePassed: self._stage_passed,
            StepBlocked: self._step_blocked,
            StepDone: self._nothing,
            PhaseDone: self._phase_done,
            Waived: self._waived,
            FreezeChanged: self._freeze_changed,
            MergeAllowed: self._merge_allowed,
            FreezeTaken: self._freeze_taken,
            StatusChanged: self._status_changed,
            HandedOver: self._handed_over,
            WaitingForKickoff: self._nothing,
            StepStopped: self._step_stopped,
            Reminded: self._reminded,
            Snoozed: self._snoozed,
        }

    def apply(self, record: ReleaseRecord, effect: Effect, now: datetime, ctx: Context) -> None:
        """Queue what one effect means (inside the caller's transaction)."""
        self._handlers[type(effect)](record, effect, now, ctx)

    # -- where messages go ---------------------------------------------------------------------

    def thread(
        self,
        record: ReleaseRecord,
        rendered: Rendered,
        now: datetime,
        kind: str = "thread",
        step_key: str | None = None,
    ) -> int:
        """Queue a message in the release thread (under the card)."""
        release = record.release
        return self.store.enqueue(
            release_id=release.id,
            channel=release.channel,
            kind=kind,
            text=rendered.text,
            blocks=rendered.blocks,
            at=now,
            thread_of=record.card_message,
            step_key=step_key,
        )

    def post_channel(
        self,
        record: ReleaseRecord,
        rendered: Rendered,
        now: datetime,
        channels: Sequence[str] | None = None,
    ) -> None:
        """Queue a message to the release channel (or to the channels given)."""
        release = record.release
        targets = channels if channels is not None else [release.channel]
        for channel in targets:
            self.store.enqueue(
                release_id=release.id,
                channel=channel,
                kind="channel" if channel == release.channel else "announce",
                text=rendered.text,
                blocks=rendered.blocks,
                at=now,
            )

    def announce_channels(self, record: ReleaseRecord) -> list[str]:
        """The release channel and every announce channel, each once."""
        return [record.release.channel] + [
            c for c in self.config.slack.announce_channels if c != record.release.channel
        ]

    def announce(self, record: ReleaseRecord, rendered: Rendered, now: datetime) -> None:
        """Post to the release channel and every announce channel."""
        self.post_channel(record, rendered, now, self.announce_channels(record))

    def update(self, record: ReleaseRecord, target: int, rendered: Rendered, now: datetime) -> None:
        """Queue an edit of a message already queued (older queued edits are superseded)."""
        original = self.store.message(target)
        if original is None:
            return
        update = self.store.enqueue(
            release_id=record.release.id,
            channel=original.channel,
            kind="update",
            text=rendered.text,
            blocks=rendered.blocks,
            at=now,
            update_of=target,
            thread_of=original.thread_of,
            step_key=original.step_key,
        )
        self.store.supersede_updates(target, update)

    def refresh_card(self, record: ReleaseRecord, now: datetime) -> None:
        """Queue an update of the release card."""
        if record.card_message is None:
            return
        samples = self.store.samples(record.release.id)[-30:]
        handovers = [
            card.HandoverMark(Role(e.data["role"]), e.data["old"], e.at)
            for e in self.store.events(record.release.id, "handed_over")
            if e.data.get("role") in {r.value for r in Role}
        ]
        rendered = card.render_card(
            record.release,
            self.config,
            now,
            record.frozen_at,
            samples=samples,
            shortened=record.shortened,
            closed_at=record.closed_at,
            links=self.action_links(record.release),
            handovers=handovers,
        )
        self.update(record, record.card_message, rendered, now)

    def action_links(self, release: Release) -> dict[str, list[str]]:
        """The links of the runs of every step whose action is running, by step key."""
        return {
            step.key: [
                run.url
                for run in self.store.action_runs(release.id, step.key, step.attempt)
                if run.url
            ]
            for step in release.steps
            if step.status is StepStatus.ACTING
        }

    def action_message(self, record: ReleaseRecord, step: Step, now: datetime) -> None:
        """Rewrite a step's message with its action: who approved, each run, its link."""
        release = record.release
        request = self.store.latest_request(release.id, step.key)
        if request is None:
            return
        approvals = [a for a in self.store.approvals(release.id) if a.step_key == step.key]
        every = self.store.action_runs(release.id, step.key)
        runs = [r for r in every if r.attempt == step.attempt]
        again = any(r.attempt < step.attempt for r in every)
        rendered = messages.render_action_status(
            release, step, approvals[-1] if approvals else None, runs, self.config.tz, again
        )
        self.update(record, request.id, rendered, now)

    def rollback_moved(self, record: ReleaseRecord, run: ActionRun, now: datetime) -> None:
        """A service's rollback started (with its link) or ended: said in the thread."""
        begun = run.state == "running" and run.detail == STARTED
        if begun or run.state in ("succeeded", "failed"):
            self.thread(record, messages.render_rollback_run(run), now, step_key=ROLLBACK)

    def rollback_done(self, record: ReleaseRecord, now: datetime) -> None:
        """Every rollback run ended: the outcome in the channel, the record attached again."""
        runs = self.store.action_runs(record.release.id, ROLLBACK)
        rendered = messages.render_rollback_done(record.release, runs)
        self.post_channel(record, rendered, now)
        self._upload_record(record, now)

    def refresh_homes(self, before: Release, after: Release, now: datetime) -> None:
        """Queue a fresh App Home view for everyone whose waiting steps changed (and who has
        opened golive's Home tab: the others get theirs when they first open it)."""
        if self.homes is None:
            return
        old, new = waiting_keys(before), waiting_keys(after)
        for user in sorted(set(old) | set(new)):
            if old.get(user) != new.get(user) and self.store.has_sent(HOME_KIND, user):
                self.homes.queue(user, now)

    def home(self, user: str, now: datetime) -> None:
        """Queue a fresh App Home view for one person (they opened the tab)."""
        if self.homes is not None:
            self.homes.queue(user, now)

    def latest_results(self, release_id: int, step: Step) -> list[CheckRow]:
        """The stored verdicts of a step's newest check run."""
        return [
            r for r in self.store.check_results(release_id, step.key) if r.attempt == step.attempt
        ]

    # -- one handler per effect ----------------------------------------------------------------

    def _nothing(self, record: ReleaseRecord, effect: Effect, now: datetime, ctx: Context) -> None:
        return None

    def _stage_opened(
        self, record: ReleaseRecord, effect: StageOpened, now: datetime, ctx: Context
    ) -> None:
        release = record.release
        step = release.step(effect.step)
        stage = step.stages[effect.stage]
        if stage.kind is StageKind.APPROVE:
            rendered = messages.render_approval_request(
                release, step, self.config.slack.approve_reaction, self._link(release, step)
            )
            self.thread(record, rendered, now, kind="approval", step_key=step.key)
        elif stage.kind is StageKind.TIMER:
            self.thread(record, messages.render_timer_started(step, self.config.tz), now)
        elif stage.kind is StageKind.ACTION:
            self.action_message(record, step, now)

    def _link(self, release: Release, step: Step) -> str | None:
        notes = self.config.preconditions.release_notes
        if step.key != "notes" or notes is None:
            return None
        if notes.url is not None:
            return safe_url(notes.url.replace("{version}", release.version))
        found = notes_release(stored_results(self.store.check_results(release.id, "notes")))
        return found.html_url if found else None

    def _stage_passed(
        self, record: ReleaseRecord, effect: StagePassed, now: datetime, ctx: Context
    ) -> None:
        release = record.release
        step = release.step(effect.step)
        stage = step.stages[effect.stage]
        if effect.outcome in (Outcome.APPROVED, Outcome.MANUAL) and effect.by:
            self.store.add_approval(
                release.id,
                step.key,
                effect.stage,
                effect.by,
                effect.outcome.value,
                ctx.via,
                ctx.note,
                now,
            )
            message = self.store.latest_request(release.id, step.key)
            if message is not None:
                rendered = messages.render_approved(
                    release,
                    step,
                    effect.stage,
                    effect.by,
                    effect.outcome,
                    now,
                    self.config.tz,
                    ctx.note,
                )
                self.update(record, message.id, rendered, now)
        elif stage.kind is StageKind.CHECK and isinstance(ctx.event, CheckFinished):
            results = self.latest_results(release.id, step)
            self.thread(record, messages.render_check_results(step, results, ok=True), now)
        elif stage.kind is StageKind.ACTION and isinstance(ctx.event, ActionFinished):
            ran = replace(
                step, status=StepStatus.DONE, stage=effect.stage, attempt=ctx.event.attempt
            )
            self.action_message(record, ran, now)
            results = [
                r
                for r in self.store.check_results(release.id, step.key)
                if r.attempt == ctx.event.attempt
            ]
            self.thread(record, messages.render_check_results(step, results, ok=True), now)
        elif stage.kind is StageKind.TIMER:
            self.thread(record, messages.render_timer_done(step, stage, now, self.config.tz), now)

    def _step_blocked(
        self, record: ReleaseRecord, effect: StepBlocked, now: datetime, ctx: Context
    ) -> None:
        if isinstance(ctx.event, TimerElapsed):
            self.thread(
                record,
                messages.render_soak_blocked(record.release, effect.failing, ctx.event.evidence),
                now,
                step_key=effect.step,
            )
            return
        if not isinstance(ctx.event, CheckFinished | ActionFinished):
            return  # a partial waiver: the waiver message says what still fails
        step = record.release.step(effect.step)
        if isinstance(ctx.event, ActionFinished):
            self.action_message(record, step, now)
        results = self.latest_results(record.release.id, step)
        rendered = messages.render_step_blocked(record.release, step, results)
        self.thread(record, rendered, now, step_key=step.key)

    def _phase_done(
        self, record: ReleaseRecord, effect: PhaseDone, now: datetime, ctx: Context
    ) -> None:
        rendered = messages.render_phase_done(record.release, effect.phase, now, self.config.tz)
        self.thread(record, rendered, now)

    def _waived(self, record: ReleaseRecord, effect: Waived, now: datetime, ctx: Context) -> None:
        release = record.release
        self.store.add_waiver(release.id, effect.name, effect.step, effect.user, effect.reason, now)
        step = release.step(effect.step)
        still = step.failing if step.status is StepStatus.BLOCKED else ()
        rendered = messages.render_waived(step, effect.name, effect.user, effect.reason, still)
        self.thread(record, rendered, now)

    def _freeze_changed(
        self, record: ReleaseRecord, effect: FreezeChanged, now: datetime, ctx: Context
    ) -> None:
        others = [r.version for r in self.store.frozen_releases() if r.id != record.release.id]
        rendered = messages.render_freeze(
            record.release, self.config, effect.frozen, now, () if effect.frozen else others
        )
        self.announce(record, rendered, now)

    def _merge_allowed(
        self, record: ReleaseRecord, effect: MergeAllowed, now: datetime, ctx: Context
    ) -> None:
        a = effect.allowed
        self.store.add_merge_allowance(
            record.release.id, a.number, a.sha, a.title, a.user, a.reason, now
        )
        rendered = messages.render_merge_allowed(
            a.number, a.sha, a.title, a.user, a.reason, self.config
        )
        self.thread(record, rendered, now)

    def _freeze_taken(
        self, record: ReleaseRecord, effect: FreezeTaken, now: datetime, ctx: Context
    ) -> None:
        rendered = messages.render_freeze_handed_on(record.release.version, effect.to, effect.by)
        self.thread(record, rendered, now)

    def _status_changed(
        self, record: ReleaseRecord, effect: StatusChanged, now: datetime, ctx: Context
    ) -> None:
        release = record.release
        if effect.status is ReleaseStatus.ACTIVE:
            if release.kickoff_at is not None:
                self.thread(record, messages.render_reminder(release, self.config), now)
            return
        self._watch_after(record, effect.status, now)
        plan = self.rollback_plan(record) if effect.status is ReleaseStatus.ROLLED_BACK else []
        rendered = messages.render_ended(
            release,
            self.config,
            effect.by,
            effect.reason,
            messages.validation_summary(release),
            [messages.rollback_plan_line(p.service, p.image, p.target) for p in plan],
            shortened=record.shortened,
        )
        self.announce(record, rendered, now)
        if effect.status is ReleaseStatus.COMPLETED:
            self._upload_chart(record, now)
        if effect.status is ReleaseStatus.COMPLETED:
            self.write_back(record, now)  # first, so the record says it is on its way
        self._upload_record(record, now)

    def _file(
        self,
        record: ReleaseRecord,
        channel: str,
        file: dict[str, str],
        text: str,
        now: datetime,
        in_thread: bool,
    ) -> None:
        self.store.enqueue(
            release_id=record.release.id,
            channel=channel,
            kind="file",
            text=text,
            blocks=None,
            at=now,
            thread_of=record.card_message if in_thread else None,
            file=file,
        )

    def _upload_chart(self, record: ReleaseRecord, now: datetime) -> None:
        """The soak chart goes with the completion announcement, wherever it was posted."""
        if not self.store.samples(record.release.id, "soak"):
            return
        named = messages.chart_file(record.release.version)
        file = {"filename": named.filename, "title": named.title, DRAWN_LATER: SOAK_CHART}
        for channel in self.announce_channels(record):
            self._file(record, channel, file, named.text, now, in_thread=False)

    def _upload_record(self, record: ReleaseRecord, now: datetime, final: bool = False) -> None:
        """The release record (Markdown) is attached to the release thread when it ends, and
        the final one when it closes."""
        version = record.release.version
        named = messages.final_record_file(version) if final else messages.record_file(version)
        file = {
            "filename": named.filename,
            "title": named.title,
            "content": record_markdown(self.store, self.config, record.release.id),
        }
        self._file(record, record.release.channel, file, named.text, now, in_thread=True)

    def close(self, release_id: int, now: datetime) -> None:
        """Monitoring is over: the release closes, its final record goes to the thread, the
        release notes get the final section, and the card says so."""
        self.store.mark_closed(release_id, now)
        record = self.store.load(release_id)
        if self.written_back(release_id):
            self.write_back(record, now)  # first, so the final record says it is on its way
        self._upload_record(record, now, final=True)
        self.refresh_card(record, now)

    def written_back(self, release_id: int) -> bool:
        """True once golive has queued its section for the release's GitHub notes."""
        return any(m.kind == WRITE_BACK_KIND for m in self.store.messages(release_id))

    def thread_link(self, record: ReleaseRecord) -> Thread:
        """The release thread: a Slack permalink when the workspace and the card are known."""
        channel = record.release.channel
        workspace = self.config.slack.workspace_url
        card = self.store.message(record.card_message) if record.card_message else None
        if workspace is None or card is None or not SLACK_TS.fullmatch(card.ts or ""):
            return Thread(channel)  # not in Slack yet (or not Slack at all: the console)
        assert card.ts is not None
        return Thread(
            channel, f"{workspace.rstrip('/')}/archives/{channel}/p{card.ts.replace('.', '')}"
        )

    def write_back(self, record: ReleaseRecord, now: datetime) -> bool:
        """Queue golive's section for the release's GitHub notes (§7); False when the notes are
        not a GitHub release golive found published."""
        if not notes_in_github(self.config):
            return False
        rid = record.release.id
        found = notes_release(stored_results(self.store.check_results(rid, "notes")))
        if found is None:
            return False
        section = record_section(
            record,
            self.config,
            notes=self.store.notes(rid),
            waivers=self.store.waivers(rid),
            approvals=self.store.approvals(rid),
            events=self.store.events(rid),
            thread=self.thread_link(record),
            now=now,
        )
        self.store.enqueue(
            release_id=rid,
            channel=WRITE_BACK_CHANNEL,
            kind=WRITE_BACK_KIND,
            text=write_back_job(found.id, section),
            blocks=None,
            at=now,
        )
        return True

    def _watch_after(self, record: ReleaseRecord, status: ReleaseStatus, now: datetime) -> None:
        """Heightened monitoring after completion, and continued monitoring after a rollback."""
        mon = self.config.monitoring
        if status is ReleaseStatus.ABORTED:
            self.store.set_monitoring(record.release.id, None, None, closed=True)
            return
        period = "heightened" if status is ReleaseStatus.COMPLETED else "rollback"
        until = now + mon.heightened.duration
        if mon.prometheus_url is None:
            rendered = messages.render_watching_by_hand(record.release, until, self.config.tz)
            self.thread(record, rendered, now)
        self.store.set_monitoring(record.release.id, period, until)  # its end closes the release

    def _handed_over(
        self, record: ReleaseRecord, effect: HandedOver, now: datetime, ctx: Context
    ) -> None:
        """Say who holds the role now, and address its waiting requests to them in place."""
        release = record.release
        readdressed = 0
        for step in release.steps:
            if step.status is not StepStatus.AWAITING or step.owner is not effect.role:
                continue
            request = self.store.latest_request(release.id, step.key)
            if request is None:
                continue
            rendered = messages.render_approval_request(
                release, step, self.config.slack.approve_reaction, self._link(release, step)
            )
            self.update(record, request.id, rendered, now)
            readdressed += 1
        rendered = messages.render_handed_over(
            release, effect.old, effect.new, effect.role, readdressed
        )
        self.thread(record, rendered, now)

    def _step_stopped(
        self, record: ReleaseRecord, effect: StepStopped, now: datetime, ctx: Context
    ) -> None:
        """The stop in the thread (the commander mentioned), the request rewritten without its
        buttons, and the rollback plan when on-call stopped the soak or a verification."""
        release = record.release
        step = release.step(effect.step)
        plan = (
            [
                messages.rollback_plan_line(p.service, p.image, p.target)
                for p in self.rollback_plan(record)
            ]
            if effect.rollback
            else []
        )
        rendered = messages.render_stopped(release, step, effect.by, effect.reason, plan)
        self.thread(record, rendered, now, step_key=step.key)
        request = self.store.latest_request(release.id, step.key)
        if request is not None and step.current.kind is StageKind.APPROVE:
            quiet = messages.render_request_stopped(
                step, step.current, effect.by, effect.reason, now, self.config.tz
            )
            self.update(record, request.id, quiet, now)

    def _reminded(
        self, record: ReleaseRecord, effect: Reminded, now: datetime, ctx: Context
    ) -> None:
        """A reminder in the thread (with Snooze) and a direct message to the owner linking to
        the step's request."""
        release = record.release
        step = release.step(effect.step)
        wait = self.store.waits(release.id).get(step.key)
        waited = now - wait.since if wait is not None else timedelta(0)
        kind = "escalation" if effect.escalate_to else "reminder"
        self.store.add_reminder(release.id, step.key, kind, now)
        reminder = messages.render_step_reminder(
            release, step, effect.owner, effect.escalate_to, waited
        )
        self.thread(record, reminder, now, kind=REMINDER_KIND, step_key=step.key)
        request = self.store.latest_step_message(release.id, step.key)
        dm = messages.render_reminder_dm(
            release, step, waited, request.id if request is not None else None
        )
        self.store.enqueue(  # queued by person: a direct message never holds the channel
            release_id=release.id,
            channel=effect.owner,
            kind=DM_KIND,
            text=dm.text,
            blocks=dm.blocks,
            at=now,
            user=effect.owner,
            step_key=step.key,
        )

    def _snoozed(self, record: ReleaseRecord, effect: Snoozed, now: datetime, ctx: Context) -> None:
        """The snooze recorded, said in the thread, and the last reminder's button removed."""
        release = record.release
        step = release.step(effect.step)
        self.store.add_reminder(
            release.id, step.key, "snooze", now, user=effect.by, until=effect.until
        )
        tz = self.config.tz
        self.thread(record, messages.render_snoozed(step, effect.by, effect.until, tz), now)
        reminder = self.store.latest_request(release.id, step.key, REMINDER_KIND)
        if reminder is not None:
            quiet = messages.render_reminder_quiet(reminder.text, effect.by, effect.until, tz)
            self.update(record, reminder.id, quiet, now)

    def _rollback_proposed(
        self, record: ReleaseRecord, effect: RollbackProposed, now: datetime, ctx: Context
    ) -> None:
        """The plan, with a button for on-call to confirm it, in the release channel."""
        release = record.release
        lines = [
            messages.rollback_plan_line(p.service, p.image, p.target)
            for p in self.rollback_plan(record)
        ]
        order = [", ".join(group) for group in rollback_order(release)]
        rendered = messages.render_rollback_proposal(
            release, effect.by, effect.reason, lines, order
        )
        self.store.enqueue(
            release_id=release.id,
            channel=release.channel,
            kind=CONFIRM_KIND,
            text=rendered.text,
            blocks=rendered.blocks,
            at=now,
            step_key=ROLLBACK,
        )

    def _rollback_started(
        self, record: ReleaseRecord, effect: RollbackStarted, now: datetime, ctx: Context
    ) -> None:
        """Record the runs to make, group by group, and rewrite the proposal as confirmed."""
        release = record.release
        action = self.config.action(ROLLBACK)
        kind = action.kind if action is not None else "none"
        for seq, group in enumerate(effect.order):
            for target in group:
                self.store.add_action_run(
                    release.id, ROLLBACK, 1, seq, target, kind, new_token(), now
                )
        proposal = self.store.latest_message(release.id, CONFIRM_KIND)
        if proposal is not None:
            rendered = messages.render_rollback_confirmed(release, effect.by, now, self.config.tz)
            self.update(record, proposal.id, rendered, now)

    def rollback_plan(self, record: ReleaseRecord) -> list[PlanLine]:
        """Each changed service with the rollback target the rollback check found."""
        stored = self.store.check_results(record.release.id, "rollback")
        targets = targets_from([r.evidence for r in stored])
        lines = []
        for name in record.release.services:
            service = self.config.service(name)
            image = service.image if service and service.image else name
            lines.append(PlanLine(name, image, targets.get(name)))
        return lines
