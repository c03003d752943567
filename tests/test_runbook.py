"""The runbook state machine: every (status, event) pair, legal and illegal, without I/O."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.errors import GoliveError, IllegalMove, NotAllowed
from bot.domain.events import (
    Abort,
    ActionFinished,
    Activate,
    AllowMerge,
    Approve,
    CheckFinished,
    Complete,
    FreezeChanged,
    FreezeTaken,
    HandedOver,
    Handover,
    Kickoff,
    MergeAllowed,
    PhaseDone,
    Remind,
    Reminded,
    Retry,
    Rollback,
    RunCheck,
    Snooze,
    Snoozed,
    StageOpened,
    StepBlocked,
    StepStopped,
    Stop,
    TakeFreeze,
    TimerElapsed,
    Unfreeze,
    Waive,
)
from bot.domain.model import (
    Outcome,
    Phase,
    Release,
    ReleaseStatus,
    Role,
    Roles,
    Stage,
    StageKind,
    Step,
    StepStatus,
)
from bot.domain.plan import PlannedService, plan_steps
from bot.domain.transition import transition
from bot.render.refusals import refusal

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
ROLES = Roles(commander="UCOM", on_call="UONC", backend="UBAC", frontend="UFRO")

CHECK = Stage(StageKind.CHECK, Role.BACKEND, "it works", check="health")
APPROVE = Stage(StageKind.APPROVE, Role.BACKEND, "approve it")
TIMER = Stage(StageKind.TIMER, Role.ON_CALL, "wait", seconds=60)
ACTION = Stage(StageKind.ACTION, Role.BACKEND, "the deploy succeeds", services=("x",))


@contextmanager
def refused(kind: type[GoliveError], pattern: str) -> Iterator[None]:
    """The block raises `kind`, and the refusal people read matches `pattern`."""
    with pytest.raises(kind) as caught:
        yield
    words = refusal(caught.value)
    assert re.search(pattern, words), words


def release_with(
    *steps: Step, status: ReleaseStatus = ReleaseStatus.ACTIVE, **kw: object
) -> Release:
    """A release made of the given steps."""
    return Release(1, "C1", "v1.0.0", status, ROLES, tuple(steps), **kw)  # type: ignore[arg-type]


def step_in(status: StepStatus, key: str = "s", phase: Phase = Phase.DEPLOYMENT) -> Step:
    """A one-stage step whose stage fits the status it is in."""
    stage = {
        StepStatus.PENDING: APPROVE,
        StepStatus.RUNNING: CHECK,
        StepStatus.AWAITING: APPROVE,
        StepStatus.TIMING: TIMER,
        StepStatus.ACTING: ACTION,
        StepStatus.BLOCKED: CHECK,
        StepStatus.DONE: APPROVE,
    }[status]
    return Step(
        key,
        phase,
        key.upper(),
        (stage,),
        status=status,
        attempt=1,
        deadline=NOW - timedelta(seconds=1) if status is StepStatus.TIMING else None,
        failing=("health:x",) if status is StepStatus.BLOCKED else (),
        outcomes=(Outcome.APPROVED,) if status is StepStatus.DONE else (),
    )


STEP_EVENTS = {
    "approve": Approve("s", "UBAC"),
    "check_finished": CheckFinished("s", 1, (("health:x", True),)),
    "retry": Retry("s", "UCOM"),
    "timer_elapsed": TimerElapsed("s"),
    "stop": Stop("s", "UCOM", "wrong database"),
    "remind": Remind("s"),
    "snooze": Snooze("s", "UCOM"),
    "action_finished": ActionFinished("s", 1, (("deploy:x", True),)),
}

# What each step event does in each step status: the new status, "ignored", or the start of the
# sentence explaining the refusal. Written out by hand, not derived from the rules under test.
STEP_TABLE: dict[tuple[StepStatus, str], str] = {
    (StepStatus.PENDING, "approve"): "S is not open yet",
    (StepStatus.PENDING, "check_finished"): "ignored",
    (StepStatus.PENDING, "retry"): "S is not blocked",
    (StepStatus.PENDING, "timer_elapsed"): "ignored",
    (StepStatus.RUNNING, "approve"): "the bot is still checking S",
    (StepStatus.RUNNING, "check_finished"): "done",
    (StepStatus.RUNNING, "retry"): "S is already being checked",
    (StepStatus.RUNNING, "timer_elapsed"): "ignored",
    (StepStatus.AWAITING, "approve"): "done",
    (StepStatus.AWAITING, "check_finished"): "ignored",
    (StepStatus.AWAITING, "retry"): "S is not blocked",
    (StepStatus.AWAITING, "timer_elapsed"): "ignored",
    (StepStatus.TIMING, "approve"): "S is still running its timer",
    (StepStatus.TIMING, "check_finished"): "ignored",
    (StepStatus.TIMING, "retry"): "S is not blocked",
    (StepStatus.TIMING, "timer_elapsed"): "done",
    (StepStatus.BLOCKED, "approve"): "S is blocked by health:x",
    (StepStatus.BLOCKED, "check_finished"): "ignored",
    (StepStatus.BLOCKED, "retry"): "running",
    (StepStatus.BLOCKED, "timer_elapsed"): "ignored",
    (StepStatus.DONE, "approve"): "S is already done",
    (StepStatus.DONE, "check_finished"): "ignored",
    (StepStatus.DONE, "retry"): "S is not blocked",
    (StepStatus.DONE, "timer_elapsed"): "ignored",
    (StepStatus.ACTING, "approve"): "the bot is running S; wait for its result",
    (StepStatus.ACTING, "check_finished"): "ignored",
    (StepStatus.ACTING, "retry"): "the bot is still running S",
    (StepStatus.ACTING, "timer_elapsed"): "ignored",
    (StepStatus.ACTING, "action_finished"): "done",
    **{
        (status, "action_finished"): "ignored"
        for status in StepStatus
        if status is not StepStatus.ACTING
    },
    (StepStatus.PENDING, "stop"): "S is not under way, so there is nothing to stop",
    (StepStatus.RUNNING, "stop"): "blocked",
    (StepStatus.AWAITING, "stop"): "blocked",
    (StepStatus.TIMING, "stop"): "blocked",
    (StepStatus.ACTING, "stop"): "blocked",
    (StepStatus.BLOCKED, "stop"): "S is already stopped (health:x)",
    (StepStatus.DONE, "stop"): "S is not under way, so there is nothing to stop",
    (StepStatus.PENDING, "remind"): "ignored",
    (StepStatus.RUNNING, "remind"): "ignored",
    (StepStatus.AWAITING, "remind"): "awaiting",
    (StepStatus.TIMING, "remind"): "ignored",
    (StepStatus.ACTING, "remind"): "ignored",
    (StepStatus.BLOCKED, "remind"): "blocked",
    (StepStatus.DONE, "remind"): "ignored",
    (StepStatus.PENDING, "snooze"): "S is not waiting on anyone",
    (StepStatus.RUNNING, "snooze"): "S is not waiting on anyone",
    (StepStatus.AWAITING, "snooze"): "awaiting",
    (StepStatus.TIMING, "snooze"): "S is not waiting on anyone",
    (StepStatus.ACTING, "snooze"): "S is not waiting on anyone",
    (StepStatus.BLOCKED, "snooze"): "blocked",
    (StepStatus.DONE, "snooze"): "S is not waiting on anyone",
}


def test_step_table_covers_every_pair() -> None:
    """The table below names every step status with every step event."""
    assert set(STEP_TABLE) == {(s, e) for s in StepStatus for e in STEP_EVENTS}


@pytest.mark.parametrize(("status", "event_name"), sorted(STEP_TABLE, key=str))
def test_step_event(status: StepStatus, event_name: str) -> None:
    """Each (step status, event) pair moves the step, is ignored, or is refused with a reason."""
    expected = STEP_TABLE[(status, event_name)]
    release = release_with(step_in(status))
    event = STEP_EVENTS[event_name]
    if expected == "ignored":
        result = transition(release, event, NOW)
        assert result.release == release and result.effects == ()
    elif expected in {s.value for s in StepStatus}:
        result = transition(release, event, NOW)
        assert result.release.step("s").status.value == expected
    else:
        with pytest.raises(IllegalMove) as caught:
            transition(release, event, NOW)
        assert refusal(caught.value).startswith(expected)


def test_only_the_owner_can_approve() -> None:
    """Someone else's approval is refused naming the owner, and changes nothing."""
    release = release_with(step_in(StepStatus.AWAITING))
    with refused(NotAllowed, r"only <@UBAC> can approve S"):
        transition(release, Approve("s", "UCOM"), NOW)


def test_manual_confirmation_is_recorded_as_manual() -> None:
    """A stage standing in for an unconfigured check finishes as MANUAL, never as passed."""
    manual = Stage(StageKind.APPROVE, Role.BACKEND, "confirm", check="ci", manual=True)
    step = replace(step_in(StepStatus.AWAITING), stages=(manual,))
    result = transition(release_with(step), Approve("s", "UBAC"), NOW)
    assert result.release.step("s").outcome is Outcome.MANUAL


@pytest.mark.parametrize("ok", [False])
def test_failing_check_blocks(ok: bool) -> None:
    """A check verdict that is not ok blocks the step and names the failing check."""
    release = release_with(step_in(StepStatus.RUNNING))
    result = transition(release, CheckFinished("s", 1, (("health:x", ok), ("health:y", True))), NOW)
    step = result.release.step("s")
    assert step.status is StepStatus.BLOCKED and step.failing == ("health:x",)
    assert StepBlocked("s", ("health:x",)) in result.effects


def test_empty_verdict_blocks() -> None:
    """A check that produced no verdict at all cannot pass."""
    release = release_with(step_in(StepStatus.RUNNING))
    result = transition(release, CheckFinished("s", 1, ()), NOW)
    assert result.release.step("s").status is StepStatus.BLOCKED


def test_stale_check_result_is_ignored() -> None:
    """A result from an attempt a retry replaced does not move the step."""
    release = release_with(step_in(StepStatus.RUNNING))
    result = transition(release, CheckFinished("s", 0, (("health:x", True),)), NOW)
    assert result.release == release


def test_timer_before_deadline_is_ignored() -> None:
    """A timer that fires early (clock skew) does not end the stage."""
    step = replace(step_in(StepStatus.TIMING), deadline=NOW + timedelta(seconds=5))
    release = release_with(step)
    assert transition(release, TimerElapsed("s"), NOW).release == release


def test_retry_runs_the_check_again_with_a_new_attempt() -> None:
    """Retrying a blocked step asks for the check again, guarded by a new attempt number."""
    release = release_with(step_in(StepStatus.BLOCKED))
    result = transition(release, Retry("s", "UCOM", "full"), NOW)
    assert RunCheck("s", "health", 2, "full") in result.effects


def test_sequential_phase_opens_one_step_at_a_time() -> None:
    """In the deployment phase the next step opens only when the previous one is done."""
    first = step_in(StepStatus.AWAITING, "a")
    second = replace(step_in(StepStatus.PENDING, "b"))
    release = release_with(first, second)
    moved = transition(release, Approve("a", "UBAC"), NOW).release
    assert moved.step("b").status is StepStatus.AWAITING


def test_parallel_phase_opens_every_step_at_once() -> None:
    """All preconditions open together when the release activates."""
    a = step_in(StepStatus.PENDING, "a", Phase.PRECONDITIONS)
    b = step_in(StepStatus.PENDING, "b", Phase.PRECONDITIONS)
    c = step_in(StepStatus.PENDING, "c", Phase.PREFLIGHT)
    release = release_with(a, b, c, status=ReleaseStatus.SCHEDULED)
    result = transition(release, Activate(), NOW)
    statuses = [s.status for s in result.release.steps]
    assert statuses == [StepStatus.AWAITING, StepStatus.AWAITING, StepStatus.PENDING]
    assert PhaseDone(Phase.PRECONDITIONS) not in result.effects


def test_deployment_waits_for_kickoff() -> None:
    """With a scheduled go-live the deployment phase opens only at T-0."""
    pre = step_in(StepStatus.AWAITING, "a", Phase.PREFLIGHT)
    dep = step_in(StepStatus.PENDING, "b", Phase.DEPLOYMENT)
    release = release_with(pre, dep, kickoff_at=NOW + timedelta(minutes=10))
    waiting = transition(release, Approve("a", "UBAC"), NOW).release
    assert waiting.step("b").status is StepStatus.PENDING
    later = NOW + timedelta(minutes=10)
    assert transition(waiting, Kickoff(), later).release.step("b").status is StepStatus.AWAITING


def test_freeze_step_freezes_merges() -> None:
    """Approving the freeze step freezes merges."""
    freeze = replace(step_in(StepStatus.AWAITING, "freeze"))
    result = transition(release_with(freeze), Approve("freeze", "UBAC"), NOW)
    assert result.release.frozen and FreezeChanged(True) in result.effects


def test_waiver_by_step_or_check_name() -> None:
    """A waiver of the failing check (or its step) lets the step pass as waived."""
    for name in ("s", "health:x"):
        release = release_with(step_in(StepStatus.BLOCKED))
        result = transition(release, Waive(name, "UCOM", "known flake"), NOW)
        assert result.release.step("s").outcome is Outcome.WAIVED
        assert name in result.release.waivers


def test_partial_waiver_keeps_the_step_blocked() -> None:
    """Waiving one of two failing checks leaves the other one blocking."""
    step = replace(step_in(StepStatus.BLOCKED), failing=("health:x", "health:y"))
    result = transition(release_with(step), Waive("health:x", "UCOM", "ok"), NOW)
    assert result.release.step("s").failing == ("health:y",)
    assert result.release.step("s").status is StepStatus.BLOCKED


def test_waiver_of_unknown_check_lists_what_fails() -> None:
    """Waiving something that is not failing says what is failing."""
    release = release_with(step_in(StepStatus.BLOCKED))
    with refused(IllegalMove, r"`ci` is not a failing check; failing now: "):
        transition(release, Waive("ci", "UCOM", "x"), NOW)


def test_waiver_needs_a_reason() -> None:
    """A blank reason is refused."""
    release = release_with(step_in(StepStatus.BLOCKED))
    with refused(IllegalMove, "needs a reason"):
        transition(release, Waive("s", "UCOM", "  "), NOW)


def test_complete_refused_until_every_step_is_done() -> None:
    """Completion names what is still open."""
    release = release_with(step_in(StepStatus.AWAITING))
    with refused(IllegalMove, r"cannot be completed yet: now: S waits on <@UBAC>"):
        transition(release, Complete("UCOM"), NOW)


def test_abort_lifts_the_freeze_and_rollback_keeps_it() -> None:
    """Abort lifts a freeze; a rollback keeps merges frozen."""
    frozen = release_with(step_in(StepStatus.AWAITING), frozen=True)
    aborted = transition(frozen, Abort("UCOM", "bad"), NOW)
    assert not aborted.release.frozen and FreezeChanged(False) in aborted.effects
    rolled = transition(frozen, Rollback("UONC", "5xx"), NOW)
    assert rolled.release.frozen and rolled.release.status is ReleaseStatus.ROLLED_BACK


def test_a_freeze_is_let_through_or_handed_on_only_while_held() -> None:
    """Allowing a pull request records it and keeps the freeze; handing the freeze on lifts
    nothing but the old release's hold; neither applies without a freeze; both need the
    commander."""
    frozen = release_with(step_in(StepStatus.DONE), status=ReleaseStatus.ROLLED_BACK, frozen=True)
    allow = AllowMerge("UCOM", 7, "b" * 40, "hotfix")
    allowed = transition(frozen, allow, NOW)
    assert allowed.release == frozen and allowed.effects == (MergeAllowed(allow),)
    taken = transition(frozen, TakeFreeze("UCOM", "v2.4.1"), NOW)
    assert not taken.release.frozen and taken.effects == (FreezeTaken("v2.4.1", "UCOM"),)
    with refused(IllegalMove, "merges are not frozen"):
        transition(replace(frozen, frozen=False), TakeFreeze("UCOM", "v2.4.1"), NOW)
    with refused(IllegalMove, "merges are not frozen"):
        transition(replace(frozen, frozen=False), AllowMerge("UCOM", 7, "b" * 40, "x"), NOW)
    with refused(IllegalMove, "a reason is required"):
        transition(frozen, AllowMerge("UCOM", 7, "b" * 40, "  "), NOW)
    with refused(NotAllowed, "only the commander"):
        transition(frozen, AllowMerge("UONC", 7, "b" * 40, "hotfix"), NOW)
    with refused(NotAllowed, "only the commander"):
        transition(frozen, TakeFreeze("UBAC", "v2.4.1"), NOW)


RELEASE_EVENTS = {
    "activate": Activate(),
    "kickoff": Kickoff(),
    "waive": Waive("s", "UCOM", "reason"),
    "complete": Complete("UCOM"),
    "rollback": Rollback("UONC", "errors"),
    "unfreeze": Unfreeze("UCOM"),
    "abort": Abort("UCOM", "reason"),
    "handover": Handover("UCOM", "UNEW"),
    "allowmerge": AllowMerge("UCOM", 101, "a" * 40, "hotfix"),
    "takefreeze": TakeFreeze("UCOM", "v9.9.9"),
}

# The release status after each event, "ignored", or "illegal". The release used has one
# blocked step when active (so a waiver applies), is frozen, and is otherwise all done.
RELEASE_TABLE: dict[tuple[ReleaseStatus, str], str] = {}
for _status in ReleaseStatus:
    for _event in RELEASE_EVENTS:
        RELEASE_TABLE[(_status, _event)] = "illegal"
RELEASE_TABLE.update(
    {
        (ReleaseStatus.SCHEDULED, "activate"): "active",
        (ReleaseStatus.SCHEDULED, "kickoff"): "ignored",
        (ReleaseStatus.SCHEDULED, "abort"): "aborted",
        (ReleaseStatus.SCHEDULED, "handover"): "scheduled",
        (ReleaseStatus.ACTIVE, "activate"): "ignored",
        (ReleaseStatus.ACTIVE, "kickoff"): "ignored",
        (ReleaseStatus.ACTIVE, "waive"): "active",
        (ReleaseStatus.ACTIVE, "complete"): "completed",
        (ReleaseStatus.ACTIVE, "rollback"): "rolled_back",
        (ReleaseStatus.ACTIVE, "abort"): "aborted",
        (ReleaseStatus.ACTIVE, "handover"): "active",
        (ReleaseStatus.COMPLETED, "activate"): "ignored",
        (ReleaseStatus.COMPLETED, "kickoff"): "ignored",
        (ReleaseStatus.COMPLETED, "rollback"): "rolled_back",
        (ReleaseStatus.COMPLETED, "handover"): "completed",
        (ReleaseStatus.ABORTED, "activate"): "ignored",
        (ReleaseStatus.ABORTED, "kickoff"): "ignored",
        (ReleaseStatus.ROLLED_BACK, "activate"): "ignored",
        (ReleaseStatus.ROLLED_BACK, "kickoff"): "ignored",
        (ReleaseStatus.ROLLED_BACK, "unfreeze"): "rolled_back",
        (ReleaseStatus.ROLLED_BACK, "handover"): "rolled_back",
        (ReleaseStatus.SCHEDULED, "allowmerge"): "scheduled",
        (ReleaseStatus.ACTIVE, "allowmerge"): "active",
        (ReleaseStatus.ROLLED_BACK, "allowmerge"): "rolled_back",
        (ReleaseStatus.ROLLED_BACK, "takefreeze"): "rolled_back",
    }
)


def _release_for(status: ReleaseStatus, event_name: str) -> Release:
    if status is ReleaseStatus.ACTIVE and event_name == "waive":
        steps: tuple[Step, ...] = (step_in(StepStatus.BLOCKED),)
    elif status is ReleaseStatus.SCHEDULED:
        steps = (step_in(StepStatus.PENDING),)
    else:
        steps = (step_in(StepStatus.DONE),)
    return release_with(*steps, status=status, frozen=True)


@pytest.mark.parametrize(("status", "event_name"), sorted(RELEASE_TABLE, key=str))
def test_release_event(status: ReleaseStatus, event_name: str) -> None:
    """Each (release status, event) pair changes the status as the table says, or is refused."""
    expected = RELEASE_TABLE[(status, event_name)]
    release = _release_for(status, event_name)
    event = RELEASE_EVENTS[event_name]
    if expected == "illegal":
        with pytest.raises(IllegalMove) as caught:
            transition(release, event, NOW)
        assert release.version in refusal(caught.value)
        return
    result = transition(release, event, NOW)
    if expected == "ignored":
        assert result.release == release and result.effects == ()
    else:
        assert result.release.status.value == expected


def test_step_events_in_ended_release() -> None:
    """Approvals in an ended release are refused; late check results and timers are ignored."""
    release = release_with(step_in(StepStatus.AWAITING), status=ReleaseStatus.ABORTED)
    with refused(IllegalMove, "aborted"):
        transition(release, Approve("s", "UBAC"), NOW)
    assert transition(release, CheckFinished("s", 1, ()), NOW).release == release
    assert transition(release, TimerElapsed("s"), NOW).release == release


def test_handover_to_the_commander_is_refused() -> None:
    """Handing over to yourself is a mistake worth saying."""
    release = release_with(step_in(StepStatus.AWAITING))
    with refused(IllegalMove, "already the commander"):
        transition(release, Handover("UCOM", "UCOM"), NOW)


def test_unknown_step_lists_the_steps() -> None:
    """Approving a step that does not exist names the ones that do."""
    release = release_with(step_in(StepStatus.AWAITING))
    with refused(IllegalMove, r"no step called `nope` .*steps: s"):
        transition(release, Approve("nope", "UBAC"), NOW)


def _plan(available: bool) -> tuple[Step, ...]:
    services = [
        PlannedService("partner-registry", "backend", 1, True),
        PlannedService("billing-api", "backend", 2, False),
        PlannedService("search", "backend", 2, False),
        PlannedService("web-portal", "frontend", 1, False),
    ]
    return plan_steps(services, lambda name, scope: available, 900)


def test_plan_follows_the_runbook_order() -> None:
    """Preconditions, preflight, freeze, backup, migrations, waves, portal, soak, checks."""
    keys = [s.key for s in _plan(True)]
    assert keys == [
        "ci",
        "incidents",
        "notes",
        "rollback",
        "baseline",
        "preflight",
        "freeze",
        "backup",
        "migrations",
        "wave-1",
        "wave-2",
        "portal",
        "soak",
        "api",
        "portal-paths",
        "criteria",
    ]


def test_plan_owners_and_scopes() -> None:
    """Each step names its owner role; waves and the portal gate check the right services."""
    steps = {s.key: s for s in _plan(True)}
    assert steps["freeze"].owner is Role.COMMANDER
    assert steps["incidents"].owner is Role.ON_CALL
    assert steps["wave-2"].services == ("billing-api", "search")
    assert steps["wave-2"].stages[1].services == ("billing-api", "search")
    assert steps["portal"].stages[0].services == ("partner-registry", "billing-api", "search")
    assert steps["portal"].stages[1].role is Role.FRONTEND
    assert steps["migrations"].services == ("partner-registry",)
    assert steps["soak"].stages[0].seconds == 900 and steps["soak"].stages[1].role is Role.ON_CALL


def test_plan_turns_unconfigured_checks_into_manual_confirmations() -> None:
    """Without a configured check, the same owner confirms by hand, marked manual."""
    manual = {s.key: s for s in _plan(False)}
    for key in ("ci", "incidents", "rollback", "baseline", "preflight", "api", "criteria"):
        stage = manual[key].stages[0]
        assert stage.kind is StageKind.APPROVE and stage.manual, key
    assert manual["ci"].owner is Role.COMMANDER
    assert manual["wave-1"].stages[1].manual
    assert not any(s.kind is StageKind.CHECK for step in manual.values() for s in step.stages)


def test_activation_asks_for_every_precondition() -> None:
    """Opening the preconditions asks each owner and starts each automated check."""
    release = release_with(*_plan(True), status=ReleaseStatus.SCHEDULED)
    effects = transition(release, Activate(), NOW).effects
    runs = {e.step for e in effects if isinstance(e, RunCheck)}
    assert runs == {"ci", "incidents", "notes", "rollback", "baseline"}
    assert all(isinstance(e, StageOpened | RunCheck) for e in effects[1:])


def test_soak_ending_with_an_open_breach_blocks() -> None:
    """The soak does not lead to widening while a breach is open; retry starts a fresh soak."""
    release = release_with(step_in(StepStatus.TIMING))
    result = transition(release, TimerElapsed("s", breaches=("5xx",)), NOW)
    step = result.release.step("s")
    assert step.status is StepStatus.BLOCKED and step.failing == ("5xx",)
    again = transition(result.release, Retry("s", "UCOM"), NOW).release.step("s")
    assert again.status is StepStatus.TIMING and again.deadline == NOW + timedelta(seconds=60)


def test_a_stop_blocks_with_its_reason_and_a_retry_clears_it() -> None:
    """Stopping keeps the reason on the step (blocked, failing `stopped`); a retry asks again and
    forgets it; a stop needs a reason."""
    release = release_with(step_in(StepStatus.AWAITING))
    with refused(IllegalMove, "say why you stop it"):
        transition(release, Stop("s", "UBAC", "  "), NOW)
    stopped = transition(release, Stop("s", "UBAC", "wrong database"), NOW)
    step = stopped.release.step("s")
    assert (step.status, step.failing, step.reason) == (
        StepStatus.BLOCKED,
        ("stopped",),
        "wrong database",
    )
    assert stopped.effects == (StepStopped("s", "UBAC", "wrong database", False),)
    again = transition(stopped.release, Retry("s", "UBAC"), NOW).release.step("s")
    assert again.status is StepStatus.AWAITING and again.reason is None and again.failing == ()


def test_who_may_stop_a_step() -> None:
    """The step's owner, the commander and on-call may stop it; anyone else is told who may."""
    release = release_with(step_in(StepStatus.AWAITING))
    for user in ("UBAC", "UCOM", "UONC"):
        assert transition(release, Stop("s", user, "no"), NOW).release.step("s").reason == "no"
    with refused(NotAllowed, r"^only <@UBAC>, the commander \(<@UCOM>\) or on-call \(<@UONC>\)"):
        transition(release, Stop("s", "UFRO", "no"), NOW)


def test_on_calls_stop_of_the_soak_or_a_verification_offers_the_rollback_plan() -> None:
    """On-call stopping the soak or a verification step is offered the rollback plan; the
    commander stopping them, or on-call stopping a deployment step, is not."""
    soak = replace(step_in(StepStatus.TIMING, "soak"), deadline=NOW + timedelta(minutes=5))
    api = step_in(StepStatus.RUNNING, "api", Phase.VERIFICATION)
    backup = step_in(StepStatus.AWAITING, "backup")
    for step, user, offered in (
        (soak, "UONC", True),
        (api, "UONC", True),
        (soak, "UCOM", False),
        (backup, "UONC", False),
    ):
        effects = transition(release_with(step), Stop(step.key, user, "5xx"), NOW).effects
        assert effects == (StepStopped(step.key, user, "5xx", offered),), (step.key, user)
    blocked = transition(release_with(soak), Stop("soak", "UONC", "5xx"), NOW).release
    assert blocked.step("soak").deadline is None  # the soak timer no longer runs


def test_reminders_escalate_to_the_commander_or_to_on_call() -> None:
    """A reminder names the step's owner; escalated, the commander too — or on-call when the
    commander owns the step."""
    mine = replace(
        step_in(StepStatus.AWAITING),
        stages=(Stage(StageKind.APPROVE, Role.COMMANDER, "freeze"),),
    )
    theirs = step_in(StepStatus.AWAITING, "t")
    release = release_with(replace(mine, key="m"), theirs)
    assert transition(release, Remind("t"), NOW).effects == (Reminded("t", "UBAC", None),)
    assert transition(release, Remind("t", escalate=True), NOW).effects == (
        Reminded("t", "UBAC", "UCOM"),
    )
    assert transition(release, Remind("m", escalate=True), NOW).effects == (
        Reminded("m", "UCOM", "UONC"),
    )


def test_a_snooze_lasts_30_minutes_and_is_the_owners_or_the_commanders() -> None:
    """The owner or the commander may snooze a waiting step's reminders, for 30 minutes."""
    release = release_with(step_in(StepStatus.AWAITING))
    assert transition(release, Snooze("s", "UBAC"), NOW).effects == (
        Snoozed("s", "UBAC", NOW + timedelta(minutes=30)),
    )
    with refused(NotAllowed, r"only the commander or <@UBAC> can snooze reminders of S"):
        transition(release, Snooze("s", "UONC"), NOW)


@pytest.mark.parametrize(
    ("role", "user", "allowed"),
    [
        (Role.BACKEND, "UBAC", True),  # the role's holder
        (Role.BACKEND, "UCOM", True),  # the commander
        (Role.BACKEND, "UFRO", False),
        (Role.BACKEND, "UNEW", False),  # only on-call may be taken by the incoming holder
        (Role.ON_CALL, "UNEW", True),
        (Role.ON_CALL, "UONC", True),
        (Role.ON_CALL, "UFRO", False),
        (Role.COMMANDER, "UNEW", False),
        (Role.COMMANDER, "UCOM", True),
    ],
)
def test_who_may_hand_over_each_role(role: Role, user: str, allowed: bool) -> None:
    """A role passes by its holder or the commander; on-call also by the incoming on-call."""
    release = release_with(step_in(StepStatus.AWAITING))
    event = Handover(user, "UNEW", role)
    if not allowed:
        with pytest.raises(NotAllowed):
            transition(release, event, NOW)
        return
    result = transition(release, event, NOW)
    assert result.release.roles.user(role) == "UNEW"
    assert result.effects == (HandedOver(release.roles.user(role), "UNEW", role),)
