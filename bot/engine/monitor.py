"""Soak and heightened monitoring: ticks that measure, judge, and page on-call when it matters.

A tick measures the configured window in Prometheus, judges 5xx against the pre-release baseline
and p95 against the SLO, feeds each verdict to that signal's alert tracker, and — in one SQLite
transaction — stores the sample, the tracker state, the alert history and the outbox rows of the
alert messages and PagerDuty events. A crash or a chat outage therefore delays an alert but
never loses or doubles it, and a restart resumes from the stored state.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

import httpx

from bot.domain.model import ReleaseStatus, StepStatus
from bot.engine.checkbook import monitoring_settings
from bot.engine.service import ReleaseService
from bot.render import messages
from bot.store import ReleaseRecord
from checks.judgment import AlertAction, AlertTracker, Judgment
from checks.monitoring import baseline_in, judge_window

log = logging.getLogger(__name__)

SIGNAL_WORDS = {"errors": "5xx", "latency": "p95"}
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
        for row in self.store.monitoring_windows():
            found.setdefault(
                int(row["id"]),
                (str(row["monitor_period"]), mon.heightened.interval.total_seconds()),
            )
        return found

    def open_breaches(self, release_id: int) -> tuple[str, ...]:
        """What stands against widening now: breached signals (5xx, p95), and `metrics` while
        golive cannot read a signal at all — a soak nobody could see is not a clean soak."""
        trackers = [
            (SIGNAL_WORDS.get(signal, signal), AlertTracker.from_dict(state))
            for signal, state in sorted(self.store.alert_states(release_id).items())
        ]
        breached = [word for word, tracker in trackers if tracker.is_open]
        blind = ["metrics"] if any(tracker.is_blind for _, tracker in trackers) else []
        return tuple(breached + blind)

    def _tracker(self, record: ReleaseRecord, signal: str) -> AlertTracker:
        state = self.store.alert_state(record.release.id, signal)
        if state is not None:
            return AlertTracker.from_dict(state)
        mon = self.config.monitoring
        return AlertTracker(
            release=record.release.version,
            signal=signal,
            breach_ticks=mon.breach_ticks,
            error_ticks=mon.error_ticks,
            realert=mon.realert,
        )

    async def tick(self, release_id: int) -> None:
        """Measure, judge and alert once for a monitored release."""
        settings = monitoring_settings(self.config)
        period = self.periods().get(release_id)
        if period is None:
            return
        kind = period[0]
        record = self.store.load(release_id)
        now = self.service.clock.now()
        if kind != "soak":
            row = self.store.db["releases"].get(release_id)  # type: ignore[union-attr]
            until = datetime.fromisoformat(str(row["monitor_until"]))
            if now >= until:
                self.close(release_id)
                return
        if settings is None:
            return  # watched by hand: nothing to measure, only the end to mark
        window = self.config.monitoring.window
        measurement, errors, latency = await judge_window(
            self.client,
            settings,
            window,
            baseline_in([r["evidence"] for r in self.store.check_results(release_id, "baseline")]),
        )
        now = self.service.clock.now()
        values: dict[str, Any] = {}
        if measurement is not None:
            values = {
                "requests": measurement.requests,
                "errors": measurement.errors,
                "ratio": measurement.ratio,
                "p95": measurement.p95,
            }
        with self.store.transaction():
            self.store.add_sample(
                release_id,
                kind,
                now,
                values,
                {"errors": errors.to_dict(), "latency": latency.to_dict()},
            )
            for judgment in (errors, latency):
                tracker, actions = self._tracker(record, judgment.signal).observe(judgment, now)
                self.store.save_alert_state(release_id, judgment.signal, tracker.to_dict(), now)
                for action in actions:
                    self._act(record, action, judgment, kind, now)
            self.service.refresh_card(release_id, now)
        self.service.changed()

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
                    "summary": _page_summary(record, signal, judgment, period, blind)[:1024],
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
        alerts = [a for a in self.store.alerts(release_id) if a["action"] == "open"]
        still = self.open_breaches(release_id)
        with self.store.transaction():
            self.store.set_monitoring(release_id, None, None, closed=True)
            self.store.add_event(
                release_id,
                now,
                "monitoring_closed",
                None,
                {"alerts": len(alerts), "open": list(still)},
            )
            self.service.post_channel(
                record,
                messages.render_monitoring_closed(
                    record.release, len(alerts), still, self.config, by_hand=not self.enabled
                ),
                now,
            )
            self.service.close_release(release_id, now)
            # Nothing watches this release any more: resolve what golive opened in PagerDuty,
            # breaches and blindness alike, so no incident outlives the monitoring.
            for state in self.store.alert_states(release_id).values():
                tracker = AlertTracker.from_dict(state)
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


def _page_summary(
    record: ReleaseRecord, signal: str, judgment: Judgment, period: str, blind: bool
) -> str:
    version = record.release.version
    if blind:
        return f"golive cannot read metrics during {period} of {version}: {judgment.summary}"
    return f"{signal} breach during {period} of {version}: {judgment.summary}"
