"""The outbox: every message golive sends, written in the transaction of the change causing it
and delivered by a worker of its own."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from bot.domain.clock import parse_iso, utc_iso
from bot.domain.records import OutboxRow
from bot.store.core import StoreBase, as_json, from_json, key_of, time_or_none


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

    @staticmethod
    def _outbox_row(r: Mapping[str, Any]) -> OutboxRow:
        return OutboxRow(
            id=r["id"],
            release_id=r["release_id"],
            channel=r["channel"],
            kind=r["kind"],
            text=r["text"],
            blocks=from_json(r["blocks"], None),
            thread_of=r["thread_of"],
            user=r["user"],
            step_key=r["step_key"],
            update_of=r["update_of"],
            file=from_json(r["file"], None),
            status=r["status"],
            attempts=r["attempts"] or 0,
            next_attempt_at=time_or_none(r["next_attempt_at"]),
            ts=r["ts"],
            error=r["error"],
            created_at=parse_iso(r["created_at"]),
        )

    def pending_messages(
        self,
        limit: int = 100,
        only: frozenset[str] | None = None,
        skip: frozenset[str] = frozenset(),
    ) -> list[OutboxRow]:
        """Undelivered messages in the order they were written (optionally of some kinds)."""
        where, args = _pending_where(only, skip)
        return [
            self._outbox_row(r)
            for r in self._t("outbox").rows_where(where, args, order_by="id", limit=limit)
        ]

    def message(self, message_id: int) -> OutboxRow | None:
        """One outbox row by id."""
        rows = list(self._t("outbox").rows_where("id = ?", [message_id]))
        return self._outbox_row(rows[0]) if rows else None

    def message_by_ts(self, channel: str, ts: str) -> OutboxRow | None:
        """The delivered message with that Slack timestamp in that channel."""
        rows = list(
            self._t("outbox").rows_where(
                "channel = ? and ts = ? and update_of is null", [channel, ts], limit=1
            )
        )
        return self._outbox_row(rows[0]) if rows else None

    def messages(self, release_id: int) -> list[OutboxRow]:
        """Every message of a release, in order."""
        return [
            self._outbox_row(r)
            for r in self._t("outbox").rows_where("release_id = ?", [release_id], order_by="id")
        ]

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
        rows = list(
            self._t("outbox").rows_where(
                f"release_id = ? and {where}", [release_id, *args], order_by="id desc", limit=1
            )
        )
        return self._outbox_row(rows[0]) if rows else None

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
