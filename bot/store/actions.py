"""The runs of step actions (deploys golive starts and follows) and of a confirmed rollback."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.domain.clock import utc_iso
from bot.domain.records import ActionRun
from bot.store.core import StoreBase, as_json, key_of


class ActionStore(StoreBase):
    """Action runs."""

    def add_action_run(
        self,
        release_id: int,
        step_key: str,
        attempt: int,
        seq: int,
        target: str,
        kind: str,
        token: str,
        at: datetime,
    ) -> int:
        """Record a run golive is about to start (state pending); returns its id."""
        return key_of(
            self._t("action_runs")
            .insert(
                {
                    "release_id": release_id,
                    "step_key": step_key,
                    "attempt": attempt,
                    "seq": seq,
                    "target": target,
                    "kind": kind,
                    "state": "pending",
                    "token": token,
                    "evidence": as_json({}),
                    "updated_at": utc_iso(at),
                }
            )
            .last_pk
        )

    def update_action_run(self, row_id: int, at: datetime, **fields: Any) -> None:
        """Move a run on: its state, the provider's run id and link, the outcome."""
        values: dict[str, Any] = {"updated_at": utc_iso(at)}
        for key, value in fields.items():
            if key == "evidence":
                values[key] = as_json(self.redactor.scrub(value))
            elif key == "detail" and isinstance(value, str):
                values[key] = self.redactor.text(value)
            elif key in ("started_at", "finished_at") and isinstance(value, datetime):
                values[key] = utc_iso(value)
            else:
                values[key] = value
        self._t("action_runs").update(row_id, values)

    def action_runs(
        self, release_id: int, step_key: str | None = None, attempt: int | None = None
    ) -> list[ActionRun]:
        """Action runs of a release (optionally of one step and attempt), in order."""
        where, args = "release_id = ?", [release_id]
        if step_key is not None:
            where += " and step_key = ?"
            args.append(step_key)  # type: ignore[arg-type]
        if attempt is not None:
            where += " and attempt = ?"
            args.append(attempt)
        return self._rows(
            ActionRun, "action_runs", where, args, order_by="seq, id", decode={"evidence": {}}
        )

    def unfinished_rollbacks(self) -> list[int]:
        """Releases whose confirmed rollback still has runs to start or follow."""
        rows = self.db.execute(
            "select distinct release_id from action_runs where step_key = 'rollback' and "
            "state not in ('succeeded', 'failed', 'skipped') order by release_id"
        ).fetchall()
        return [int(r[0]) for r in rows]
