"""Soak and heightened monitoring: ticks that measure, judge, and page on-call when it matters.

A tick measures the configured window in Prometheus, judges 5xx against the pre-release baseline
and p95 against the SLO, feeds each verdict to that signal's alert tracker, and — in one SQLite
transaction — stores the sample, the tracker state, the alert history and the outbox rows of the
alert messages and PagerDuty events. A crash or a chat outage therefore delays an alert but
never loses or doubles it, and a restart resumes from the stored state.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import replace
from datetime import datetime
from typing import Any

import httpx

from bot.domain.config import format_duration
from bot.domain.events import Evidence
from bot.domain.model import ReleaseStatus, StepStatus
from bot.domain.serial import dump, load
from bot.engine.checkbook import monitoring_settings
from bot.engine.service import ReleaseService
from bot.render import messages
from bot.store import ReleaseRecord
from checks.http import ProviderError
from checks.judgment import AlertAction, AlertTracker, Baseline, Judgment
from checks.monitoring import (
    Measurement,
    Settings,
    Since,
    SloBucket,
    baseline_in,
    bucket_in,
    measure,
    measure_since,
    slo_bucket,
)
from checks.sequential import Cusum
from checks.watch import (
    advance,
    evidence_of,
    sight_note,
    start_errors_test,
    start_latency_test,
)

log = logging.getLogger(__name__)

SIGNAL_WORDS = {"errors": "5xx", "latency": "p95"}
SIGNALS = ("errors", "latency")
PAGER_CHANNEL = "pagerduty"


class Monitor:
    """Decides what is monitored now and runs ticks for it."""

    def __init__(self, service: ReleaseService, client: httpx.AsyncClient) -> None:
        self.service = service
        self.client = client
        self.store = service.store
        self.config = service.config

    @property
    def enabled(self) -> bool:
        """True when Prometheus is configured."""
        return self.config.monitoring.prometheus_url is not None

    def periods(self) -> dict[int, tuple[str, float]]:
        """release id → (period, tick interval seconds) for everything monitored now (without
        Prometheus, heightened monitoring is watched by hand: ticks only mark its end)."""
        mon = self.config.monitoring
        found: dict[int, tuple[str, float]] = {}
        for rid in self.store.release_ids(statuses=(ReleaseStatus.ACTIVE.value,)):
            if not self.enabled:
                break
            soak = self.store.load(rid).release.find_step("soak")
            if soak is not None and soak.status is StepStatus.TIMING:
                found[rid] = ("soak", mon.soak.interval.total_seconds())
        for window in self.store.monitoring_windows():
            found.setdefault(
                window.release_id, (window.period, mon.heightened.interval.total_seconds())
            )
        return found

    def open_breaches(self, release_id: int) -> tuple[str, ...]:
        """What stands against widening now: breached signals (5xx, p95), `metrics` while
        golive cannot read a signal at all, and `evidence` when too few of the soak's ticks
        could judge — a soak nobody could see is not a clean soak."""
        trackers = [
            (SIGNAL_WORDS.get(signal, signal), load(AlertTracker, stored.state))
            for signal, stored in sorted(self.store.alert_states(release_id).items())
        ]
        breached = [word for word, tracker in trackers if tracker.is_open]
        blind = ["metrics"] if any(tracker.is_blind for _, tracker in trackers) else []
        evidence = self.soak_evidence(release_id)
        lacking = ["evidence"] if evidence is not None and not evidence.enough else []
        return tuple(breached + blind + lacking)

    def soak_evidence(self, release_id: int) -> Evidence | None:
        """How much of the running soak golive could judge; None when nothing is measured."""
        if not self.enabled:
            return None
        soak = self.store.load(release_id).release.find_step("soak")
        if soak is None or soak.status is not StepStatus.TIMING or soak.deadline is None:
            return None
        began = soak.deadline - self.config.monitoring.soak.duration
        samples = [
            s
            for s in self.store.samples(release_id, "soak")
            if s.at >= began
        ]
        return evidence_of([s.verdicts for s in samples], self.config.monitoring.min_conclusive)

    def _tracker(self, record: ReleaseRecord, signal: str) -> AlertTracker:
        stored = self.store.alert_state(record.release.id, signal)
        if stored is not None:
            return load(AlertTracker, stored.state)
        mon = self.config.monitoring
        return AlertTracker(
            release=record.release.version,
            signal=signal,
            breach_ticks=1,  # the sequential test already weighs the evidence of every tick
            error_ticks=mon.error_ticks,
            realert=mon.realert,
        )

    def _start(self, record: ReleaseRecord, kind: str, now: datetime) -> float:
        """When this release's tests begin: the soak's start, or now (heightened without one)."""
        soak = record.release.find_step("soak")
        if kind == "soak" and soak is not None and soak.deadline is not None:
            return (soak.deadline - self.config.monitoring.soak.duration).timestamp()
        return now.timestamp()

    async def _bucket(self, settings: Settings, baselines: list[dict[str, Any]]) -> SloBucket:
        found = bucket_in(baselines)
        if found is not None:
            return found
        return await slo_bucket(self.client, settings)

    async def tick(self, release_id: int) -> None:
        """Measure, judge and alert once for a monitored release."""
        settings = monitoring_settings(self.config)
        period = self.periods().get(release_id)
        if period is None:
            return
        kind, interval = period
        record = self.store.load(release_id)
        now = self.service.clock.now()
        after = self.store.monitoring_window(release_id) if kind != "soak" else None
        if after is not None and now >= after.until:
            await self.store.writes.run(lambda: self.close(release_id))
            return
        if settings is None:
            return  # watched by hand: nothing to measure, only the end to mark
        trackers = {signal: self._tracker(record, signal) for signal in SIGNALS}
        last = trackers["errors"].last_tick_at
        if last is not None and now <= last:
            return  # a replayed tick: the stored state already counts it
        baselines = [r.evidence for r in self.store.check_results(release_id, "baseline")]
        baseline = baseline_in(baselines)
        bucket = await self._bucket(settings, baselines)
        tests: dict[str, Cusum | str] = {
            s: load(Cusum, t.test) if t.test else "not started" for s, t in trackers.items()
        }
        started = {s for s, t in tests.items() if isinstance(t, Cusum)}
        if len(started) < len(SIGNALS):
            tests = await asyncio.to_thread(
                self._new_tests, tests, baseline, settings, self._start(record, kind, now)
            )
        start = min(
            (t.start for t in tests.values() if isinstance(t, Cusum)), default=now.timestamp()
        )
        note = None
        if kind == "soak" and "errors" not in started and isinstance(tests["errors"], Cusum):
            note = sight_note(
                tests["errors"],
                tests["latency"],
                self.config.monitoring.soak.duration.total_seconds(),
            )
        if now.timestamp() - start < interval / 2:
            # Just begun: nothing to count yet. Keep the tests (and say what they can see).
            def keep() -> None:
                with self.store.transaction():
                    for signal, tracker in trackers.items():
                        test = tests[signal]
                        if isinstance(test, Cusum):
                            state = dump(replace(tracker, test=dump(test)))
                            self.store.save_alert_state(release_id, signal, state, now)
                    if note is not None:
                        self._note(record, note, now)

            await self.store.writes.run(keep)
            self.service.changed()
            return
        window = self.config.monitoring.window
        client = self.client
        measured, counted = await asyncio.gather(
            measure(client, settings, window),
            measure_since(client, settings, start, now.timestamp(), bucket),
            return_exceptions=True,
        )
        now = self.service.clock.now()
        values: dict[str, Any] = {}
        judgments: tuple[Judgment, Judgment]
        updated: dict[str, Cusum | None] = {s: None for s in SIGNALS}
        failed = next((a for a in (measured, counted) if isinstance(a, BaseException)), None)
        if failed is not None:
            if not isinstance(failed, ProviderError):
                raise failed
            evidence = {**failed.evidence, "window": format_duration(window)}
            judgments = (
                Judgment.error("errors", failed.message, evidence),
                Judgment.error("latency", failed.message, evidence),
            )
        else:
            assert isinstance(measured, Measurement) and isinstance(counted, Since)
            values = {
                "requests": measured.requests,
                "errors": measured.errors,
                "ratio": measured.ratio,
                "p95": measured.p95,
            }
            verdicts = advance(
                tests["errors"],
                tests["latency"],
                counted,
                bucket=bucket,
                slo_seconds=settings.slo_seconds,
                window_requests=measured.requests,
                window_errors=measured.errors,
                min_requests=settings.min_requests,
                window=format_duration(window),
                p95_seconds=measured.p95,
            )
            updated = {"errors": verdicts.errors_test, "latency": verdicts.latency_test}
            judgments = (verdicts.errors, verdicts.latency)
        await self.store.writes.run(
            lambda: self._record(
                record, kind, now, values, judgments, trackers, tests, updated, note
            )
        )
        self.service.changed()

    def _record(
        self,
        record: ReleaseRecord,
        kind: str,
        now: datetime,
        values: dict[str, Any],
        judgments: tuple[Judgment, Judgment],
        trackers: dict[str, AlertTracker],
        tests: dict[str, Cusum | str],
        updated: dict[str, Cusum | None],
        note: tuple[str, bool] | None,
    ) -> None:
        """One tick's sample, tests, tracker states, alerts and messages, in one transaction."""
        release_id = record.release.id
        with self.store.transaction():
            self.store.add_sample(
                release_id,
                kind,
                now,
                values,
                {j.signal: dump(j) for j in judgments},
            )
            for judgment in judgments:
                signal = judgment.signal
                test = updated[signal] or tests[signal]
                tracker = trackers[signal]
                if isinstance(test, Cusum):
                    tracker = replace(tracker, test=dump(test))
                tracker, actions = tracker.observe(judgment, now)
                self.store.save_alert_state(release_id, signal, dump(tracker), now)
                for action in actions:
                    self._act(record, action, judgment, kind, now)
            if note is not None:
                self._note(record, note, now)
            self.service.refresh_card(release_id, now)

    @staticmethod
    def _new_tests(
        tests: dict[str, Cusum | str],
        baseline: Baseline | None,
        settings: Settings,
        start: float,
    ) -> dict[str, Cusum | str]:
        """Start the tests not yet started (a threshold is simulated: run off the loop)."""
        out = dict(tests)
        if not isinstance(out["errors"], Cusum):
            out["errors"] = start_errors_test(
                baseline,
                start=start,
                min_requests=settings.min_requests,
                min_increase=settings.min_increase,
                tolerance=settings.tolerance,
                false_page_rate=settings.false_page_rate,
                plan=settings.plan,
            )
        if not isinstance(out["latency"], Cusum):
            rate = baseline.requests / baseline.window_seconds if baseline is not None else None
            out["latency"] = start_latency_test(
                rate, start=start, false_page_rate=settings.false_page_rate, plan=settings.plan
            )
        return out

    def _note(self, record: ReleaseRecord, note: tuple[str, bool], now: datetime) -> None:
        """Tell the release thread what the soak can see; warn on-call when it is too short."""
        text, short = note
        soak = format_duration(self.config.monitoring.soak.duration)
        rendered = messages.render_soak_sight(record.release, text, short, soak)
        self.service.effects.thread(record, rendered, now)

    def _act(
        self,
        record: ReleaseRecord,
        action: AlertAction,
        judgment: Judgment,
        period: str,
        now: datetime,
    ) -> None:
        release = record.release
        signal = SIGNAL_WORDS.get(action.signal, action.signal)
        rendered = messages.render_alert(
            release, action.kind, signal, period, judgment, action.duration, self.config
        )
        self.store.add_alert(
            release.id, action.signal, action.kind, judgment.summary, action.dedup_key, now
        )
        self.store.add_event(
            release.id,
            now,
            f"alert_{action.kind}",
            None,
            {"signal": signal, "summary": judgment.summary, "period": period},
        )
        self.service.post_channel(record, rendered, now)
        self._page(record, action, signal, judgment, period, now)

    def _page(
        self,
        record: ReleaseRecord,
        action: AlertAction,
        signal: str,
        judgment: Judgment,
        period: str,
        now: datetime,
    ) -> None:
        mon = self.config.monitoring
        if not mon.pagerduty_events_url or not mon.pagerduty_routing_key_env:
            return
        blind = action.kind in ("blind", "sight")
        key = f"{action.dedup_key}/monitoring" if blind else action.dedup_key
        if action.kind in ("open", "blind"):
            event: dict[str, Any] = {
                "event_action": "trigger",
                "dedup_key": key,
                "payload": {
                    "summary": messages.page_summary(
                        record.release, signal, judgment, period, blind
                    )[:1024],
                    "source": f"golive/{record.release.channel}",
                    "severity": "warning" if blind else "critical",
                    "custom_details": {
                        "release": record.release.version,
                        "period": period,
                        "verdict": judgment.summary,
                    },
                },
            }
        elif action.kind in ("recover", "sight"):
            event = {"event_action": "resolve", "dedup_key": key}
        else:
            return  # a reminder: PagerDuty already holds the open incident for this key
        self.store.enqueue(
            release_id=record.release.id,
            channel=PAGER_CHANNEL,
            kind="page",
            text=json.dumps(event, sort_keys=True),
            blocks=None,
            at=now,
        )

    def close(self, release_id: int) -> None:
        """End a heightened (or post-rollback) monitoring window with a closing message."""
        record = self.store.load(release_id)
        now = self.service.clock.now()
        alerts = [a for a in self.store.alerts(release_id) if a.action == "open"]
        still = self.open_breaches(release_id)
        window = self.store.monitoring_window(release_id)
        period = window.period if window is not None else "heightened"
        evidence = evidence_of(
            [s.verdicts for s in self.store.samples(release_id, period)],
            self.config.monitoring.min_conclusive,
        )
        with self.store.transaction():
            self.store.set_monitoring(release_id, None, None, closed=True)
            self.store.add_event(
                release_id,
                now,
                "monitoring_closed",
                None,
                {
                    "alerts": len(alerts),
                    "open": list(still),
                    "evidence": messages.evidence_words(evidence),
                },
            )
            self.service.post_channel(
                record,
                messages.render_monitoring_closed(
                    record.release,
                    len(alerts),
                    still,
                    self.config,
                    evidence,
                    by_hand=not self.enabled,
                ),
                now,
            )
            self.service.close_release(release_id, now)
            # Nothing watches this release any more: resolve what golive opened in PagerDuty,
            # breaches and blindness alike, so no incident outlives the monitoring.
            for stored in self.store.alert_states(release_id).values():
                tracker = load(AlertTracker, stored.state)
                keys = [tracker.dedup_key] if tracker.is_open else []
                keys += [f"{tracker.dedup_key}/monitoring"] if tracker.is_blind else []
                for key in keys if self.config.monitoring.pagerduty_events_url else []:
                    self.store.enqueue(
                        release_id=release_id,
                        channel=PAGER_CHANNEL,
                        kind="page",
                        text=json.dumps({"event_action": "resolve", "dedup_key": key}),
                        blocks=None,
                        at=now,
                    )
        self.service.changed()
