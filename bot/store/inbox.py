"""What comes in: the inbox of Slack events and clicks, the replies of commands already run,
GitHub deliveries already seen, and the heartbeat."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from bot.domain.clock import utc_iso
from bot.domain.records import InboxEntry
from bot.store.core import StoreBase, as_json


class InboxStore(StoreBase):
    """Inbox entries, answered commands, seen deliveries and the heartbeat."""

    def inbox_add(self, key: str, kind: str, payload: Mapping[str, Any], at: datetime) -> bool:
        """Keep an incoming event before it is acknowledged; False when its key was seen."""
        with self.transaction():
            cursor = self.db.execute(
                "insert or ignore into inbox (key, kind, payload, received_at, status) "
                "values (?, ?, ?, ?, 'pending')",
                [key, kind, as_json(dict(payload)), utc_iso(at)],
            )
            return cursor.rowcount == 1

    def inbox_pending(self, limit: int = 100) -> list[InboxEntry]:
        """Events not yet processed, oldest first."""
        return self._rows(
            InboxEntry, "inbox", "status = 'pending'", limit=limit, decode={"payload": {}}
        )

    def inbox_entry(self, key: str) -> InboxEntry | None:
        """One inbox row by its key."""
        rows = self._rows(
            InboxEntry, "inbox", "key = ?", [key], order_by=None, decode={"payload": {}}
        )
        return rows[0] if rows else None

    def inbox_done(self, entry_id: int, outcome: str | None, at: datetime) -> None:
        """An event was processed (call in the transaction of what it changed)."""
        self._t("inbox").update(
            entry_id, {"status": "done", "outcome": outcome, "done_at": utc_iso(at)}
        )

    def inbox_failed(self, entry_id: int, error: str, at: datetime) -> None:
        """An event cannot be processed (a bug, logged); it is kept for inspection."""
        self._t("inbox").update(
            entry_id, {"status": "failed", "error": error[:500], "done_at": utc_iso(at)}
        )

    def answered(self, key: str, trigger_id: str | None) -> tuple[str, bool] | None:
        """The reply (text, public) of a command already run with that body or trigger id."""
        row = self.db.execute(
            "select reply, public from requests where key = ? or "
            "(? is not null and trigger_id = ?) limit 1",
            [key, trigger_id, trigger_id],
        ).fetchone()
        return (str(row[0]), bool(row[1])) if row else None

    def record_answer(
        self,
        key: str,
        trigger_id: str | None,
        user: str,
        channel: str,
        reply: str,
        public: bool,
        at: datetime,
    ) -> None:
        """Remember a command's reply (in the transaction of what the command changed)."""
        self._t("requests").insert(
            {
                "key": key,
                "trigger_id": trigger_id,
                "user": user,
                "channel": channel,
                "reply": self.redactor.text(reply),
                "public": int(public),
                "received_at": utc_iso(at),
            }
        )

    def first_delivery(self, key: str, at: datetime) -> bool:
        """True the first time a delivery key (GitHub's X-GitHub-Delivery) is seen."""
        with self.transaction():
            cursor = self.db.execute(
                "insert or ignore into seen_events (key, at) values (?, ?)", [key, utc_iso(at)]
            )
            return cursor.rowcount == 1

    def heartbeat(self, at: datetime) -> None:
        """Write one tiny row: proof that the database can be written now."""
        with self.transaction():
            self.db.execute(
                "insert or replace into heartbeat (id, at) values (1, ?)", [utc_iso(at)]
            )
