"""Soak and heightened monitoring through the engine: baseline, ticks, alerts to on-call and
PagerDuty, recovery, blindness, soak end, restart — on an injected clock against the sandbox."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from bot.domain.clock import FakeClock
from bot.domain.config import validate_config
from bot.domain.model import ReleaseStatus, StepStatus
from bot.domain.serial import load
from bot.sandbox import Sandbox
from bot.store import Store
from checks.sequential import Cusum
from tests.conftest import CHANNEL, COMMANDER, ON_CALL, SHORTENED, Harness, walk
from tests.test_preconditions import results, sandbox_config

TICK = 30


def monitored_config(sb: Sandbox, workdir: Path, **monitoring: Any) -> dict[str, Any]:
    """Sandbox config with monitoring and verification, a 1-minute window and a 5-minute soak."""
    data = sandbox_config(sb, workdir)
    overrides = sb.config_overrides()
    data["verification"] = overrides["verification"]
    data["monitoring"] = {
        **overrides["monitoring"],
        "window": "1m",
        "baseline_window": "1h",
        "min_requests": 200,
        "soak": {"duration": "5m", "interval": f"{TICK}s"},
        "heightened": {"duration": "3m", "interval": f"{TICK}s"},
        "realert": "2m",
        "shortened_reason": SHORTENED,
        **monitoring,
    }
    return data


class Monitored(Harness):
    """A harness whose sandbox shares the engine's fake clock; traffic moves with ticks."""

    sandbox: Sandbox

    async def tick(self, n: int = 1) -> None:
        """Let `n` tick intervals pass: traffic flows, the monitor ticks, messages go out."""
        for _ in range(n):
            self.clock.advance(TICK)
            self.sandbox.product.advance(TICK)
            await self.runtime.monitor.tick(self.release().id)
            await self.settle()

    def alerts(self) -> list[str]:
        """Monitoring messages in the release channel (not announcements), in order."""
        announcements = ("🧊", "🟢", "🎉", "🛑", "⏪")
        return [
            m.text
            for m in self.messages()
            if m.kind == "channel" and not m.text.startswith(announcements)
        ]


@asynccontextmanager
async def monitored(tmp_path: Path, **monitoring: Any) -> AsyncIterator[Monitored]:
    """Everything configured; the sandbox's product runs on the test's clock."""
    clock = FakeClock()
    async with Sandbox.start(clock=clock.now, traffic=False, history=3600) as sb:
        config = validate_config(monitored_config(sb, tmp_path / "repo", **monitoring))
        harness = Monitored(config, clock, ":memory:", secrets=sb.tokens)
        harness.sandbox = sb
        yield harness
        await harness.service.close()


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Monitored]:
    """The monitored harness with a one-minute window (two ticks)."""
    async with monitored(tmp_path) as harness:
        yield harness


async def soak(h: Monitored) -> None:
    """Start a release and walk it to the soak."""
    await h.say(COMMANDER, "/golive start v2.4.0")
    await walk(h, "portal")
    assert h.step("soak").status is StepStatus.TIMING


def pages(h: Monitored) -> list[dict[str, Any]]:
    """Events PagerDuty received, as dicts."""
    return [
        {"action": e["event_action"], "key": e["dedup_key"]} for e in h.sandbox.pagerduty.events
    ]


async def test_baseline_is_captured_before_anything_is_deployed(h: Monitored) -> None:
    """At start the baseline step stores requests, 5xx and p95 over the baseline window."""
    await h.say(COMMANDER, "/golive start v2.4.0")
    baseline = results(h, "baseline")["baseline"]
    assert baseline.status == "pass"
    figures = baseline.evidence["baseline"]
    assert figures["requests"] > 50_000 and figures["window_seconds"] == 3600
    assert "sum(increase(http_requests_total[1h]))" in baseline.evidence["queries"]["requests"]


async def test_clean_soak_leads_to_widening(h: Monitored) -> None:
    """Ten clean ticks: no alert, samples recorded, then on-call is asked to widen traffic."""
    await soak(h)
    await h.tick(10)
    assert h.alerts() == [] and pages(h) == []
    samples = h.store.samples(h.release().id, "soak")
    assert len(samples) == 10
    assert {s.verdicts["errors"]["status"] for s in samples} == {"pass"}
    h.runtime.deadlines.fire_due()
    await h.settle()
    assert h.step("soak").status is StepStatus.AWAITING
    card = next(
        m.text
        for m in reversed(h.messages())
        if m.kind == "update" and m.step_key is None and m.text.startswith("🚀")
    )
    assert "5xx " in card and "p95 " in card


async def test_spike_pages_on_call_once_then_recovers(h: Monitored) -> None:
    """A 5xx spike far above the baseline alerts on-call on its first tick with the counts since
    the change point, the baseline, the statistic and the query, pages PagerDuty once, and a
    recovery message plus a resolve follow once the evidence says it is over."""
    await soak(h)
    await h.tick(2)
    h.sandbox.product.set_traffic(error_ratio=0.10)
    await h.tick(1)
    alerts = h.alerts()
    assert len(alerts) == 1
    alert = alerts[0]
    assert alert.startswith(f"🚨 <@{ON_CALL}> *5xx breach* during the soak of v2.4.0")
    assert "in the last 30s (" in alert and "vs baseline 0.5" in alert and "expected)" in alert
    assert "elevated: the evidence for a rise to 1.0% is" in alert and "threshold" in alert
    assert 'query `sum(increase(http_requests_total{status=~"5.."}[90s]))`' in alert
    assert pages(h) == [{"action": "trigger", "key": "golive/v2.4.0/errors"}]
    trigger = h.sandbox.pagerduty.events[0]
    assert trigger["payload"]["severity"] == "critical"
    assert "5xx breach during soak of v2.4.0" in trigger["payload"]["summary"]
    await h.tick(1)
    assert len(h.alerts()) == 1  # no repeat within realert
    h.sandbox.product.set_traffic(error_ratio=0.005)
    await h.tick(1)
    assert not h.alerts()[-1].startswith("✅")  # the 1m window still holds half the spike
    await h.tick(1)
    assert h.alerts()[-1].startswith("✅ *5xx recovered* after")  # a clean window: recovered
    assert pages(h)[-1] == {"action": "resolve", "key": "golive/v2.4.0/errors"}
    await h.tick(4)
    assert [a.action for a in h.store.alerts(h.release().id)] == ["open", "recover"]
    errors = [s.verdicts["errors"] for s in h.store.samples(h.release().id)]
    assert errors[-1]["status"] == "pass" and errors[-1]["evidence"]["statistic"] < 1.0


async def test_a_modest_rise_pages_only_when_it_lasts(h: Monitored) -> None:
    """One tick at about 3.5x the baseline's 5xx is not enough evidence to page; the same rise
    kept up is paged within a few ticks, and no clean release is paged in between."""
    await soak(h)
    await h.tick(2)
    h.sandbox.product.set_traffic(error_ratio=0.018)
    await h.tick(1)
    h.sandbox.product.set_traffic(error_ratio=0.005)
    await h.tick(3)
    assert h.alerts() == []
    h.sandbox.product.set_traffic(error_ratio=0.018)
    await h.tick(4)
    assert [a.action for a in h.store.alerts(h.release().id)] == ["open"]
    verdicts = [s.verdicts["errors"]["status"] for s in h.store.samples(h.release().id)]
    assert verdicts[:6] == ["pass"] * 6 and verdicts[-1] == "fail"


async def test_reminder_while_a_breach_lasts(h: Monitored) -> None:
    """A breach that lasts past `realert` reminds on-call, without a second page."""
    await soak(h)
    h.sandbox.product.set_traffic(error_ratio=0.10)
    await h.tick(2)
    await h.tick(4)  # two minutes later
    kinds = [a.action for a in h.store.alerts(h.release().id)]
    assert kinds == ["open", "remind"]
    assert h.alerts()[-1].startswith(f"🔁 <@{ON_CALL}> *5xx still breached* after 2m")
    assert [p["action"] for p in pages(h)] == ["trigger"]


async def test_latency_breach_pages_but_a_p95_just_within_the_slo_does_not(
    tmp_path: Path,
) -> None:
    """p95 is judged as the share of requests slower than the SLO bucket: a p95 at 90 % of the
    SLO never pages over the whole soak; p95 far above it pages within a tick."""
    async with monitored(tmp_path) as h:
        await soak(h)
        h.sandbox.product.set_traffic(p95=0.36)
        await h.tick(8)
        assert h.alerts() == []
        latency = [s.verdicts["latency"] for s in h.store.samples(h.release().id)]
        assert {v["status"] for v in latency} == {"pass"}
        assert latency[-1]["evidence"]["bucket_seconds"] == 0.4
        assert 0.0 < latency[-1]["evidence"]["slow_share"] < 0.05
        h.sandbox.product.set_traffic(p95=0.9)
        await h.tick(1)
        [alert] = h.alerts()
        assert alert.startswith(f"🚨 <@{ON_CALL}> *p95 breach*")
        assert "slower than 400 ms" in alert and "allows 5.0%" in alert
        assert 'http_request_duration_seconds_bucket{le="0.4"}' in alert


async def test_soak_ending_in_a_breach_recommends_rollback(h: Monitored) -> None:
    """If the soak ends while 5xx is breached, traffic is not widened and rollback is advised."""
    await soak(h)
    h.sandbox.product.set_traffic(error_ratio=0.10)
    await h.tick(10)
    h.runtime.deadlines.fire_due()
    await h.settle()
    step = h.step("soak")
    assert step.status is StepStatus.BLOCKED and step.failing == ("5xx",)
    advice = next(m.text for m in h.messages() if m.text.startswith("⛔ *Soak* ended"))
    assert f"<@{ON_CALL}> rolls back (`/golive rollback &lt;reason&gt;`)" in advice


async def test_blind_monitoring_is_reported_once(h: Monitored) -> None:
    """Prometheus down for three ticks: on-call hears once that golive is blind; then sight."""
    await soak(h)
    h.sandbox.prometheus.down = True
    await h.tick(5)
    blind = [t for t in h.alerts() if "cannot read metrics" in t]
    assert len(blind) == 2  # one per signal: 5xx and p95 are both unreadable
    samples = h.store.samples(h.release().id, "soak")
    assert {s.verdicts["errors"]["status"] for s in samples} == {"error"}
    assert h.step("soak").status is StepStatus.TIMING
    h.sandbox.prometheus.down = False
    await h.tick(1)
    assert any(t.startswith("👀 *Metrics are back*") for t in h.alerts())


def on_disk(sb: Sandbox, tmp_path: Path, clock: FakeClock) -> Callable[[], Monitored]:
    """A harness factory over one database file: each call is a fresh process's view of it."""
    data = monitored_config(sb, tmp_path / "repo")
    data["database"] = str(tmp_path / "golive.db")
    config = validate_config(data)

    def process() -> Monitored:
        harness = Monitored(config, clock, config.database, secrets=sb.tokens)
        harness.sandbox = sb
        return harness

    return process


async def test_restart_mid_breach_does_not_page_twice(tmp_path: Path) -> None:
    """kill -9 after the alert: the new process resumes the soak and does not alert again."""
    clock = FakeClock()
    async with Sandbox.start(clock=clock.now, traffic=False, history=3600) as sb:
        process = on_disk(sb, tmp_path, clock)
        first = process()
        await soak(first)
        sb.product.set_traffic(error_ratio=0.10)
        await first.tick(2)
        assert len(first.alerts()) == 1
        first.store.close()  # no clean shutdown: state is whatever was committed

        second = process()
        await second.tick(2)
        assert len(second.alerts()) == 1
        assert [p["action"] for p in pages(second)] == ["trigger"]
        assert second.step("soak").status is StepStatus.TIMING
        await second.service.close()


async def test_heightened_monitoring_after_completion(h: Monitored) -> None:
    """After complete: criteria shown side by side, heightened ticks, then a closing message."""
    await soak(h)
    await h.tick(10)
    await walk(h, "criteria")
    criteria = results(h, "criteria")
    assert set(criteria) == {
        "criterion:5xx",
        "criterion:p95",
        "criterion:rbac",
        "criterion:finance-operations",
    }
    assert {r.status for r in criteria.values()} == {"pass"}
    await h.say(COMMANDER, "/golive complete")
    assert h.release().status is ReleaseStatus.COMPLETED
    assert h.runtime.monitor.periods() == {h.release().id: ("heightened", TICK)}
    await h.tick(7)
    assert h.runtime.monitor.periods() == {}
    closing = h.alerts()[-1]
    assert closing == "👋 Monitoring of v2.4.0 ended after 3m: no breach."
    assert len(h.store.samples(h.release().id, "heightened")) == 5  # the sixth tick closes


async def test_failing_criterion_blocks_completion(h: Monitored) -> None:
    """A success criterion that fails keeps /golive complete refused until it is waived."""
    await soak(h)
    await h.tick(10)
    h.sandbox.product.set_traffic(p95=0.9)
    h.clock.advance(300)
    h.sandbox.product.advance(300)
    await walk(h, "portal-paths")
    step = h.step("criteria")
    assert step.status is StepStatus.BLOCKED and step.failing == ("criterion:p95",)
    refusal = await h.reply(COMMANDER, "/golive complete")
    assert "cannot be completed yet" in refusal and "criterion:p95" in refusal
    await h.say(COMMANDER, "/golive waive criterion:p95 known slow report endpoint, ticket OPS-12")
    await h.say(COMMANDER, "/golive complete")
    announcement = next(m.text for m in h.messages() if m.text.startswith("🎉"))
    assert "Waived: criterion:p95" in announcement


async def test_pagerduty_outage_delays_pages_without_losing_them(h: Monitored) -> None:
    """PagerDuty answering 500 holds the trigger; it goes out once PagerDuty is back."""
    await soak(h)
    h.sandbox.pagerduty.set_fault("500", scope="events")
    h.sandbox.product.set_traffic(error_ratio=0.10)
    await h.tick(2)
    assert pages(h) == []
    assert len(h.alerts()) == 1  # the channel alert does not wait for PagerDuty
    h.sandbox.pagerduty.clear_faults()
    h.clock.advance(5)
    await h.settle()
    assert pages(h) == [{"action": "trigger", "key": "golive/v2.4.0/errors"}]
    row = next(m for m in h.store.messages(h.release().id) if m.kind == "page")
    assert "routing_key" not in json.loads(row.text)
    assert h.sandbox.tokens["PAGERDUTY_ROUTING_KEY"] not in row.text
    assert CHANNEL  # the release channel carried the alert above


async def test_a_soak_nobody_could_see_does_not_widen(h: Monitored) -> None:
    """If golive is blind when the soak ends, traffic is not widened and on-call checks by hand."""
    await soak(h)
    await h.tick(2)
    h.sandbox.prometheus.down = True
    await h.tick(8)
    h.runtime.deadlines.fire_due()
    await h.settle()
    step = h.step("soak")
    assert step.status is StepStatus.BLOCKED and step.failing == ("metrics", "evidence")
    ended = next(m.text for m in h.messages() if m.text.startswith("⛔ *Soak* ended"))
    assert "golive unable to read the metrics" in ended
    assert "not enough evidence (2 of 10 ticks could judge" in ended
    assert f"<@{ON_CALL}>: check the dashboards by hand" in ended


async def test_closing_the_monitoring_resolves_every_page(h: Monitored) -> None:
    """When monitoring ends, PagerDuty incidents golive opened (breach or blindness) resolve."""
    await soak(h)
    await h.tick(10)
    await walk(h, "criteria")
    await h.say(COMMANDER, "/golive complete")
    h.sandbox.prometheus.down = True
    await h.tick(7)
    keys = {e["dedup_key"]: e["event_action"] for e in h.sandbox.pagerduty.events}
    assert keys == {
        "golive/v2.4.0/errors/monitoring": "resolve",
        "golive/v2.4.0/latency/monitoring": "resolve",
    }
    assert [e["event_action"] for e in h.sandbox.pagerduty.events].count("trigger") == 2


async def test_soak_start_says_what_it_can_see_and_warns_when_too_short(
    tmp_path: Path,
) -> None:
    """At soak start the thread hears how long a doubling of 5xx takes to be paged at the
    baseline's traffic; on-call is warned when the soak is shorter, and only then."""
    async with monitored(tmp_path) as h:  # a 5-minute soak
        await soak(h)
        await h.tick(1)
        [note] = [m.text for m in h.messages() if "What the soak can see" in m.text]
        assert "A doubling of 5xx (to 1.0%)" in note and "95 % of releases" in note
        assert f"⚠️ <@{ON_CALL}> the soak (5m) is shorter than that" in note
        await h.tick(3)
        assert sum("What the soak can see" in m.text for m in h.messages()) == 1
    async with monitored(tmp_path, soak={"duration": "1h", "interval": f"{TICK}s"}) as h:
        await soak(h)
        await h.tick(1)
        [note] = [m.text for m in h.messages() if "What the soak can see" in m.text]
        assert "is paged within" in note and "⚠️" not in note


async def test_prometheus_down_for_the_last_ticks_blocks_widening(h: Monitored) -> None:
    """Two failed ticks at the end (too few to call golive blind) still block the soak for
    evidence: the last tick must judge. On-call soaks again and then may widen."""
    await soak(h)
    await h.tick(8)
    h.sandbox.prometheus.down = True
    await h.tick(2)
    assert not any("cannot read metrics" in a for a in h.alerts())
    h.runtime.deadlines.fire_due()
    await h.settle()
    step = h.step("soak")
    assert step.status is StepStatus.BLOCKED and step.failing == ("evidence",)
    ended = next(m.text for m in h.messages() if m.text.startswith("⛔ *Soak* ended"))
    assert "not enough evidence (8 of 10 ticks could judge 5xx and p95 (80%; need 80%" in ended
    assert "but not the last" in ended and f"<@{ON_CALL}>: check the dashboards by hand" in ended
    h.sandbox.prometheus.down = False
    await h.say(ON_CALL, "/golive retry soak")
    assert h.step("soak").status is StepStatus.TIMING
    await h.tick(10)
    h.runtime.deadlines.fire_due()
    await h.settle()
    assert h.step("soak").status is StepStatus.AWAITING


async def test_too_quiet_a_soak_is_not_enough_evidence(h: Monitored) -> None:
    """At 1.5 requests per second every tick is inconclusive (fewer than min_requests in the
    window): the soak ends blocked for evidence and the commander may waive it on the record."""
    await soak(h)
    h.sandbox.product.set_traffic(rate=1.5)
    await h.tick(10)
    assert h.alerts() == []
    statuses = [s.verdicts["errors"]["status"] for s in h.store.samples(h.release().id)]
    assert set(statuses[2:]) == {"inconclusive"}  # once the 1m window holds only the trickle
    h.runtime.deadlines.fire_due()
    await h.settle()
    assert h.step("soak").failing == ("evidence",)
    ended = next(m.text for m in h.messages() if m.text.startswith("⛔ *Soak* ended"))
    assert "not enough evidence (" in ended and " of 10 ticks could judge" in ended
    await h.say(COMMANDER, "/golive waive soak quiet Sunday traffic, dashboards watched by hand")
    assert h.step("soak").status is not StepStatus.BLOCKED


async def test_a_trickle_of_failures_pages(h: Monitored) -> None:
    """At 1.5 requests per second answering 50 % 5xx, on-call is paged on the first tick,
    although the window has too few requests to call anything clean."""
    await soak(h)
    h.sandbox.product.set_traffic(rate=1.5, error_ratio=0.5)
    await h.tick(1)
    [alert] = h.alerts()
    assert alert.startswith(f"🚨 <@{ON_CALL}> *5xx breach*")


async def test_heightened_monitoring_reports_too_little_evidence(h: Monitored) -> None:
    """Heightened monitoring whose last ticks could not judge ends saying so, to on-call."""
    await soak(h)
    await h.tick(10)
    await walk(h, "criteria")
    await h.say(COMMANDER, "/golive complete")
    await h.tick(4)
    h.sandbox.prometheus.down = True
    await h.tick(3)
    closing = h.alerts()[-1]
    assert closing.startswith("👋 Monitoring of v2.4.0 ended after 3m: no breach. Not enough")
    assert "4 of 5 ticks could judge 5xx and p95" in closing and f"<@{ON_CALL}>" in closing


def stored_test(store: Store, rid: int) -> Cusum:
    """The 5xx sequential test as stored with the alert state."""
    stored = store.alert_state(rid, "errors")
    assert stored is not None
    return load(Cusum, stored.state["test"])


async def test_a_restart_continues_the_sequential_test(tmp_path: Path) -> None:
    """kill -9 mid-soak: the new process continues the stored test — same start, the evidence
    gathered so far, one more update per tick — and a replayed tick changes nothing."""
    clock = FakeClock()
    async with Sandbox.start(clock=clock.now, traffic=False, history=3600) as sb:
        process = on_disk(sb, tmp_path, clock)
        first = process()
        await soak(first)
        sb.product.set_traffic(error_ratio=0.016)
        await first.tick(2)
        rid = first.release().id
        before = stored_test(first.store, rid)
        assert before.updates == 2 and before.statistic > 0
        first.store.close()

        second = process()
        await second.runtime.monitor.tick(rid)  # the same instant again: a replay
        assert stored_test(second.store, rid) == before
        assert len(second.store.samples(rid)) == 2
        await second.tick(1)
        after = stored_test(second.store, rid)
        assert (after.start, after.updates) == (before.start, 3)
        assert after.statistic > before.statistic  # the rise keeps adding to what was stored
        await second.service.close()
