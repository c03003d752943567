"""The merge freeze: which releases hold one, the statuses golive set on commits, and the pull
requests let through."""

from __future__ import annotations

from datetime import datetime

from bot.domain.clock import utc_iso
from bot.domain.records import GateStatus, MergeAllowance, ReleaseRow
from bot.store.core import StoreBase


class FreezeStore(StoreBase):
    """Freeze holders, merge-gate statuses and merge allowances."""

    def frozen_release(self) -> ReleaseRow | None:
        """The release currently holding a merge freeze, if any (the newest when several do)."""
        rows = self.frozen_releases()
        return rows[0] if rows else None

    def frozen_releases(self) -> list[ReleaseRow]:
        """Every release holding a merge freeze, newest first (each holds its own)."""
        return self._rows(ReleaseRow, "releases", "frozen = 1", order_by="id desc")

    def freeze_holder(self, channel: str) -> int | None:
        """Id of the release of a channel that holds a merge freeze, whatever is newest there."""
        rows = list(
            self._t("releases").rows_where(
                "channel = ? and frozen = 1", [channel], order_by="id desc", limit=1
            )
        )
        return int(rows[0]["id"]) if rows else None

    def gate_status(self, repository: str, sha: str) -> GateStatus | None:
        """The merge-gate status golive last set on a commit, if any."""
        where = "repository = ? and sha = ?"
        rows = self._rows(GateStatus, "gate_statuses", where, [repository, sha], order_by=None)
        return rows[0] if rows else None

    def gate_statuses(self, repository: str) -> dict[str, GateStatus]:
        """sha → the merge-gate status golive last set on it, for one repository."""
        where = "repository = ?"
        rows = self._rows(GateStatus, "gate_statuses", where, [repository], order_by=None)
        return {r.sha: r for r in rows}

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

    def merge_allowances(self, release_id: int | None = None) -> list[MergeAllowance]:
        """Pull request heads let through a freeze (of one release, or all), oldest first."""
        where, args = (None, []) if release_id is None else ("release_id = ?", [release_id])
        return self._rows(MergeAllowance, "merge_allowances", where, args)

    def latest_allowance_id(self) -> int:
        """The id of the newest merge allowance (0 when there is none): it changes the gate."""
        row = self.db.execute("select coalesce(max(id), 0) from merge_allowances").fetchone()
        return int(row[0])
