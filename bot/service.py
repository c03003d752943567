"""The release service: applies runbook transitions, persists them, queues messages, runs checks.

Every change happens in one SQLite transaction together with the outbox rows of the messages it
causes, so a crash or a chat outage delays messages but never loses them or the state. Checks run
as asyncio tasks derived from the database (a step in `running` has a check to run), and timers
are derived from deadlines stored with the steps, so a restart picks up exactly where it stopped.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx

from bot import render
from bot.checkbook import CheckBook, CheckContext
from bot.clock import Clock
from bot.config import Config, Secrets
from bot.errors import GoliveError, IllegalMove, NotAllowed, UsageError
from bot.report import history_text, release_record, soak_chart_png
from bot.runbook import (
    KICKOFF_PHASES,
    OPEN_STATUSES,
    PHASE_TITLES,
    Abort,
    Activate,
    Approve,
    CheckFinished,
    Complete,
    Effect,
    Event,
    FreezeChanged,
    HandedOver,
    Handover,
    Kickoff,
    Outcome,
    PhaseDone,
    PlannedService,
    Release,
    ReleaseStatus,
    Retry,
    Role,
    Roles,
    Rollback,
    RunCheck,
    StageKind,
    StageOpened,
    StagePassed,
    StatusChanged,
    Step,
    StepBlocked,
    StepDone,
    StepStatus,
    TimerElapsed,
    Transition,
    Unfreeze,
    WaitingForKickoff,
    Waive,
    Waived,
    describe_position,
    plan_steps,
    transition,
)
from bot.store import OutboxRow, ReleaseRecord, Store
from checks.base import CheckResult, Status, run_checks
from checks.rollback import targets_from

log = logging.getLogger(__name__)

VERSION = re.compile(r"^v?\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")
T_MINUS = timedelta(minutes=30)


@dataclass(frozen=True)
class StartRequest:
    """A parsed `/golive start`."""

    version: str
    major: bool = False
    services: tuple[str, ...] = ()
    at: datetime | None = None
    roles: Mapping[str, str] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True)
class Context:
    """Extra facts about an action that the runbook does not need but the record does."""

    via: str = "command"
    note: str | None = None
    event: Event | None = None


CheckKey = tuple[int, str, int]


class ReleaseService:
    """Runs releases: the only writer of release state."""

    def __init__(
        self,
        config: Config,
        store: Store,
        clock: Clock,
        checkbook: CheckBook,
        secrets: Secrets,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.checkbook = checkbook
        self.secrets = secrets
        self.client = client or httpx.AsyncClient(timeout=10.0)
        self._listeners: list[Callable[[], None]] = []
        # Which monitoring signals are breached for a release (the monitor fills this in).
        self.breaches_of: Callable[[int], tuple[str, ...]] = lambda release_id: ()
        self.evidence_of: Callable[[int], str | None] = lambda release_id: None
        self._inflight: dict[CheckKey, asyncio.Task[None]] = {}
        self._effects: Mapping[type, Callable[[ReleaseRecord, Any, datetime, Context], None]] = {
            StageOpened: self._stage_opened,
            RunCheck: self._nothing,
            StagePassed: self._stage_passed,
            StepBlocked: self._step_blocked,
            StepDone: self._nothing,
            PhaseDone: self._phase_done,
            Waived: self._waived,
            FreezeChanged: self._freeze_changed,
            StatusChanged: self._status_changed,
            HandedOver: self._handed_over,
            WaitingForKickoff: self._nothing,
        }

    # -- listeners -------------------------------------------------------------------------

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call `listener` after every committed change (the outbox, checks and timers wake up)."""
        self._listeners.append(listener)

    def _notify(self) -> None:
        for listener in self._listeners:
            listener()

    def changed(self) -> None:
        """Tell the workers that something was committed (for writers beside the service)."""
        self._notify()

    # -- looking releases up ---------------------------------------------------------------

    def current(self, channel: str) -> ReleaseRecord | None:
        """The newest release of a channel, whatever its status."""
        rid = self.store.latest_in_channel(channel)
        return self.store.load(rid) if rid is not None else None

    def require_current(self, channel: str) -> ReleaseRecord:
        """The newest release of a channel; a clear error when there is none."""
        record = self.current(channel)
        if record is None:
            raise IllegalMove(
                "there is no release in this channel; start one with `/golive start <version>`"
            )
        return record

    # -- applying events -------------------------------------------------------------------

    def _apply(
        self,
        release_id: int,
        event: Event,
        actor: str | None,
        context: Context = Context(),
        records: Callable[[], None] | None = None,
    ) -> Transition:
        record = self.store.load(release_id)
        now = self.clock.now()
        result = transition(record.release, event, now)
        context = dataclasses.replace(context, event=event)
        unchanged = result.release == record.release and not result.effects
        with self.store.transaction():
            if records is not None:
                records()
            if not unchanged:
                self.store.save_release(record.release, result.release, now)
                self.store.add_event(release_id, now, _event_name(event), actor, _event_data(event))
                after = self.store.load(release_id)
                for effect in result.effects:
                    self.store.add_event(
                        release_id, now, _event_name(effect), actor, _event_data(effect)
                    )
                    self._effects[type(effect)](after, effect, now, context)
                self._update_card(after, now)
        self._notify()
        return result

    # -- effects → messages and records ----------------------------------------------------

    def _nothing(self, record: ReleaseRecord, effect: Effect, now: datetime, ctx: Context) -> None:
        return None

    def _thread(
        self,
        record: ReleaseRecord,
        rendered: render.Rendered,
        now: datetime,
        kind: str = "thread",
        step_key: str | None = None,
    ) -> int:
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

    def _channel(
        self,
        record: ReleaseRecord,
        rendered: render.Rendered,
        now: datetime,
        channels: list[str] | None = None,
    ) -> None:
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

    def _announce_channels(self, record: ReleaseRecord) -> list[str]:
        return [record.release.channel] + [
            c for c in self.config.slack.announce_channels if c != record.release.channel
        ]

    def _announce(self, record: ReleaseRecord, rendered: render.Rendered, now: datetime) -> None:
        """Post to the release channel and every announce channel."""
        self._channel(record, rendered, now, self._announce_channels(record))

    def _update(
        self, record: ReleaseRecord, target: int, rendered: render.Rendered, now: datetime
    ) -> None:
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

    def _update_card(self, record: ReleaseRecord, now: datetime) -> None:
        if record.card_message is None:
            return
        samples = self.store.samples(record.release.id)[-30:]
        card = render.render_card(
            record.release, self.config, now, record.frozen_at, samples=samples
        )
        self._update(record, record.card_message, card, now)

    def refresh_card(self, release_id: int, now: datetime) -> None:
        """Queue an update of the release card (inside the caller's transaction)."""
        self._update_card(self.store.load(release_id), now)

    def post_channel(self, record: ReleaseRecord, rendered: render.Rendered, now: datetime) -> None:
        """Queue a message to the release channel (inside the caller's transaction)."""
        self._channel(record, rendered, now)

    def _stage_opened(
        self, record: ReleaseRecord, effect: StageOpened, now: datetime, ctx: Context
    ) -> None:
        release = record.release
        step = release.step(effect.step)
        stage = step.stages[effect.stage]
        if stage.kind is StageKind.APPROVE:
            rendered = render.render_approval_request(
                release, step, self.config.slack.approve_reaction, self._link(release, step)
            )
            self._thread(record, rendered, now, kind="approval", step_key=step.key)
        elif stage.kind is StageKind.TIMER:
            self._thread(record, render.render_timer_started(step, self.config.tz), now)

    def _link(self, release: Release, step: Step) -> str | None:
        notes = self.config.preconditions.release_notes
        if step.key == "notes" and notes is not None:
            return notes.url.replace("{version}", release.version)
        return None

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
                rendered = render.render_approved(
                    release,
                    step,
                    effect.stage,
                    effect.by,
                    effect.outcome,
                    now,
                    self.config.tz,
                    ctx.note,
                )
                self._update(record, message.id, rendered, now)
        elif stage.kind is StageKind.CHECK and isinstance(ctx.event, CheckFinished):
            results = self._latest_results(release.id, step)
            self._thread(record, render.render_check_results(step, results, ok=True), now)
        elif stage.kind is StageKind.TIMER:
            done_at = render.clock_time(now, self.config.tz)
            text = f"⏱️ *{step.title}*: {stage.label} — done at {done_at}."
            self._thread(record, render.Rendered(text), now)

    def latest_results(self, release_id: int, step_key: str) -> list[CheckResult]:
        """The verdicts of a step's newest check run."""
        step = self.store.load(release_id).release.step(step_key)
        return [CheckResult.from_dict(r) for r in self._latest_results(release_id, step)]

    def _latest_results(self, release_id: int, step: Step) -> list[dict[str, Any]]:
        return [
            r
            for r in self.store.check_results(release_id, step.key)
            if r["attempt"] == step.attempt
        ]

    def _step_blocked(
        self, record: ReleaseRecord, effect: StepBlocked, now: datetime, ctx: Context
    ) -> None:
        if isinstance(ctx.event, TimerElapsed):
            self._thread(
                record,
                render.render_soak_blocked(
                    record.release, effect.failing, self.evidence_of(record.release.id)
                ),
                now,
                step_key=effect.step,
            )
            return
        if not isinstance(ctx.event, CheckFinished):
            return  # a partial waiver: the waiver message says what still fails
        step = record.release.step(effect.step)
        results = self._latest_results(record.release.id, step)
        rendered = render.render_check_results(step, results, ok=False)
        commander = render.mention(record.release.roles.commander)
        text = f"{rendered.text}\n{commander}"
        self._thread(record, render.Rendered(text, rendered.blocks), now, step_key=step.key)

    def _phase_done(
        self, record: ReleaseRecord, effect: PhaseDone, now: datetime, ctx: Context
    ) -> None:
        release = record.release
        text = f"✅ *{PHASE_TITLES[effect.phase]}* done."
        following = release.phase
        if (
            following in KICKOFF_PHASES
            and release.kickoff_at is not None
            and now < release.kickoff_at
        ):
            text += (
                f" Deployment opens at the scheduled go-live, "
                f"{render.when(release.kickoff_at, self.config.tz)}."
            )
        self._thread(record, render.Rendered(text), now)

    def _waived(self, record: ReleaseRecord, effect: Waived, now: datetime, ctx: Context) -> None:
        release = record.release
        self.store.add_waiver(release.id, effect.name, effect.step, effect.user, effect.reason, now)
        step = release.step(effect.step)
        text = (
            f"⚠️ {render.mention(effect.user)} waived `{effect.name}` ({step.title}): "
            f"{effect.reason}"
        )
        if step.status is StepStatus.BLOCKED:
            text += f"\nStill failing: {', '.join(step.failing)}."
        self._thread(record, render.Rendered(text), now)

    def _freeze_changed(
        self, record: ReleaseRecord, effect: FreezeChanged, now: datetime, ctx: Context
    ) -> None:
        self._announce(
            record, render.render_freeze(record.release, self.config, effect.frozen, now), now
        )

    def _status_changed(
        self, record: ReleaseRecord, effect: StatusChanged, now: datetime, ctx: Context
    ) -> None:
        release = record.release
        if effect.status is ReleaseStatus.ACTIVE:
            if release.kickoff_at is not None:
                self._thread(record, render.render_reminder(release, self.config), now)
            return
        self._watch_after(record, effect.status, now)
        plan = self.rollback_plan(record) if effect.status is ReleaseStatus.ROLLED_BACK else []
        rendered = render.render_ended(
            release,
            self.config,
            effect.by,
            effect.reason,
            render.validation_summary(release),
            plan,
        )
        self._announce(record, rendered, now)
        if effect.status is ReleaseStatus.COMPLETED:
            self._upload_chart(record, now)
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
        samples = self.store.samples(record.release.id, "soak")
        if not samples:
            return
        png = soak_chart_png(record, samples, self.config, self.store)
        version = record.release.version
        file = {
            "filename": f"soak-{version}.png",
            "title": f"Soak of {version}",
            "content_b64": base64.b64encode(png).decode("ascii"),
        }
        for channel in self._announce_channels(record):
            self._file(record, channel, file, f"📈 Soak of {version}", now, in_thread=False)

    def _upload_record(self, record: ReleaseRecord, now: datetime) -> None:
        """The release record (Markdown) is attached to the release thread when it ends."""
        version = record.release.version
        file = {
            "filename": f"release-{version}.md",
            "title": f"Release record {version}",
            "content": release_record(self.store, self.config, record.release.id),
        }
        self._file(
            record,
            record.release.channel,
            file,
            f"📒 Release record of {version}",
            now,
            in_thread=True,
        )

    def _watch_after(self, record: ReleaseRecord, status: ReleaseStatus, now: datetime) -> None:
        """Heightened monitoring after completion, and continued monitoring after a rollback."""
        mon = self.config.monitoring
        if status is ReleaseStatus.ABORTED:
            self.store.set_monitoring(record.release.id, None, None, closed=True)
            return
        period = "heightened" if status is ReleaseStatus.COMPLETED else "rollback"
        until = now + mon.heightened.duration
        if mon.prometheus_url is None:
            text = (
                f"👀 No Prometheus is configured: {render.mention(record.release.roles.on_call)} "
                f"watches the dashboards by hand until {render.when(until, self.config.tz)}."
            )
            self._thread(record, render.Rendered(text), now)
            return
        self.store.set_monitoring(record.release.id, period, until)

    def _handed_over(
        self, record: ReleaseRecord, effect: HandedOver, now: datetime, ctx: Context
    ) -> None:
        text = (
            f"🤝 {render.mention(effect.old)} handed release {record.release.version} over to "
            f"{render.mention(effect.new)}, who is now the commander."
        )
        self._thread(record, render.Rendered(text), now)

    def rollback_plan(self, record: ReleaseRecord) -> list[str]:
        """Each changed service with the rollback target the rollback check found."""
        targets = targets_from(self.store.check_results(record.release.id, "rollback"))
        lines = []
        for name in record.release.services:
            service = self.config.service(name)
            image = service.image if service and service.image else name
            target = targets.get(name)
            if target:
                lines.append(f"{name}: roll back to `{image}:{target}`")
            else:
                lines.append(f"{name}: no rollback target recorded — choose `{image}` by hand")
        return lines

    # -- commands --------------------------------------------------------------------------

    def start(self, channel: str, user: str, request: StartRequest) -> str:
        """Create a release (scheduled when `at` is given) and start it when its time has come."""
        if channel not in self.config.slack.release_channels:
            allowed = ", ".join(f"<#{c}>" for c in self.config.slack.release_channels)
            raise NotAllowed(f"releases start only in a release channel ({allowed})")
        current = self.current(channel)
        if current is not None and current.release.status in OPEN_STATUSES:
            r = current.release
            raise IllegalMove(
                f"release {r.version} is already {render.STATUS_TITLES[r.status]} in this channel "
                f"(commander {render.mention(r.roles.commander)}); complete or abort it first"
            )
        version = request.version.strip()
        if not VERSION.match(version):
            raise UsageError(
                f"`{version or '(empty)'}` is not a release version; write it like v2.4.0 or 2.4.1"
            )
        services = self._changed_services(request.services)
        roles = self._roles(user, request.roles)
        now = self.clock.now()
        at = request.at
        if at is not None and at <= now:
            raise UsageError(
                f"at={render.when(at, self.config.tz)} is in the past; give a future time"
            )
        monitoring = self.config.monitoring
        steps = plan_steps(
            [
                PlannedService(s.name, s.tier, s.deploy_wave, s.migrations)
                for s in (self.config.service(n) for n in services)
                if s is not None
            ],
            lambda name, scope: self.checkbook.available(self.config, name, scope),
            monitoring.soak.duration.total_seconds(),
        )
        release = Release(
            id=0,
            channel=channel,
            version=version,
            status=ReleaseStatus.SCHEDULED,
            roles=roles,
            steps=steps,
            major=request.major,
            services=services,
            kickoff_at=at,
        )
        activate_at = at - T_MINUS if at is not None else now
        with self.store.transaction():
            rid = self.store.insert_release(
                release, created_at=now, created_by=user, activate_at=activate_at
            )
            release = dataclasses.replace(release, id=rid)
            card = render.render_card(release, self.config, now)
            card_id = self.store.enqueue(
                release_id=rid,
                channel=channel,
                kind="card",
                text=card.text,
                blocks=card.blocks,
                at=now,
            )
            self.store.set_release_fields(rid, card_message=card_id)
            self.store.add_event(
                rid,
                now,
                "start",
                user,
                {
                    "version": version,
                    "major": request.major,
                    "services": list(services),
                    "at": at.isoformat() if at else None,
                    "roles": dataclasses.asdict(roles),
                },
            )
            record = self.store.load(rid)
            self._thread(record, render.render_started(release, self.config), now)
        self._notify()
        if activate_at <= now:
            self._apply(rid, Activate(), user)
            return f"Release {version} started. Watch the card in this channel."
        return (
            f"Release {version} scheduled for {render.when(at, self.config.tz)}; "
            f"preconditions and preflight run at {render.when(activate_at, self.config.tz)}."
        )

    def _changed_services(self, asked: tuple[str, ...]) -> tuple[str, ...]:
        configured = [s.name for s in self.config.services]
        if not asked:
            return tuple(configured)
        unknown = [name for name in asked if name not in configured]
        if unknown:
            raise UsageError(
                f"unknown service{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)} "
                f"(configured: {', '.join(configured)})"
            )
        return tuple(dict.fromkeys(asked))

    def _roles(self, commander: str, overrides: Mapping[str, str]) -> Roles:
        defaults = self.config.roles
        chosen = {
            Role.ON_CALL: overrides.get("on_call") or defaults.on_call,
            Role.BACKEND: overrides.get("backend") or defaults.backend,
            Role.FRONTEND: overrides.get("frontend") or defaults.frontend,
        }
        missing = [role.value for role, user in chosen.items() if not user]
        if missing:
            raise UsageError(
                "no "
                + ", ".join(missing)
                + " owner: set roles."
                + missing[0]
                + f" in golive.yml or pass {missing[0]}=@user"
            )
        return Roles(
            commander=overrides.get("commander") or commander,
            on_call=str(chosen[Role.ON_CALL]),
            backend=str(chosen[Role.BACKEND]),
            frontend=str(chosen[Role.FRONTEND]),
        )

    def _require_active(self, channel: str) -> ReleaseRecord:
        record = self.require_current(channel)
        if record.release.status is not ReleaseStatus.ACTIVE:
            raise IllegalMove(describe_position(record.release))
        return record

    def approve(
        self,
        channel: str,
        user: str,
        step_key: str | None = None,
        note: str | None = None,
        via: str = "command",
    ) -> str:
        """Approve a step (by default: the one step waiting on this user)."""
        record = self._require_active(channel)
        release = record.release
        if step_key is None:
            mine = [
                s
                for s in release.steps
                if s.status is StepStatus.AWAITING and release.roles.user(s.owner) == user
            ]
            if not mine:
                raise IllegalMove(f"nothing is waiting on you; {describe_position(release)}")
            if len(mine) > 1:
                keys = ", ".join(s.key for s in mine)
                raise UsageError(
                    f"several steps wait on you ({keys}); name one: `/golive approve <step>`"
                )
            step = mine[0]
        else:
            step = release.step(step_key)
        self._apply(release.id, Approve(step.key, user), user, Context(via=via, note=note))
        return f"Approved {step.title}."

    def react(
        self, message: OutboxRow, user: str, reaction: str, via: str = "reaction"
    ) -> str | None:
        """A reaction on one of our messages: the approve reaction on an approval request.

        Returns what happened in words, or None when the reaction means nothing to golive.
        """
        if reaction.strip(":") != self.config.slack.approve_reaction:
            return None
        return self.approve_message(message, user, via)

    def approve_message(self, message: OutboxRow, user: str, via: str) -> str | None:
        """Approve the step an approval request asks for (reaction or button).

        Only the step's current request counts: an older request of the same step (a re-added
        reaction, a double click during an outage) must not approve the stage after it. Someone
        other than the owner gets an ephemeral refusal; anything else that does not apply is
        ignored quietly (None).
        """
        if message.kind != "approval" or message.release_id is None or not message.step_key:
            return None
        latest = self.store.latest_request(message.release_id, message.step_key)
        if latest is None or latest.id != message.id:
            return None
        record = self.store.load(message.release_id)
        release = record.release
        step = release.find_step(message.step_key)
        if release.status is not ReleaseStatus.ACTIVE or step is None:
            return None
        if step.status is not StepStatus.AWAITING:
            return None
        owner = release.roles.user(step.owner)
        if owner != user:
            refusal = f"only {render.mention(owner)} can approve {step.title}"
            now = self.clock.now()
            with self.store.transaction():
                self.store.enqueue(
                    release_id=release.id,
                    channel=release.channel,
                    kind="ephemeral",
                    text=refusal,
                    blocks=None,
                    at=now,
                    user=user,
                    step_key=step.key,
                )
                self.store.add_event(
                    release.id, now, "approval_refused", user, {"step": step.key, "via": via}
                )
            self._notify()
            return refusal
        self._apply(release.id, Approve(step.key, user), user, Context(via=via))
        return f"Approved {step.title}."

    def waive(self, channel: str, user: str, name: str, reason: str) -> str:
        """Waive a failing check with a reason (recorded and shown in every summary)."""
        record = self._require_active(channel)
        self._apply(record.release.id, Waive(name, user, reason), user)
        return f"Waived {name}."

    def retry(self, channel: str, user: str, step_key: str, variant: str | None = None) -> str:
        """Run a blocked step's check again; the commander or the step's owner may."""
        record = self._require_active(channel)
        release = record.release
        step = release.step(step_key)
        allowed = {release.roles.commander, release.roles.user(step.owner)}
        if user not in allowed:
            raise NotAllowed(
                f"only the commander or {render.mention(release.roles.user(step.owner))} "
                f"can retry {step.title}"
            )
        self._apply(release.id, Retry(step.key, user, variant), user)
        return f"Running {step.title} again."

    def note(
        self,
        channel: str,
        user: str,
        text: str,
        *,
        owner: str | None = None,
        followup: bool = False,
    ) -> str:
        """Record a note or a follow-up on the channel's newest release."""
        record = self.require_current(channel)
        text = text.strip()
        if not text:
            raise UsageError("say what to record")
        now = self.clock.now()
        kind = "followup" if followup else "note"
        with self.store.transaction():
            self.store.add_note(record.release.id, kind, user, owner, text, now)
            self.store.add_event(record.release.id, now, kind, user, {"text": text, "owner": owner})
            if followup:
                who = render.mention(owner) if owner else "unassigned"
                line = f"📌 Follow-up for {who} (from {render.mention(user)}): {text}"
            else:
                line = f"📝 Note from {render.mention(user)}: {text}"
            self._thread(record, render.Rendered(line), now)
        self._notify()
        return "Follow-up recorded." if followup else "Note recorded."

    def handover(self, channel: str, user: str, to: str) -> str:
        """Make someone else the commander."""
        record = self.require_current(channel)
        self._apply(record.release.id, Handover(user, to), user)
        return f"<@{to}> is now the commander."

    def rollback(self, channel: str, user: str, reason: str) -> str:
        """On-call rolls the release back: plan posted, freeze kept, monitoring kept."""
        record = self.require_current(channel)
        self._apply(record.release.id, Rollback(user, reason), user)
        return "Rollback recorded; the plan is in the channel."

    def abort(self, channel: str, user: str, reason: str) -> str:
        """Abandon the release before completion; the freeze is lifted."""
        record = self.require_current(channel)
        self._apply(record.release.id, Abort(user, reason), user)
        return "Release aborted."

    def complete(self, channel: str, user: str) -> str:
        """Go: announce completion, lift the freeze."""
        record = self.require_current(channel)
        self._apply(record.release.id, Complete(user), user)
        return "Release completed."

    def unfreeze(self, channel: str, user: str) -> str:
        """Lift a freeze that a rollback kept."""
        record = self.require_current(channel)
        self._apply(record.release.id, Unfreeze(user), user)
        return "Merge freeze lifted."

    def status(self, channel: str) -> str:
        """Where the channel's release stands and what waits on whom."""
        record = self.require_current(channel)
        return render.render_status(record.release, self.config, self.clock.now())

    def history(self, limit: int = 20) -> str:
        """The newest releases, one line each."""
        return history_text(self.store, self.config, limit)

    # -- checks ----------------------------------------------------------------------------

    def running_checks(self) -> list[CheckKey]:
        """(release, step, attempt) of every check stage that should be running now."""
        keys: list[CheckKey] = []
        for rid in self.store.release_ids(statuses=(ReleaseStatus.ACTIVE.value,)):
            release = self.store.load(rid).release
            keys.extend(
                (rid, s.key, s.attempt) for s in release.steps if s.status is StepStatus.RUNNING
            )
        return keys

    def kick(self) -> None:
        """Start a task for every check stage that should run and is not running yet."""
        loop = asyncio.get_running_loop()
        for key in self.running_checks():
            if key not in self._inflight:
                self._inflight[key] = loop.create_task(self._run_check(key))

    async def _run_check(self, key: CheckKey) -> None:
        rid, step_key, attempt = key
        try:
            record = self.store.load(rid)
            step = record.release.step(step_key)
            if step.status is not StepStatus.RUNNING or step.attempt != attempt:
                return
            name = step.current.check or step.key
            ctx = CheckContext(
                self.config,
                self.secrets,
                self.client,
                self.clock,
                record.release,
                step,
                progress=lambda text: self._progress(rid, step_key, text),
                last_completed=self.store.last_completed_versions(before=rid),
                results_of=lambda key: self.latest_results(rid, key),
            )
            try:
                checks = self.checkbook.build(name, ctx)
            except GoliveError as exc:  # e.g. a secret missing from the environment
                checks = []
                results = [CheckResult(name, Status.ERROR, f"{name} cannot run: {exc.message}")]
            else:
                results = [CheckResult(name, Status.ERROR, f"no check could be built for {name}")]
            if checks:
                results = await run_checks(checks)
            self.finish_check(rid, step_key, attempt, results)
        except Exception:
            log.exception("check %s of release %s crashed", step_key, rid)
            self.finish_check(
                rid,
                step_key,
                attempt,
                [CheckResult(step_key, Status.ERROR, "the check crashed inside golive (logged)")],
            )
        finally:
            self._inflight.pop(key, None)

    def _progress(self, release_id: int, step_key: str, text: str) -> None:
        """A running check tells the thread what it is waiting for."""
        now = self.clock.now()
        record = self.store.load(release_id)
        step = record.release.find_step(step_key)
        title = step.title if step else step_key
        with self.store.transaction():
            self.store.add_event(
                release_id, now, "check_progress", None, {"step": step_key, "text": text}
            )
            self._thread(record, render.Rendered(f"⏳ *{title}*: {text}"), now)
        self._notify()

    def finish_check(
        self, release_id: int, step_key: str, attempt: int, results: list[CheckResult]
    ) -> None:
        """Store the verdicts and move the step on (or block it)."""
        now = self.clock.now()

        def records() -> None:
            for result in results:
                self.store.add_check_result(release_id, step_key, attempt, result.to_dict(), now)

        event = CheckFinished(step_key, attempt, tuple((r.name, r.status.ok) for r in results))
        self._apply(release_id, event, None, records=records)

    async def settle(self) -> None:
        """Run checks until none is left to run (tests and the console use this)."""
        while True:
            self.kick()
            if not self._inflight:
                return
            await asyncio.gather(*list(self._inflight.values()), return_exceptions=True)

    async def close(self) -> None:
        """Cancel running checks and close the HTTP client."""
        for task in list(self._inflight.values()):
            task.cancel()
        await asyncio.gather(*list(self._inflight.values()), return_exceptions=True)
        await self.client.aclose()

    # -- timers ----------------------------------------------------------------------------

    def _due_times(self) -> list[tuple[datetime, int, Event]]:
        due: list[tuple[datetime, int, Event]] = []
        statuses = (ReleaseStatus.SCHEDULED.value, ReleaseStatus.ACTIVE.value)
        for rid in self.store.release_ids(statuses=statuses):
            record = self.store.load(rid)
            release = record.release
            if release.status is ReleaseStatus.SCHEDULED and record.activate_at is not None:
                due.append((record.activate_at, rid, Activate()))
                continue
            if (
                release.kickoff_at is not None
                and release.phase in KICKOFF_PHASES
                and all(
                    s.status is StepStatus.PENDING
                    for s in release.steps
                    if s.phase is release.phase
                )
            ):
                due.append((release.kickoff_at, rid, Kickoff()))
            due.extend(
                (s.deadline, rid, TimerElapsed(s.key))
                for s in release.steps
                if s.status is StepStatus.TIMING and s.deadline is not None
            )
        return due

    def next_due(self) -> datetime | None:
        """The earliest stored deadline (activation, kickoff, a timer), if any."""
        due = self._due_times()
        return min(d[0] for d in due) if due else None

    def fire_due(self) -> int:
        """Apply every timer whose time has come; returns how many fired."""
        now = self.clock.now()
        fired = 0
        for moment, rid, event in sorted(self._due_times(), key=lambda d: d[0]):
            if moment > now:
                break
            if isinstance(event, TimerElapsed):
                event = TimerElapsed(event.step, self.breaches_of(rid))
            try:
                if self._apply(rid, event, None).effects:
                    fired += 1
            except GoliveError as exc:
                log.warning("timer for release %s: %s", rid, exc.message)
        return fired


def _event_name(item: object) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(item).__name__).lower()


def _event_data(item: object) -> dict[str, Any]:
    if dataclasses.is_dataclass(item) and not isinstance(item, type):
        return {k: v for k, v in dataclasses.asdict(item).items() if v is not None}
    return {}
