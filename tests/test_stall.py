"""Nothing stalls, in the console and in the engine: reminders, stop and handover as the console
shows them, the rollback plan offered to on-call, and App Home views that replace each other."""

from __future__ import annotations

from typing import Any

from bot.domain.clock import FakeClock
from bot.domain.config import Secrets
from bot.domain.model import StepStatus
from bot.engine.home import HOME_KIND
from bot.engine.runtime import Runtime
from bot.engine.service import StartRequest
from bot.store import OutboxRow
from tests.conftest import (
    BACKEND,
    CHANNEL,
    COMMANDER,
    ON_CALL,
    STRANGER,
    Harness,
    make_config,
    walk,
)


async def test_the_console_shows_reminders_stops_and_handovers(harness: Harness) -> None:
    """In the console a reminder is printed in the thread and as a direct message pointing at
    the request; a stop and a handover are printed like every other message."""
    h = harness
    await h.say(COMMANDER, "/golive start v2.4.0")
    for key in ("ci", "notes", "rollback", "baseline"):
        await h.react(h.release().roles.user(h.step(key).owner), key)
    request = h.approval_message("incidents")
    before = len(h.output)
    h.clock.advance(10 * 60)
    await h.settle()
    printed = h.output[before:]
    assert any(
        line.endswith(
            "golive: ⏰ @carol *No critical incident* has waited 10m for you: "
            "confirm by hand that there is no unresolved critical incident (the "
            "request is above)."
        )
        for line in printed
    ), printed
    assert (
        "[direct message to @carol] ⏰ Release v2.4.0: *No critical incident* waits for you "
        f"(10m now) in #C0RELEASE1 — open it in the thread (m{request.id})."
    ) in printed
    printed = await h.say(ON_CALL, "/golive reject incidents PagerDuty shows a SEV1")
    assert any(
        "golive: 🛑 @carol stopped *No critical incident*: PagerDuty shows" in p for p in printed
    )
    h.clock.advance(10 * 60)  # a stopped step waits too: on its owner, then the commander
    printed = await h.say(ON_CALL, "/golive status")
    assert any(
        "⏰ @carol *No critical incident* has been blocked for 10m (stopped): "
        "`/golive retry incidents` once it is fixed" in p
        for p in printed
    ), printed
    printed = await h.say(ON_CALL, f"/golive handover on_call <@{STRANGER}>")
    assert any(
        "🤝 @sam takes over from @carol as on-call of release v2.4.0." in p for p in printed
    ), printed
    assert h.release().roles.on_call == STRANGER


async def test_on_call_stopping_the_soak_is_offered_the_rollback_plan(harness: Harness) -> None:
    """On-call stops the soak: the soak is blocked, the commander mentioned, and the rollback
    plan is right there with the command that runs it."""
    h = harness
    await h.say(COMMANDER, "/golive start v2.4.0")
    await walk(h, until="portal")
    assert h.step("soak").status is StepStatus.TIMING
    printed = await h.say(ON_CALL, "/golive reject soak 5xx is climbing on billing-api")
    stop = next(p for p in printed if "🛑 @carol stopped *Soak & widen traffic*" in p)
    assert "@alice: it stays blocked" in stop
    assert "*Rollback plan*" in stop and "`/golive rollback <reason>`" in stop
    assert h.step("soak").status is StepStatus.BLOCKED


class Recorder:
    """A transport that keeps what it is asked to deliver."""

    def __init__(self) -> None:
        self.delivered: list[OutboxRow] = []

    async def deliver(self, message: OutboxRow, thread_ts: str | None, target: str | None) -> Any:
        """Keep the row; answer with a timestamp of its own."""
        self.delivered.append(message)
        return f"{len(self.delivered)}.000000"


async def test_an_app_home_view_waiting_for_delivery_is_replaced_by_a_newer_one(
    clock: FakeClock,
) -> None:
    """Several changes before a person's view is published publish it once, drawn from the
    state at delivery: the steps that wait on them then."""
    transport = Recorder()
    runtime = Runtime(
        make_config(), Secrets({}), transport, clock=clock, database=":memory:", app_home=True
    )
    service = runtime.service
    service.home_opened(BACKEND)
    service.home_opened(BACKEND)
    service.home_opened(ON_CALL)
    await service.start(CHANNEL, COMMANDER, StartRequest("v2.4.0"))
    await runtime.homes.flush()
    homes = [r for r in transport.delivered if r.kind == HOME_KIND]
    assert [r.user for r in homes] == [BACKEND, ON_CALL]
    on_call = homes[1].text
    assert "No critical incident" in on_call and "Nothing waits on you" not in on_call
    assert "Nothing waits on you" in homes[0].text  # the backend owner has nothing yet
    await service.close()
    runtime.store.close()


async def test_a_new_holder_gets_a_fresh_wait_before_being_reminded(harness: Harness) -> None:
    """A step handed to someone else 8 minutes into its wait is not reminded 2 minutes later:
    the new holder gets the full 10 minutes."""
    h = harness
    await h.say(COMMANDER, "/golive start v2.4.0")
    await walk(h, until="freeze")
    assert h.step("backup").status is StepStatus.AWAITING
    h.clock.advance(8 * 60)
    await h.say(BACKEND, f"/golive handover backend <@{STRANGER}>")
    h.clock.advance(2 * 60)
    await h.settle()
    assert not [m for m in h.messages() if m.kind == "reminder"]
    h.clock.advance(8 * 60)
    await h.settle()
    (reminder,) = [m for m in h.messages() if m.kind == "reminder"]
    assert reminder.text.startswith(f"⏰ <@{STRANGER}> *Backup / restore point* has waited 10m")
