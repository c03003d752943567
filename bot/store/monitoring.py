"""Monitoring: each tick's figures and verdicts, the alert trackers' state, the alerts sent."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from bot.domain.clock import utc_iso
from bot.domain.records import Alert, AlertState, Sample
from bot.store.core import StoreBase, as_json


class MonitoringStore(StoreBase):
    """Samples, alert states and alerts."""

    def add_sample(
        self,
        release_id: int,
        period: str,
        at: datetime,
        values: Mapping[str, Any],
        verdicts: Mapping[str, Any],
    ) -> None:
        """Record one monitoring tick's figures and verdicts."""
        self._t("samples").insert(
            {
                "release_id": release_id,
                "period": period,
                "at": utc_iso(at),
                "requests": values.get("requests"),
                "errors": values.get("errors"),
                "ratio": values.get("ratio"),
                "p95": values.get("p95"),
                "verdicts": as_json(dict(verdicts)),
            }
        )

    def samples(self, release_id: int, period: str | None = None) -> list[Sample]:
        """Monitoring ticks of a release (optionally of one period), oldest first."""
        where, args = "release_id = ?", [release_id]
        if period is not None:
            where += " and period = ?"
            args.append(period)  # type: ignore[arg-type]
        return self._rows(Sample, "samples", where, args, decode={"verdicts": {}})

    def alert_state(self, release_id: int, signal: str) -> AlertState | None:
        """The persisted alert tracker state of one signal."""
        rows = self._rows(
            AlertState,
            "alert_states",
            "release_id = ? and signal = ?",
            [release_id, signal],
            order_by=None,
            decode={"state": {}},
        )
        return rows[0] if rows else None

    def alert_states(self, release_id: int) -> dict[str, AlertState]:
        """Every signal's tracker state of a release, by signal."""
        rows = self._rows(
            AlertState,
            "alert_states",
            "release_id = ?",
            [release_id],
            order_by=None,
            decode={"state": {}},
        )
        return {r.signal: r for r in rows}

    def save_alert_state(
        self, release_id: int, signal: str, state: Mapping[str, Any], at: datetime
    ) -> None:
        """Persist a signal's tracker state (in the tick's transaction)."""
        self._t("alert_states").upsert(
            {
                "release_id": release_id,
                "signal": signal,
                "state": as_json(dict(state)),
                "updated_at": utc_iso(at),
            },
            pk=("release_id", "signal"),
        )

    def add_alert(
        self,
        release_id: int,
        signal: str,
        action: str,
        summary: str,
        dedup_key: str | None,
        at: datetime,
    ) -> None:
        """Record an alert action for the release record."""
        self._t("alerts").insert(
            {
                "release_id": release_id,
                "signal": signal,
                "action": action,
                "summary": summary,
                "dedup_key": dedup_key,
                "at": utc_iso(at),
            }
        )

    def alerts(self, release_id: int) -> list[Alert]:
        """Alert actions of a release, oldest first."""
        return self._rows(Alert, "alerts", "release_id = ?", [release_id])
