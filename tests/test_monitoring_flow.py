"""Soak and heightened monitoring through the engine: baseline, ticks, alerts to on-call and
PagerDuty, recovery, blindness, soak end, restart — on an injected clock against the sandbox."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from bot.domain.clock import FakeClock
from bot.domain.config import validate_config
from bot.domain.model import ReleaseStatus, StepStatus
from bot.sandbox import Sandbox
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
    assert baseline["status"] == "pass"
    figures = baseline["evidence"]["baseline"]
    assert figures["requests"] > 50_000 and figures["window_seconds"] == 3600
    assert "sum(increase(http_requests_total[1h]))" in baseline["evidence"]["queries"]["requests"]


async def test_clean_soak_leads_to_widening(h: Monitored) -> None:
    """Ten clean ticks: no alert, samples recorded, then on-call is asked to widen traffic."""
    await soak(h)
    await h.tick(10)
    assert h.alerts() == [] and pages(h) == []
    samples = h.store.samples(h.release().id, "soak")
    assert len(samples) == 10
    assert {s["verdicts"]["errors"]["status"] for s in samples} == {"pass"}
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
    """A 5xx spike alerts on-call with figure, baseline and query after two bad ticks, pages
    PagerDuty once, and a recovery message plus a resolve follow when it clears."""
    await soak(h)
    await h.tick(2)
    h.sandbox.product.set_traffic(error_ratio=0.10)
    await h.tick(1)
    assert h.alerts() == []  # one bad tick is not a breach
    await h.tick(1)
    alerts = h.alerts()
    assert len(alerts) == 1
    alert = alerts[0]
    assert alert.startswith(f"🚨 <@{ON_CALL}> *5xx breach* during the soak of v2.4.0")
    assert "vs baseline 0.5" in alert and "significantly higher" in alert
    assert 'query `sum(increase(http_requests_total{status=~"5.."}[1m]))`' in alert
    assert pages(h) == [{"action": "trigger", "key": "golive/v2.4.0/errors"}]
    trigger = h.sandbox.pagerduty.events[0]
    assert trigger["payload"]["severity"] == "critical"
    assert "5xx breach during soak of v2.4.0" in trigger["payload"]["summary"]
    await h.tick(1)
    assert len(h.alerts()) == 1  # no repeat within realert
    h.sandbox.product.set_traffic(error_ratio=0.005)
    await h.tick(3)
    recovered = h.alerts()[-1]
    assert recovered.startswith("✅ *5xx recovered* after")
    assert pages(h)[-1] == {"action": "resolve", "key": "golive/v2.4.0/errors"}
    assert [a["action"] for a in h.store.alerts(h.release().id)] == ["open", "recover"]


async def test_reminder_while_a_breach_lasts(h: Monitored) -> None:
    """A breach that lasts past `realert` reminds on-call, without a second page."""
    await soak(h)
    h.sandbox.product.set_traffic(error_ratio=0.10)
    await h.tick(2)
    await h.tick(4)  # two minutes later
    kinds = [a["action"] for a in h.store.alerts(h.release().id)]
    assert kinds == ["open", "remind"]
    assert h.alerts()[-1].startswith(f"🔁 <@{ON_CALL}> *5xx still breached* after 2m")
    assert [p["action"] for p in pages(h)] == ["trigger"]


async def test_latency_above_slo_needs_consecutive_ticks(tmp_path: Path) -> None:
    """p95 above the SLO for one tick is noise; two in a row is a breach."""
    async with monitored(tmp_path, window=f"{TICK}s") as h:  # a window per tick
        await soak(h)
        h.sandbox.product.set_traffic(p95=0.9)
        await h.tick(1)
        h.sandbox.product.set_traffic(p95=0.12)
        await h.tick(2)
        assert h.alerts() == []
        assert [s["verdicts"]["latency"]["status"] for s in h.store.samples(1)] == [
            "fail",
            "pass",
            "pass",
        ]
        h.sandbox.product.set_traffic(p95=0.9)
        await h.tick(2)
        assert h.alerts()[0].startswith(f"🚨 <@{ON_CALL}> *p95 breach*")
        assert "> SLO 400 ms" in h.alerts()[0]


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
    assert f"<@{ON_CALL}> rolls back (`/golive rollback <reason>`)" in advice


async def test_blind_monitoring_is_reported_once(h: Monitored) -> None:
    """Prometheus down for three ticks: on-call hears once that golive is blind; then sight."""
    await soak(h)
    h.sandbox.prometheus.down = True
    await h.tick(5)
    blind = [t for t in h.alerts() if "cannot read metrics" in t]
    assert len(blind) == 2  # one per signal: 5xx and p95 are both unreadable
    samples = h.store.samples(h.release().id, "soak")
    assert {s["verdicts"]["errors"]["status"] for s in samples} == {"error"}
    assert h.step("soak").status is StepStatus.TIMING
    h.sandbox.prometheus.down = False
    await h.tick(1)
    assert any(t.startswith("👀 *Metrics are back*") for t in h.alerts())


async def test_restart_mid_breach_does_not_page_twice(tmp_path: Path) -> None:
    """kill -9 after the alert: the new process resumes the soak and does not alert again."""
    clock = FakeClock()
    async with Sandbox.start(clock=clock.now, traffic=False, history=3600) as sb:
        data = monitored_config(sb, tmp_path / "repo")
        data["database"] = str(tmp_path / "golive.db")
        config = validate_config(data)
        first = Monitored(config, clock, config.database, secrets=sb.tokens)
        first.sandbox = sb
        await soak(first)
        sb.product.set_traffic(error_ratio=0.10)
        await first.tick(2)
        assert len(first.alerts()) == 1
        first.store.close()  # no clean shutdown: state is whatever was committed

        second = Monitored(config, clock, config.database, secrets=sb.tokens)
        second.sandbox = sb
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
    assert {r["status"] for r in criteria.values()} == {"pass"}
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
    assert step.status is StepStatus.BLOCKED and step.failing == ("metrics",)
    ended = next(m.text for m in h.messages() if m.text.startswith("⛔ *Soak* ended"))
    assert "golive unable to read the metrics" in ended
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
