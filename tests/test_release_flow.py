"""Whole releases through the console: owners approve their own steps, strangers cannot."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.domain.clock import FakeClock
from bot.domain.model import Outcome, ReleaseStatus, StepStatus
from tests.conftest import (
    ANNOUNCE,
    BACKEND,
    CHANNEL,
    COMMANDER,
    FRONTEND,
    ON_CALL,
    STRANGER,
    Harness,
    make_config,
    walk,
)


async def test_full_release_through_the_console(harness: Harness) -> None:
    """start → every owner approves → complete: freeze announced and lifted, record complete."""
    h = harness
    reply = await h.reply(COMMANDER, "/golive start v2.4.0")
    assert reply.startswith("Release v2.4.0 started")
    await walk(h, "criteria")
    assert h.release().all_done
    assert await h.reply(COMMANDER, "/golive complete") == "Release completed."
    release = h.release()
    assert release.status is ReleaseStatus.COMPLETED and not release.frozen
    announced = [m.text for m in h.messages() if m.channel == ANNOUNCE]
    assert len(announced) == 3
    assert announced[0].startswith("🧊 *Merge freeze*")
    assert announced[1].startswith("🎉 Release v2.4.0 is complete")
    assert announced[2].startswith("🟢 *Merge freeze lifted*")
    assert "CI green confirmed by hand" in announced[1]
    approvals = h.store.approvals(release.id)
    assert {(a.step_key, a.user) for a in approvals} >= {
        ("freeze", COMMANDER),
        ("backup", BACKEND),
        ("portal", FRONTEND),
        ("soak", ON_CALL),
    }
    assert all(a.via == "console" for a in approvals)
    assert all(m.status == "delivered" for m in h.messages() if m.kind != "update")


async def test_strangers_approval_is_refused(harness: Harness) -> None:
    """A reaction or command by someone other than the owner is refused and changes nothing."""
    h = harness
    await h.say(COMMANDER, "/golive start v2.4.0")
    printed = await h.react(STRANGER, "incidents")
    assert "[only @sam sees this] only @carol can approve No critical incident" in printed
    assert h.step("incidents").status is StepStatus.AWAITING
    reply = await h.reply(COMMANDER, "/golive approve incidents")
    assert reply == "only @carol can approve No critical incident"
    assert h.step("incidents").status is StepStatus.AWAITING
    assert h.store.approvals(h.release().id) == []
    other = await h.react(ON_CALL, "incidents", reaction="eyes")
    assert h.step("incidents").status is StepStatus.AWAITING, other
    await h.react(ON_CALL, "incidents")
    assert h.step("incidents").outcome is Outcome.MANUAL


async def test_abort_lifts_the_freeze_and_stops_the_release(harness: Harness) -> None:
    """Abort by the commander after the freeze: announced, freeze lifted, approvals refused."""
    h = harness
    await h.say(COMMANDER, "/golive start v2.4.0")
    await walk(h, "freeze")
    assert h.release().frozen
    refused = await h.reply(BACKEND, "/golive abort not mine")
    assert refused == "only the commander (@alice) can abort this release"
    assert await h.reply(COMMANDER, "/golive abort payment provider outage") == "Release aborted."
    release = h.release()
    assert release.status is ReleaseStatus.ABORTED and not release.frozen
    assert release.reason == "payment provider outage"
    texts = [m.text for m in h.messages() if m.channel == ANNOUNCE]
    assert texts[-2].startswith("🛑 Release v2.4.0 was aborted by <@U0COMMAND>")
    assert texts[-1].startswith("🟢 *Merge freeze lifted*")
    assert "aborted" in await h.reply(BACKEND, "/golive approve backup")
    assert "start" in await h.reply(COMMANDER, "/golive start v2.4.1")


async def test_rollback_keeps_the_freeze_until_the_commander_lifts_it(harness: Harness) -> None:
    """Only on-call rolls back; the plan lists services; merges stay frozen until unfreeze."""
    h = harness
    await h.say(COMMANDER, "/golive start v2.4.0")
    await walk(h, "wave-1")
    assert "only on-call" in await h.reply(COMMANDER, "/golive rollback errors")
    assert "needs a reason" in await h.reply(ON_CALL, "/golive rollback")
    await h.say(ON_CALL, "/golive rollback 5xx doubled after wave 1")
    release = h.release()
    assert release.status is ReleaseStatus.ROLLED_BACK and release.frozen
    rollback = [m.text for m in h.messages() if m.text.startswith("⏪") and m.kind != "update"]
    assert len(rollback) == 2  # release channel and announce channel
    assert "partner-registry: no rollback target recorded" in rollback[0]
    assert "5xx doubled after wave 1" in rollback[0]
    await h.say(COMMANDER, "/golive unfreeze")
    assert not h.release().frozen
    assert "not frozen" in await h.reply(COMMANDER, "/golive unfreeze")


async def test_restart_resumes_at_the_same_step(tmp_path: Path) -> None:
    """A new process on the same database continues where the old one stopped, repeating nothing."""
    clock = FakeClock()
    config = make_config(database=str(tmp_path / "golive.db"))
    first = Harness(config, clock, config.database)
    await first.say(COMMANDER, "/golive start v2.4.0")
    await walk(first, "backup")
    delivered_before = {m.id for m in first.messages() if m.status == "delivered"}
    # The migrations request was committed; the process dies before delivering it.
    first.service.approve(CHANNEL, BACKEND, "migrations", via="console")
    pending = [m for m in first.messages() if m.status == "pending"]
    assert pending
    await first.service.close()
    first.store.close()

    second = Harness(config, clock, config.database)
    await second.settle()
    assert second.step("migrations").status is StepStatus.DONE
    assert second.step("wave-1").status is StepStatus.AWAITING
    printed_ids = [line.split("]")[0][1:] for line in second.output if line.startswith("[m")]
    assert len(printed_ids) == len(set(printed_ids))
    assert not {f"m{i}" for i in delivered_before} & set(printed_ids)
    assert all(m.status != "pending" for m in second.messages())
    await walk(second, "wave-1")
    assert second.step("wave-1").outcome is Outcome.MANUAL
    approvals = second.store.approvals(second.release().id)
    assert [a.step_key for a in approvals].count("backup") == 1
    await second.service.close()


async def test_soak_timer_then_on_call_widens(harness: Harness) -> None:
    """The soak waits its full duration; only then is on-call asked to widen traffic."""
    h = harness
    await h.say(COMMANDER, "/golive start v2.4.0")
    await walk(h, "portal")
    soak = h.step("soak")
    assert soak.status is StepStatus.TIMING
    assert soak.deadline == h.clock.now() + timedelta(minutes=15)
    assert "still running its timer" in await h.reply(ON_CALL, "/golive approve soak")
    h.clock.advance(14 * 60)
    await h.settle()
    assert h.step("soak").status is StepStatus.TIMING
    h.clock.advance(60)
    await h.settle()
    assert h.step("soak").status is StepStatus.AWAITING
    assert "widen traffic" in h.approval_message("soak").text


async def test_scheduled_go_live(clock: FakeClock) -> None:
    """at= schedules: nothing runs before T-30, preconditions at T-30, deployment opens at T-0."""
    clock.set(datetime(2026, 11, 27, 12, 0, tzinfo=UTC))
    h = Harness(make_config(), clock)
    reply = await h.reply(COMMANDER, "/golive start v2.4.0 at=14:00")
    assert reply.startswith("Release v2.4.0 scheduled for 2026-11-27 14:00 UTC")
    assert h.release().status is ReleaseStatus.SCHEDULED
    assert h.runtime.deadlines.next_due() == datetime(2026, 11, 27, 13, 30, tzinfo=UTC)
    assert "already scheduled" in await h.reply(COMMANDER, "/golive start v2.5.0")
    clock.set(datetime(2026, 11, 27, 13, 30, tzinfo=UTC))
    await h.settle()
    assert h.release().status is ReleaseStatus.ACTIVE
    reminder = [m.text for m in h.messages() if m.text.startswith("⏰ T-30")]
    assert reminder and "<@U0BACKEND>" in reminder[0]
    await walk(h, "preflight")
    assert h.step("freeze").status is StepStatus.PENDING
    assert "Deployment opens at the scheduled go-live" in h.messages()[-1].text or any(
        "Deployment opens" in m.text for m in h.messages()
    )
    clock.set(datetime(2026, 11, 27, 14, 0, tzinfo=UTC))
    await h.settle()
    assert h.step("freeze").status is StepStatus.AWAITING
    await h.service.close()


async def test_notes_and_followups_are_recorded(harness: Harness) -> None:
    """Notes and follow-ups land in the thread and the record, with the owner of a follow-up."""
    h = harness
    await h.say(COMMANDER, "/golive start v2.4.0")
    await h.say(BACKEND, "/golive note partner-registry migration took 4 minutes")
    await h.say(COMMANDER, "/golive followup <@U0BACKEND|bob> speed up the migration")
    notes = h.store.notes(h.release().id)
    assert [(n.kind, n.owner) for n in notes] == [("note", None), ("followup", BACKEND)]
    assert notes[1].text == "speed up the migration"
    assert any(m.text.startswith("📌 Follow-up for <@U0BACKEND>") for m in h.messages())


async def test_handover_moves_the_commander_role(harness: Harness) -> None:
    """After a handover the new commander holds the commander's steps and commands."""
    h = harness
    await h.say(COMMANDER, "/golive start v2.4.0")
    assert "only the commander" in await h.reply(ON_CALL, "/golive handover @carol")
    await h.say(COMMANDER, "/golive handover @carol")
    assert h.release().roles.commander == ON_CALL
    assert await h.reply(COMMANDER, "/golive approve ci") == "only @carol can approve CI green"
    assert await h.reply(ON_CALL, "/golive approve ci") == "Approved CI green."


async def test_an_old_request_cannot_approve_the_next_stage(harness: Harness) -> None:
    """Reacting again to a step's first request does not approve the confirmation after it."""
    h = harness
    await h.say(COMMANDER, "/golive start v2.4.0")
    await walk(h, "migrations")
    first = h.approval_message("wave-1")
    await h.say(BACKEND, f"+:white_check_mark: m{first.id}")
    assert h.step("wave-1").stage == 1  # now waiting for the manual health confirmation
    await h.say(BACKEND, f"+:white_check_mark: m{first.id}")
    assert h.step("wave-1").status is StepStatus.AWAITING
    second = h.approval_message("wave-1")
    assert second.id != first.id
    await h.say(BACKEND, f"+:white_check_mark: m{second.id}")
    assert h.step("wave-1").status is StepStatus.DONE
