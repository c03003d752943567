"""The merge freeze: which releases hold one, the statuses golive set on commits, and the pull
requests let through."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.domain.clock import utc_iso
from bot.store.core import StoreBase


class FreezeStore(StoreBase):
    """Freeze holders, merge-gate statuses and merge allowances."""

    def frozen_release(self) -> dict[str, Any] | None:
        """The release currently holding a merge freeze, if any (the newest when several do)."""
        rows = self.frozen_releases()
        return rows[0] if rows else None

    def frozen_releases(self) -> list[dict[str, Any]]:
        """Every release holding a merge freeze, newest first (each holds its own)."""
        return list(self._t("releases").rows_where("frozen = 1", order_by="id desc"))

    def freeze_holder(self, channel: str) -> int | None:
        """Id of the release of a channel that holds a merge freeze, whatever is newest there."""
        rows = list(
            self._t("releases").rows_where(
                "channel = ? and frozen = 1", [channel], order_by="id desc", limit=1
            )
        )
        return int(rows[0]["id"]) if rows else None

    def gate_status(self, repository: str, sha: str) -> dict[str, Any] | None:
        """The merge-gate status golive last set on a commit, if any."""
        rows = list(
            self._t("gate_statuses").rows_where(
                "repository = ? and sha = ?", [repository, sha], limit=1
            )
        )
        return rows[0] if rows else None

    def gate_statuses(self, repository: str) -> dict[str, dict[str, Any]]:
        """sha → the merge-gate status golive last set on it, for one repository."""
        return {
            r["sha"]: r for r in self._t("gate_statuses").rows_where("repository = ?", [repository])
        }

    def remember_gate_status(
        self,
        repository: str,
        sha: str,
        pr_number: int,
        state: str,
        description: str,
        release_id: int | None,
        at: datetime,
    ) -> None:
        """Record the merge-gate status golive just set on a commit (GitHub has it now)."""
        self._t("gate_statuses").upsert(
            {
                "repository": repository,
                "sha": sha,
                "pr_number": pr_number,
                "state": state,
                "description": description,
                "release_id": release_id,
                "posted_at": utc_iso(at),
                "verified_at": utc_iso(at),
            },
            pk=("repository", "sha"),
        )

    def gate_verified(self, repository: str, sha: str, at: datetime) -> None:
        """GitHub was seen to carry the status golive remembers for a commit."""
        self._t("gate_statuses").update((repository, sha), {"verified_at": utc_iso(at)})

    def add_merge_allowance(
        self,
        release_id: int,
        pr_number: int,
        sha: str,
        title: str,
        user: str,
        reason: str,
        at: datetime,
    ) -> None:
        """The commander let one pull request's head through this release's freeze."""
        self._t("merge_allowances").insert(
            {
                "release_id": release_id,
                "pr_number": pr_number,
                "sha": sha,
                "title": self.redactor.text(title),
                "user": user,
                "reason": self.redactor.text(reason),
                "at": utc_iso(at),
            }
        )

    def merge_allowances(self, release_id: int | None = None) -> list[dict[str, Any]]:
        """Pull request heads let through a freeze (of one release, or all), oldest first."""
        where, args = (None, []) if release_id is None else ("release_id = ?", [release_id])
        return list(self._t("merge_allowances").rows_where(where, args, order_by="id"))

    def latest_allowance_id(self) -> int:
        """The id of the newest merge allowance (0 when there is none): it changes the gate."""
        row = self.db.execute("select coalesce(max(id), 0) from merge_allowances").fetchone()
        return int(row[0])
