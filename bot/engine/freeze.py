"""Keeps GitHub's merge gate in step with the freeze recorded in SQLite.

While a release holds the freeze, every open pull request into `freeze_branch` carries a failing
`golive/merge-freeze` status (re-scanned every few minutes, so PRs opened or pushed during the
freeze get it too); when the freeze lifts, every commit golive marked gets `success` again.
GitHub being down delays this (the next scan retries); it never changes the release itself.
"""

from __future__ import annotations

import logging

import httpx

from bot.domain.clock import Clock
from bot.domain.config import Config, Secrets
from bot.engine.worker import Worker
from bot.store import Store
from checks.freeze import open_pull_heads, set_freeze_status
from checks.http import ProviderError

log = logging.getLogger(__name__)


class FreezeEnforcer(Worker):
    """Marks and unmarks pull requests; `sync()` is idempotent and safe to call any time."""

    what = "merge gate sync"

    def __init__(
        self,
        config: Config,
        store: Store,
        secrets: Secrets,
        client: httpx.AsyncClient,
        clock: Clock,
        rescan: float = 120.0,
    ) -> None:
        self.config = config
        self.store = store
        self.secrets = secrets
        self.client = client
        self.clock = clock
        self.rescan = rescan
        super().__init__()
        self.last_error: str | None = None

    @property
    def enabled(self) -> bool:
        """True when a GitHub freeze branch is configured."""
        ci = self.config.preconditions.ci
        return ci is not None and bool(ci.freeze_branch)

    async def sync(self) -> None:
        """Make GitHub match the recorded freeze state."""
        ci = self.config.preconditions.ci
        if ci is None or not ci.freeze_branch:
            return
        token = self.secrets.get(ci.token_env)
        if token is None:
            await self._failed(
                None, f"{ci.token_env} is not set, so pull requests cannot be marked"
            )
            return
        frozen = self.store.frozen_release()
        try:
            if frozen is not None:
                marked = {
                    m["sha"]
                    for m in self.store.freeze_marks()
                    if m["release_id"] == frozen["id"] and m["state"] == "failure"
                }
                heads = await open_pull_heads(
                    self.client, ci.github_url, ci.repository, ci.freeze_branch, token
                )
                for head in heads:
                    if head.sha in marked:
                        continue
                    await set_freeze_status(
                        self.client,
                        ci.github_url,
                        ci.repository,
                        head.sha,
                        token,
                        frozen=True,
                        description=f"Merges frozen for release {frozen['version']} (golive)",
                    )
                    await self._mark(frozen["id"], ci.repository, head.sha, head.number, "failure")
            frozen_id = frozen["id"] if frozen is not None else None
            for mark in self.store.freeze_marks(state="failure"):
                if mark["release_id"] == frozen_id:
                    continue
                await set_freeze_status(
                    self.client,
                    ci.github_url,
                    mark["repository"],
                    mark["sha"],
                    token,
                    frozen=False,
                    description="Merge freeze lifted (golive)",
                )
                await self._mark(
                    mark["release_id"],
                    mark["repository"],
                    mark["sha"],
                    mark["pr_number"],
                    "success",
                )
        except ProviderError as exc:
            await self._failed(frozen["id"] if frozen else None, exc.message)
            return
        self.last_error = None

    async def _mark(
        self, release_id: int, repository: str, sha: str, pr_number: int, state: str
    ) -> None:
        now = self.clock.now()
        await self.store.writes.run(
            lambda: self.store.mark_frozen_commit(
                release_id, repository, sha, pr_number, state, now
            )
        )

    async def _failed(self, release_id: int | None, message: str) -> None:
        if message != self.last_error:
            log.warning("merge gate on GitHub: %s", message)
            now = self.clock.now()
            await self.store.writes.run(
                lambda: self.store.add_event(
                    release_id, now, "freeze_gate_failed", None, {"error": message}
                )
            )
        self.last_error = message

    def busy(self) -> bool:
        """True while something is frozen or a lifted freeze still has marks to clear."""
        return self.store.frozen_release() is not None or bool(
            self.store.freeze_marks(state="failure")
        )

    async def work(self) -> None:
        """One sync, when a freeze branch is configured."""
        if self.enabled:
            await self.sync()

    def next_wait(self) -> float | None:
        """Rescan while something is frozen or still marked; otherwise wait to be woken."""
        return self.rescan if self.enabled and self.busy() else None
