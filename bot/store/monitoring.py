"""Monitoring: each tick's figures and verdicts, the alert trackers' state, the alerts sent."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from bot.domain.clock import utc_iso
from bot.store.core import StoreBase, as_json, from_json


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

    def samples(self, release_id: int, period: str | None = None) -> list[dict[str, Any]]:
        """Monitoring ticks of a release (optionally of one period), oldest first."""
        where, args = "release_id = ?", [release_id]
        if period is not None:
            where += " and period = ?"
            args.append(period)  # type: ignore[arg-type]
        return [
            {**r, "verdicts": from_json(r["verdicts"], {})}
            for r in self._t("samples").rows_where(where, args, order_by="id")
        ]

    def alert_state(self, release_id: int, signal: str) -> dict[str, Any] | None:
        """The persisted alert tracker state of one signal."""
        rows = list(
            self._t("alert_states").rows_where(
                "release_id = ? and signal = ?", [release_id, signal]
            )
        )
        return from_json(rows[0]["state"], None) if rows else None

    def alert_states(self, release_id: int) -> dict[str, dict[str, Any]]:
        """Every signal's tracker state of a release."""
        return {
            r["signal"]: from_json(r["state"], {})
            for r in self._t("alert_states").rows_where("release_id = ?", [release_id])
        }

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

    def alerts(self, release_id: int) -> list[dict[str, Any]]:
        """Alert actions of a release, oldest first."""
        return list(self._t("alerts").rows_where("release_id = ?", [release_id], order_by="id"))
