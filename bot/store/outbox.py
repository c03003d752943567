"""The outbox: every message golive sends, written in the transaction of the change causing it
and delivered by a worker of its own."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from bot.domain.clock import utc_iso
from bot.domain.records import OutboxRow
from bot.store.core import StoreBase, as_json, key_of


def _pending_where(only: frozenset[str] | None, skip: frozenset[str]) -> tuple[str, list[str]]:
    """The outbox filter for pending rows of some kinds (`only`) and not others (`skip`)."""
    where = "status = 'pending'"
    args: list[str] = []
    if only is not None:
        where += " and kind in (" + ",".join("?" * len(only)) + ")"
        args += sorted(only)
    if skip:
        where += " and kind not in (" + ",".join("?" * len(skip)) + ")"
        args += sorted(skip)
    return where, args


# The outbox's JSON columns, with what an empty one reads as.
OUTBOX_JSON: Mapping[str, Any] = {"blocks": None, "file": None}


class OutboxStore(StoreBase):
    """Outbox rows: queued, delivered, retried, failed, superseded."""

    def enqueue(
        self,
        *,
        release_id: int | None,
        channel: str,
        kind: str,
        text: str,
        blocks: list[dict[str, Any]] | None,
        at: datetime,
        thread_of: int | None = None,
        user: str | None = None,
        step_key: str | None = None,
        update_of: int | None = None,
        file: Mapping[str, Any] | None = None,
    ) -> int:
        """Queue a message for delivery; call inside the transaction of the change causing it."""
        return key_of(
            self._t("outbox")
            .insert(
                {
                    "release_id": release_id,
                    "channel": channel,
                    "kind": kind,
                    "text": self.redactor.text(text),
                    "blocks": as_json(self.redactor.scrub(blocks)) if blocks is not None else None,
                    "thread_of": thread_of,
                    "user": user,
                    "step_key": step_key,
                    "update_of": update_of,
                    "file": as_json(self.redactor.scrub(dict(file))) if file is not None else None,
                    "status": "pending",
                    "attempts": 0,
                    "created_at": utc_iso(at),
                }
            )
            .last_pk
        )

    def _outbox(
        self,
        where: str,
        args: Sequence[Any],
        *,
        order_by: str | None = "id",
        limit: int | None = None,
    ) -> list[OutboxRow]:
        return self._rows(
            OutboxRow, "outbox", where, args, order_by=order_by, limit=limit, decode=OUTBOX_JSON
        )

    def pending_messages(
        self,
        limit: int = 100,
        only: frozenset[str] | None = None,
        skip: frozenset[str] = frozenset(),
    ) -> list[OutboxRow]:
        """Undelivered messages in the order they were written (optionally of some kinds)."""
        where, args = _pending_where(only, skip)
        return self._outbox(where, args, limit=limit)

    def message(self, message_id: int) -> OutboxRow | None:
        """One outbox row by id."""
        rows = self._outbox("id = ?", [message_id], order_by=None)
        return rows[0] if rows else None

    def message_by_ts(self, channel: str, ts: str) -> OutboxRow | None:
        """The delivered message with that Slack timestamp in that channel."""
        where = "channel = ? and ts = ? and update_of is null"
        rows = self._outbox(where, [channel, ts], order_by=None, limit=1)
        return rows[0] if rows else None

    def messages(self, release_id: int) -> list[OutboxRow]:
        """Every message of a release, in order."""
        return self._outbox("release_id = ?", [release_id])

    def mark_delivered(self, message_id: int, ts: str | None, at: datetime) -> None:
        """A message reached its destination."""
        self._t("outbox").update(
            message_id,
            {"status": "delivered", "ts": ts, "delivered_at": utc_iso(at), "error": None},
        )

    def mark_retry(self, message_id: int, attempts: int, when: datetime, error: str) -> None:
        """A delivery failed for a passing reason; try again at `when`."""
        self._t("outbox").update(
            message_id,
            {"attempts": attempts, "next_attempt_at": utc_iso(when), "error": error[:500]},
        )

    def mark_failed(self, message_id: int, error: str, at: datetime) -> None:
        """A delivery failed for good (for example the channel does not exist)."""
        self._t("outbox").update(
            message_id, {"status": "failed", "error": error[:500], "delivered_at": utc_iso(at)}
        )

    def supersede_updates(self, target: int, keep: int) -> None:
        """Older pending updates of the same message are replaced by a newer one."""
        self.db.execute(
            "update outbox set status = 'superseded' where status = 'pending' and "
            "update_of = ? and id < ?",
            [target, keep],
        )

    def latest_request(
        self, release_id: int, step_key: str, kind: str = "approval"
    ) -> OutboxRow | None:
        """The newest approval request posted for a step (older ones are superseded), or the
        newest message of another `kind` about it (its latest reminder)."""
        return self._newest(release_id, "kind = ? and step_key = ?", [kind, step_key])

    def latest_message(self, release_id: int, kind: str) -> OutboxRow | None:
        """The newest message of a kind (not an edit) queued for a release."""
        return self._newest(release_id, "kind = ? and update_of is null", [kind])

    def latest_step_message(self, release_id: int, step_key: str) -> OutboxRow | None:
        """The newest message that asks a person about a step: its approval request, or the
        message saying why it is blocked (not reminders, not edits)."""
        return self._newest(
            release_id,
            "step_key = ? and kind in ('approval', 'thread') and update_of is null",
            [step_key],
        )

    def _newest(self, release_id: int, where: str, args: list[Any]) -> OutboxRow | None:
        where = f"release_id = ? and {where}"
        rows = self._outbox(where, [release_id, *args], order_by="id desc", limit=1)
        return rows[0] if rows else None

    def has_sent(self, kind: str, channel: str) -> bool:
        """True when a row of this kind was ever queued for this destination (for instance,
        a person opened golive's App Home once)."""
        row = self.db.execute(
            "select 1 from outbox where channel = ? and kind = ? limit 1", [channel, kind]
        ).fetchone()
        return row is not None

    def supersede_pending(self, kind: str, channel: str, keep: int) -> None:
        """Pending rows of a kind for one destination, older than `keep`, are replaced by it
        (an App Home view: only the newest one is worth publishing)."""
        self.db.execute(
            "update outbox set status = 'superseded' where status = 'pending' and kind = ? "
            "and channel = ? and id < ?",
            [kind, channel, keep],
        )

    def pending_count(
        self, only: frozenset[str] | None = None, skip: frozenset[str] = frozenset()
    ) -> int:
        """How many messages (optionally of some kinds) wait for delivery."""
        where, args = _pending_where(only, skip)
        row = self.db.execute(f"select count(*) from outbox where {where}", args).fetchone()
        return int(row[0])
