"""The release service: the command API, and every transition applied and persisted.

Every change happens in one SQLite transaction together with the outbox rows of the messages it
causes (`bot.engine.effects`), so a crash or a chat outage delays messages but never loses them
or the state. Checks run in `bot.engine.checkrunner` and deadlines fire from
`bot.engine.deadlines`; both are derived from the database, so a restart picks up exactly where
it stopped.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx

from bot.domain.clock import Clock
from bot.domain.config import Config, Secrets
from bot.domain.errors import GoliveError, IllegalMove, NotAllowed, UsageError, Why
from bot.domain.events import (
    Abort,
    ActionFinished,
    Activate,
    AllowMerge,
    Approve,
    CheckFinished,
    Complete,
    ConfirmRollback,
    Event,
    Handover,
    Reminded,
    Retry,
    Rollback,
    Snooze,
    Snoozed,
    Stop,
    TakeFreeze,
    Transition,
    Unfreeze,
    Waive,
)
from bot.domain.model import (
    OPEN_STATUSES,
    Release,
    ReleaseStatus,
    Role,
    Roles,
    Step,
    StepStatus,
)
from bot.domain.people import Facts, Holding, KnownPeople, LookupFailed, People, unfit
from bot.domain.plan import PlannedService, plan_steps
from bot.domain.records import ActionRun
from bot.domain.rules import authorize, authorize_kind
from bot.domain.serial import dump
from bot.domain.transition import transition
from bot.engine.actions import ROLLBACK, STARTED, ActionRunner, Sleep
from bot.engine.checkbook import CheckBook, notes_in_github, stored_results
from bot.engine.checkrunner import CheckRunner
from bot.engine.effects import CONFIRM_KIND, PLAIN, Context, Effects
from bot.engine.records import history
from bot.render import card, messages
from bot.render.fmt import Rendered
from bot.render.refusals import refusal
from bot.store import OutboxRow, ReleaseRecord, Store
from checks.base import CheckResult
from checks.freeze import PullRequest, pull_request
from checks.http import ProviderError

log = logging.getLogger(__name__)

# ASCII only: `\d` would take any script's digits (v٢.٤.٠), which no registry tag matches.
VERSION = re.compile(r"^v?\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$", re.ASCII)
T_MINUS = timedelta(minutes=30)


@dataclass(frozen=True)
class StartRequest:
    """A parsed `/golive start`."""

    version: str
    major: bool = False
    services: tuple[str, ...] = ()
    at: datetime | None = None
    roles: Mapping[str, str] = dataclasses.field(default_factory=dict)  # role value → user id
    take_freeze: bool = False


# Events aimed at the release of a channel that holds the merge freeze, whatever is newest there.
FREEZE_EVENTS: tuple[type, ...] = (Unfreeze, AllowMerge)
# How long `/golive freeze allow` waits for GitHub: the answer must reach Slack within 3 s.
PULL_LOOKUP_TIMEOUT = 1.5


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
        sleep: Sleep = asyncio.sleep,
        people: People | None = None,
        app_home: bool = False,
    ) -> None:
        """`sleep` waits between reads of a running action (tests move a fake clock in it);
        `app_home`: keep people's App Home tabs up to date (Slack only)."""
        self.config = config
        self.store = store
        self.clock = clock
        self.checkbook = checkbook
        self.secrets = secrets
        defaults = config.roles
        self.people: People = people or KnownPeople(
            config.users, (defaults.on_call, defaults.backend, defaults.frontend)
        )
        self._listeners: list[Callable[[], None]] = []
        self.effects = Effects(config, store, clock=clock, app_home=app_home)
        self.client = client or httpx.AsyncClient(timeout=10.0)
        self.checks = CheckRunner(
            config,
            store,
            clock,
            checkbook,
            secrets,
            self.client,
            finish=self.finish_check,
            progress=self.check_progress,
            results_of=self.latest_results,
        )
        self.actions = ActionRunner(
            config,
            store,
            clock,
            secrets,
            self.client,
            finish=self.finish_action,
            moved=self.action_moved,
            rollback_done=self.rollback_done,
            sleep=sleep,
        )

    # -- listeners -------------------------------------------------------------------------

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call `listener` after every committed change (the outbox, checks and timers wake up)."""
        self._listeners.append(listener)

    def changed(self) -> None:
        """Tell the workers that something was committed (once the transaction around commits)."""
        self.store.after_commit(self._notify)

    def _notify(self) -> None:
        for listener in self._listeners:
            listener()

    # -- looking releases up ---------------------------------------------------------------

    def current(self, channel: str) -> ReleaseRecord | None:
        """The newest release of a channel, whatever its status."""
        rid = self.store.latest_in_channel(channel)
        return self.store.load(rid) if rid is not None else None

    def require_current(self, channel: str) -> ReleaseRecord:
        """The newest release of a channel; a clear error when there is none."""
        record = self.current(channel)
        if record is None:
            raise IllegalMove(Why.NO_RELEASE_HERE)
        return record

    def freeze_holder(self, channel: str) -> ReleaseRecord | None:
        """The release of a channel that holds the merge freeze, whatever release is newest."""
        rid = self.store.freeze_holder(channel)
        return self.store.load(rid) if rid is not None else None

    def _require_holder(self, channel: str) -> ReleaseRecord:
        holder = self.freeze_holder(channel)
        if holder is None:
            raise IllegalMove(Why.NOTHING_FROZEN_HERE)
        return holder

    def authorize(self, channel: str, user: str, kind: type) -> None:
        """Refuse early when `user` may not cause this kind of event in the release it is for:
        the channel's newest, or for the freeze's events the release holding the freeze."""
        if kind in FREEZE_EVENTS:
            holder = self.freeze_holder(channel)
            if holder is not None:  # without one, the command says nothing is frozen
                authorize_kind(holder.release, kind, user)
            return
        authorize_kind(self.require_current(channel).release, kind, user)

    # -- applying events -------------------------------------------------------------------

    def apply(
        self,
        release_id: int,
        event: Event,
        actor: str | None,
        context: Context = PLAIN,
        records: Callable[[], None] | None = None,
    ) -> Transition:
        """Apply one event: the transition, its records and its messages in one transaction."""
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
                    self.effects.apply(after, effect, now, context)
                quiet = result.release == record.release and all(
                    isinstance(e, Reminded | Snoozed) for e in result.effects
                )
                if not quiet:  # a reminder or a snooze leaves the card as it is
                    self.effects.refresh_card(after, now)
                self.effects.refresh_homes(record.release, result.release, now)
        self.changed()
        return result

    def close_release(self, release_id: int, now: datetime) -> None:
        """Monitoring ended: the release closes (inside the caller's transaction)."""
        self.effects.close(release_id, now)

    def refresh_card(self, release_id: int, now: datetime) -> None:
        """Queue an update of the release card (inside the caller's transaction)."""
        self.effects.refresh_card(self.store.load(release_id), now)

    def post_channel(self, record: ReleaseRecord, rendered: Rendered, now: datetime) -> None:
        """Queue a message to the release channel (inside the caller's transaction)."""
        self.effects.post_channel(record, rendered, now)

    def latest_results(self, release_id: int, step_key: str) -> list[CheckResult]:
        """The verdicts of a step's newest check run."""
        step = self.store.load(release_id).release.step(step_key)
        return stored_results(self.effects.latest_results(release_id, step))

    def finish_check(
        self, release_id: int, step_key: str, attempt: int, results: list[CheckResult]
    ) -> None:
        """Store the verdicts and move the step on (or block it)."""
        self._finish(release_id, step_key, attempt, results, CheckFinished)

    def _finish(
        self,
        release_id: int,
        step_key: str,
        attempt: int,
        results: list[CheckResult],
        finished: type[CheckFinished] | type[ActionFinished],
    ) -> None:
        now = self.clock.now()

        def records() -> None:
            for result in results:
                self.store.add_check_result(release_id, step_key, attempt, dump(result), now)

        event = finished(step_key, attempt, tuple((r.name, r.status.ok) for r in results))
        self.apply(release_id, event, None, records=records)

    def finish_action(
        self, release_id: int, step_key: str, attempt: int, results: list[CheckResult]
    ) -> None:
        """Store how each run of a step's action ended and move the step on (or block it)."""
        self._finish(release_id, step_key, attempt, results, ActionFinished)

    def action_moved(self, run: ActionRun) -> None:
        """A run started (its link is known), moved on, or ended: the step's message, the card
        and the thread say so."""
        now = self.clock.now()
        record = self.store.load(run.release_id)
        data = {
            "step": run.step_key,
            "attempt": run.attempt,
            "target": run.target,
            "state": run.state,
            "run_id": run.run_id,
            "url": run.url,
            "detail": run.detail,
        }
        with self.store.transaction():
            if run.finished or (run.state == "running" and run.detail == STARTED):
                self.store.add_event(run.release_id, now, "action_run", None, data)
            if run.step_key == ROLLBACK:
                self.effects.rollback_moved(record, run, now)
            else:
                step = record.release.find_step(run.step_key)
                if step is not None and step.status is StepStatus.ACTING:
                    self.effects.action_message(record, step, now)
            self.effects.refresh_card(record, now)
        self.changed()

    def rollback_done(self, release_id: int) -> None:
        """Every rollback run has an outcome: said in the channel, recorded."""
        now = self.clock.now()
        record = self.store.load(release_id)
        runs = self.store.action_runs(release_id, ROLLBACK)
        with self.store.transaction():
            self.store.add_event(
                release_id,
                now,
                "rollback_done",
                None,
                {"runs": {r.target: r.state for r in runs}},
            )
            self.effects.rollback_done(record, now)
        self.changed()

    async def close(self) -> None:
        """Stop following actions, cancel the running checks and close their HTTP client."""
        await self.actions.close()
        await self.checks.close()

    def check_progress(self, release_id: int, step_key: str, text: str) -> None:
        """A running check tells the thread what it is waiting for."""
        now = self.clock.now()
        record = self.store.load(release_id)
        step = record.release.find_step(step_key)
        title = step.title if step else step_key
        with self.store.transaction():
            self.store.add_event(
                release_id, now, "check_progress", None, {"step": step_key, "text": text}
            )
            self.effects.thread(record, messages.render_progress(title, text), now)
        self.changed()

    # -- who may hold a role ------------------------------------------------------------------

    async def vet(self, role: Role, user: str, holding: Holding) -> None:
        """Refuse unless `user` may hold `role` (bot.domain.people decides).

        Someone a command brings in (named, or starting the release as its commander) is looked
        up in the directory: a real, active person of this workspace. Anyone holding a role,
        the config's defaults included, must be in the role's user group where the config names
        one. A directory that cannot answer refuses: nobody is let in blindly.
        """
        group = self.config.roles.group(role)
        try:
            # At once: a slash command waits for this answer, and Slack waits only 3 s for it.
            person, workspace, members = await asyncio.gather(
                self.people.person(user) if holding.looked_up else _nothing(),
                self.people.workspace() if holding.looked_up else _nothing(),
                self.people.members(group) if group else _nothing(),
            )
        except LookupFailed as exc:
            raise NotAllowed(
                Why.CANNOT_CHECK_PERSON, user=user, role=role, reason=exc.reason
            ) from None
        facts = Facts(holding.looked_up, person, workspace, group, members or frozenset())
        problem = unfit(user, facts)
        if problem is not None:
            raise NotAllowed(
                Why.CANNOT_HOLD_ROLE,
                user=user,
                role=role,
                problem=problem,
                group=group,
                holding=holding,
            )

    async def _vet_roles(self, roles: Roles, named: Mapping[str, str]) -> None:
        """Vet every holder at once; the first refusal in role order is the one given."""
        holdings = {
            role: Holding.NAMED
            if role.value in named
            else Holding.STARTER
            if role is Role.COMMANDER
            else Holding.DEFAULT
            for role in Role
        }
        outcomes = await asyncio.gather(
            *(self.vet(role, roles.user(role), holdings[role]) for role in Role),
            return_exceptions=True,
        )
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome

    # -- commands --------------------------------------------------------------------------

    async def start(self, channel: str, user: str, request: StartRequest) -> str:
        """Create a release (scheduled when `at` is given) and start it when its time has come.

        Everyone who is to hold a role is vetted first (`vet_start`); `open_release` checks
        again, since another start may have come in while the directory was asked.
        """
        await self.vet_start(channel, user, request)
        return self.open_release(channel, user, request)

    async def vet_start(self, channel: str, user: str, request: StartRequest) -> None:
        """Refuse a start now if it cannot be taken, then ask the directory about everyone who
        is to hold a role."""
        roles = self._check_start(channel, user, request)[2]
        await self._vet_roles(roles, request.roles)

    def _check_start(
        self, channel: str, user: str, request: StartRequest
    ) -> tuple[str, tuple[str, ...], Roles, ReleaseRecord | None]:
        """Everything a start must satisfy before anyone is asked or anything written: the
        version, services, roles, and the freeze a rolled-back release may hand on."""
        if channel not in self.config.slack.release_channels:
            raise NotAllowed(
                Why.NOT_A_RELEASE_CHANNEL, channels=list(self.config.slack.release_channels)
            )
        current = self.current(channel)
        if current is not None and current.release.status in OPEN_STATUSES:
            raise IllegalMove(Why.RELEASE_ALREADY_OPEN, release=current.release)
        version = request.version.strip()
        if not VERSION.match(version):
            raise UsageError(Why.BAD_VERSION, version=version)
        held = self._held_freeze(channel, user, version, request.take_freeze)
        services = self._changed_services(request.services)
        roles = self._roles(user, request.roles)
        at = request.at
        if at is not None and at <= self.clock.now():
            raise UsageError(Why.AT_IN_THE_PAST, at=at, tz=self.config.tz)
        return version, services, roles, held

    def open_release(self, channel: str, user: str, request: StartRequest) -> str:
        """Write the new release (after `vet_start`): every check of a start runs again here,
        inside the one writer, so two starts cannot both open a release in a channel."""
        version, services, roles, held = self._check_start(channel, user, request)
        now = self.clock.now()
        at = request.at
        monitoring = self.config.monitoring
        steps = plan_steps(
            [
                PlannedService(s.name, s.tier, s.deploy_wave, s.migrations)
                for s in (self.config.service(n) for n in services)
                if s is not None
            ],
            lambda name, scope: self.checkbook.available(self.config, name, scope),
            monitoring.soak.duration.total_seconds(),
            notes_on_github=notes_in_github(self.config),
            actions=tuple(self.config.actions),
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
            frozen=held is not None,
        )
        activate_at = at - T_MINUS if at is not None else now
        shortened = monitoring.shortened()
        with self.store.transaction():
            if held is not None:  # the old release hands its freeze on, in the same transaction
                self.apply(held.release.id, TakeFreeze(user, version), user)
            rid = self.store.insert_release(
                release,
                created_at=now,
                created_by=user,
                activate_at=activate_at,
                shortened=shortened,
            )
            release = dataclasses.replace(release, id=rid)
            first = card.render_card(release, self.config, now, shortened=shortened)
            card_id = self.store.enqueue(
                release_id=rid,
                channel=channel,
                kind="card",
                text=first.text,
                blocks=first.blocks,
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
                    "take_freeze": held is not None,
                },
            )
            record = self.store.load(rid)
            self.effects.thread(record, messages.render_started(release, self.config), now)
            if held is not None:
                old = held.release.version
                taken = {"from": old, "from_release": held.release.id}
                self.store.add_event(rid, now, "freeze_taken_over", user, taken)
                rendered = messages.render_freeze_taken_over(version, old, user)
                self.effects.thread(record, rendered, now)
        self.changed()
        if activate_at <= now:
            self.apply(rid, Activate(), user)
            return messages.ack_started(version, held.release.version if held else None)
        assert at is not None
        return messages.ack_scheduled(version, at, activate_at, self.config.tz)

    def _held_freeze(
        self, channel: str, user: str, version: str, take: bool
    ) -> ReleaseRecord | None:
        """The ended release whose freeze a new release of the channel takes over, if asked to.

        A freeze a rolled-back release still holds is never left behind silently: the new
        release either takes it over (`take_freeze`, the old release's commander only) or waits
        until it is lifted.
        """
        holder = self.freeze_holder(channel)
        if holder is None or holder.release.status in OPEN_STATUSES:
            if take:
                raise IllegalMove(Why.NO_FREEZE_TO_TAKE)
            return None
        if not take:
            raise IllegalMove(Why.FREEZE_HELD, release=holder.release, version=version)
        authorize(holder.release, TakeFreeze(user, version))
        return holder

    def _changed_services(self, asked: tuple[str, ...]) -> tuple[str, ...]:
        configured = [s.name for s in self.config.services]
        if not asked:
            return tuple(configured)
        unknown = [name for name in asked if name not in configured]
        if unknown:
            raise UsageError(Why.UNKNOWN_SERVICES, unknown=unknown, configured=configured)
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
            raise UsageError(Why.NO_OWNER, missing=missing)
        return Roles(
            commander=overrides.get("commander") or commander,
            on_call=str(chosen[Role.ON_CALL]),
            backend=str(chosen[Role.BACKEND]),
            frontend=str(chosen[Role.FRONTEND]),
        )

    def _require_active(self, channel: str) -> ReleaseRecord:
        record = self.require_current(channel)
        if record.release.status is not ReleaseStatus.ACTIVE:
            raise IllegalMove(Why.RELEASE_NOT_ACTIVE, release=record.release)
        return record

    def approve(
        self,
        channel: str,
        user: str,
        step_key: str | None = None,
        note: str | None = None,
        via: str = "command",
        sent_at: datetime | None = None,
    ) -> str:
        """Approve a step (by default: the one step waiting on this user).

        With `sent_at` (when the person sent the command), "the step waiting on me" means the
        one that was waiting at that moment: a second `/golive approve` sent together with the
        first must not approve the step the first one opened.
        """
        record = self._require_active(channel)
        release = record.release
        if step_key is None:
            mine = [
                s
                for s in release.steps
                if s.status is StepStatus.AWAITING and release.roles.user(s.owner) == user
            ]
            if not mine:
                raise IllegalMove(Why.NOTHING_WAITS_ON_YOU, release=release)
            if sent_at is not None:
                then = [s for s in mine if self._awaited_by(release.id, s.key, sent_at)]
                if not then:
                    raise IllegalMove(Why.MOVED_ON, keys=[s.key for s in mine])
                mine = then
            if len(mine) > 1:
                raise UsageError(Why.SEVERAL_WAIT_ON_YOU, keys=[s.key for s in mine])
            step = mine[0]
        else:
            step = release.step(step_key)
        self.apply(release.id, Approve(step.key, user), user, Context(via=via, note=note))
        return messages.ack("approve", step.title)

    def _awaited_by(self, release_id: int, step_key: str, moment: datetime) -> bool:
        """True when the step was already waiting (in its current stage) at `moment`; steps
        recorded before golive kept that time count as waiting."""
        since = self.store.awaiting_since(release_id, step_key)
        return since is None or since <= moment

    def react(
        self, message: OutboxRow, user: str, reaction: str, via: str = "reaction"
    ) -> str | None:
        """A reaction on one of our messages: the approve reaction on an approval request.

        Returns what happened in words, or None when the reaction means nothing to golive.
        """
        if reaction.strip(":") != self.config.slack.approve_reaction:
            return None
        if message.kind == CONFIRM_KIND:
            return self.confirm_message(message, user, via)
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
        found = self._step_of(message)
        if found is None or found[1].status is not StepStatus.AWAITING:
            return None
        release, step = found
        return self._clicked(release, Approve(step.key, user), via, "approval_refused", "approve")

    def _step_of(self, message: OutboxRow) -> tuple[Release, Step] | None:
        """The active release and the step one of our messages is about (None once either is
        gone or over)."""
        if message.release_id is None or not message.step_key:
            return None
        release = self.store.load(message.release_id).release
        step = release.find_step(message.step_key)
        if release.status is not ReleaseStatus.ACTIVE or step is None:
            return None
        return release, step

    def _clicked(
        self, release: Release, event: Approve | Snooze, via: str, refused: str, word: str
    ) -> str:
        """Apply what a click (or reaction) asks; someone not allowed is told so, alone."""
        try:
            self.apply(release.id, event, event.user, Context(via=via))
        except NotAllowed as exc:
            return self._refuse_click(release, event.user, event.step, via, exc, refused)
        return messages.ack(word, release.step(event.step).title)

    def _refuse_click(
        self, release: Release, user: str, step_key: str, via: str, exc: GoliveError, event: str
    ) -> str:
        """Tell only the person who clicked or reacted why nothing happened; record it."""
        words = refusal(exc)
        now = self.clock.now()
        with self.store.transaction():
            self.store.enqueue(
                release_id=release.id,
                channel=release.channel,
                kind="ephemeral",
                text=words,
                blocks=None,
                at=now,
                user=user,
                step_key=step_key,
            )
            self.store.add_event(release.id, now, event, user, {"step": step_key, "via": via})
        self.changed()
        return words

    def confirm_message(self, message: OutboxRow, user: str, via: str) -> str | None:
        """On-call confirms a proposed rollback (button or reaction on the plan's message).

        Only the newest proposal of a release that still waits for confirmation counts;
        anyone but on-call gets an ephemeral refusal; anything else is ignored (None).
        """
        if message.kind != CONFIRM_KIND or message.release_id is None:
            return None
        latest = self.store.latest_message(message.release_id, CONFIRM_KIND)
        if latest is None or latest.id != message.id:
            return None
        release = self.store.load(message.release_id).release
        if release.proposed_rollback is None:
            return None
        try:
            self.apply(release.id, ConfirmRollback(user), user, Context(via=via))
        except NotAllowed as exc:
            return self._refuse_click(release, user, ROLLBACK, via, exc, "confirm_refused")
        return messages.ack("confirm_rollback")

    def waive(self, channel: str, user: str, name: str, reason: str) -> str:
        """Waive a failing check with a reason (recorded and shown in every summary)."""
        record = self._require_active(channel)
        self.apply(record.release.id, Waive(name, user, reason), user)
        return messages.ack("waive", name)

    def retry(self, channel: str, user: str, step_key: str, variant: str | None = None) -> str:
        """Run a blocked step's check again; the commander or the step's owner may."""
        record = self._require_active(channel)
        release = record.release
        step = release.step(step_key)
        self.apply(release.id, Retry(step.key, user, variant), user)
        return messages.ack("retry", step.title)

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
            raise UsageError(Why.NOTHING_TO_RECORD)
        now = self.clock.now()
        kind = "followup" if followup else "note"
        rid = record.release.id
        late = {ReleaseStatus.COMPLETED: "completion", ReleaseStatus.ROLLED_BACK: "the rollback"}
        after = late.get(record.release.status)
        if after is not None and record.closed_at is not None:
            after = "closed"
        in_notes = self.effects.written_back(rid)
        with self.store.transaction():
            self.store.add_note(rid, kind, user, owner, text, now)
            self.store.add_event(rid, now, kind, user, {"text": text, "owner": owner})
            rendered = messages.render_note(
                user,
                text,
                followup=followup,
                owner=owner,
                late=after,
                version=record.release.version,
                in_notes=in_notes,
            )
            self.effects.thread(record, rendered, now)
            if after == "closed" and in_notes:
                self.effects.write_back(record, now)  # the notes stay the whole story
        self.changed()
        return messages.ack(kind)

    async def handover(self, channel: str, user: str, to: str, role: Role = Role.COMMANDER) -> str:
        """Hand a role (the commander by default) to someone else: a real, active person of
        this workspace (and of the role's group, where the config names one)."""
        await self.vet_handover(channel, user, to, role)
        return self.hand_over(channel, user, to, role)

    async def vet_handover(
        self, channel: str, user: str, to: str, role: Role = Role.COMMANDER
    ) -> None:
        """Refuse a handover now unless `user` may hand `role` over and `to` may hold it."""
        authorize(self.require_current(channel).release, Handover(user, to, role))
        await self.vet(role, to, Holding.NAMED)

    def hand_over(self, channel: str, user: str, to: str, role: Role = Role.COMMANDER) -> str:
        """Write the handover (after `vet_handover`): waiting requests of the role are
        addressed to `to` in place."""
        record = self.require_current(channel)
        self.apply(record.release.id, Handover(user, to, role), user)
        return messages.ack_handover(role, to)

    def reject(
        self, channel: str, user: str, step_key: str, reason: str, via: str = "command"
    ) -> str:
        """Stop a step with a reason (`/golive reject`): it is blocked until retried or waived."""
        record = self._require_active(channel)
        step = record.release.step(step_key)
        self.apply(record.release.id, Stop(step.key, user, reason), user, Context(via=via))
        return messages.ack("reject", step.title)

    def may_stop(self, release_id: int, step_key: str, user: str) -> None:
        """Refuse now (IllegalMove, NotAllowed) when `user` could not stop the step: asked before
        the reason modal opens, so nobody types a reason for nothing. Changes nothing."""
        release = self.store.load(release_id).release
        transition(release, Stop(step_key, user, "?"), self.clock.now())

    def stop_step(
        self, release_id: int, step_key: str, user: str, reason: str, via: str = "modal"
    ) -> str:
        """Stop a step from the modal's answer; a refusal (the step moved on, someone not
        allowed) is told to that person alone."""
        release = self.store.load(release_id).release
        try:
            step = release.step(step_key)
            self.apply(release.id, Stop(step.key, user, reason), user, Context(via=via))
        except (NotAllowed, IllegalMove) as exc:
            return self._refuse_click(release, user, step_key, via, exc, "stop_refused")
        return messages.ack("reject", step.title)

    def snooze(self, channel: str, user: str, step_key: str) -> str:
        """Hold a waiting step's reminders off for a while (`/golive snooze`)."""
        record = self._require_active(channel)
        step = record.release.step(step_key)
        self.apply(record.release.id, Snooze(step.key, user), user)
        return messages.ack("snooze", step.title)

    def snooze_message(self, message: OutboxRow, user: str, via: str = "button") -> str | None:
        """The Snooze button of a reminder: None when its step no longer waits."""
        found = self._step_of(message) if message.kind == "reminder" else None
        if found is None or not found[1].waits_on_people:
            return None
        release, step = found
        return self._clicked(release, Snooze(step.key, user), via, "snooze_refused", "snooze")

    def home_opened(self, user: str) -> None:
        """Someone opened golive's App Home: publish their view (through the outbox)."""
        with self.store.transaction():
            self.effects.home(user, self.clock.now())
        self.changed()

    def rollback(self, channel: str, user: str, reason: str) -> str:
        """On-call rolls the release back: plan posted, freeze kept, monitoring kept."""
        record = self.require_current(channel)
        confirm = self.config.action(ROLLBACK) is not None
        self.apply(record.release.id, Rollback(user, reason, confirm), user)
        return messages.ack("rollback_proposed" if confirm else "rollback")

    def abort(self, channel: str, user: str, reason: str) -> str:
        """Abandon the release before completion; the freeze is lifted."""
        record = self.require_current(channel)
        self.apply(record.release.id, Abort(user, reason), user)
        return messages.ack("abort")

    def complete(self, channel: str, user: str) -> str:
        """Go: announce completion, lift the freeze."""
        record = self.require_current(channel)
        self.apply(record.release.id, Complete(user), user)
        return messages.ack("complete")

    def unfreeze(self, channel: str, user: str) -> str:
        """Lift the freeze a rolled-back release of the channel kept, whatever is newest."""
        holder = self._require_holder(channel)
        self.apply(holder.release.id, Unfreeze(user), user)
        return messages.ack("unfreeze", holder.release.version)

    async def open_pull(self, channel: str, user: str, number: int, reason: str) -> PullRequest:
        """What `allow_merge` needs, asked of GitHub on the event loop: one open pull request
        into the frozen branch, after checking that there is a freeze, a reason and the right
        person (nothing is asked of GitHub otherwise)."""
        holder = self._require_holder(channel)
        if not reason.strip():
            raise IllegalMove(Why.REASON_REQUIRED, action="allow")
        authorize_kind(holder.release, AllowMerge, user)
        return await self._open_pull(number)

    def allow_merge(self, channel: str, user: str, pull: PullRequest, reason: str) -> str:
        """Let one open pull request's current head through the channel's freeze (the hotfix
        path), on the record; the merge gate marks it `success`."""
        holder = self._require_holder(channel)
        event = AllowMerge(user, pull.number, pull.sha, reason.strip(), pull.title)
        self.apply(holder.release.id, event, user)
        return messages.ack("allow", f"#{pull.number} (head {pull.sha[:7]})")

    async def _open_pull(self, number: int) -> PullRequest:
        """An open pull request into the frozen branch, or a refusal saying why not."""
        ci = self.config.preconditions.ci
        if ci is None or not ci.freeze_branch:
            raise IllegalMove(Why.NO_MERGE_GATE, token_env=None)
        token = self.secrets.get(ci.token_env)
        if token is None:
            raise IllegalMove(Why.NO_MERGE_GATE, token_env=ci.token_env)
        try:
            pull = await pull_request(
                self.client, ci.github_url, ci.repository, number, token, PULL_LOOKUP_TIMEOUT
            )
        except ProviderError as exc:
            raise IllegalMove(Why.GITHUB_UNAVAILABLE, error=exc.message) from None
        if pull is None:
            raise IllegalMove(Why.UNKNOWN_PULL, number=number, repository=ci.repository)
        if pull.state != "open":
            raise IllegalMove(Why.PULL_CLOSED, number=number, merged=pull.merged)
        if pull.base != ci.freeze_branch:
            raise IllegalMove(
                Why.PULL_NOT_GATED, number=number, base=pull.base, branch=ci.freeze_branch
            )
        return pull

    def status(self, channel: str) -> str:
        """Where the channel's release stands and what waits on whom."""
        record = self.require_current(channel)
        return card.render_status(
            record.release,
            self.config,
            self.clock.now(),
            self.effects.action_links(record.release),
            shortened=record.shortened,
            closed_at=record.closed_at,
        )

    def history(self, limit: int = 20) -> str:
        """The newest releases, one line each."""
        return history(self.store, self.config, limit)


async def _nothing() -> None:
    """What a lookup that is not needed answers."""
    return None


def _event_name(item: object) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(item).__name__).lower()


def _event_data(item: object) -> dict[str, Any]:
    if dataclasses.is_dataclass(item) and not isinstance(item, type):
        return {k: v for k, v in dataclasses.asdict(item).items() if v is not None}
    return {}
