"""What a person sees in golive's App Home, and links to golive's own messages.

A Home tab view is drawn when its outbox row is delivered, from the state of that moment: many
changes in a row publish one view per person (older rows are superseded when a newer one is
queued), and an outage delays the view, never loses it. Links to messages are written as
references to outbox rows and become links to the delivered messages here, just before delivery;
the transport turns those into Slack permalinks.
"""

from __future__ import annotations

import dataclasses
import re
from datetime import datetime

from bot.domain.clock import Clock
from bot.domain.config import Config
from bot.domain.model import Release, ReleaseStatus, answerers
from bot.engine.outbox import RetryLater
from bot.render import messages
from bot.render.fmt import ROW_LINK, Rendered, map_text, message_link
from bot.store import OutboxRow, Store

HOME_KIND = "home"  # an App Home view to publish for `user` (its `channel` is the user id)
COMPLETED_SHOWN = 5  # completed releases listed in the Home tab
OPEN = (ReleaseStatus.SCHEDULED.value, ReleaseStatus.ACTIVE.value)


def waiting_keys(release: Release) -> dict[str, frozenset[tuple[int, str, str, int]]]:
    """user → what waits on them in this release (step, status, stage): when it changes for
    someone, their Home tab is out of date."""
    found: dict[str, set[tuple[int, str, str, int]]] = {}
    for step in release.steps:
        for user in answerers(release, step):
            found.setdefault(user, set()).add((release.id, step.key, step.status.value, step.stage))
    return {user: frozenset(keys) for user, keys in found.items()}


class HomeViews:
    """Draws App Home views at delivery (the home outbox's `prepare`)."""

    def __init__(self, store: Store, config: Config, clock: Clock) -> None:
        self.store = store
        self.config = config
        self.clock = clock

    def queue(self, user: str, now: datetime) -> int:
        """Queue a fresh view for `user` (inside the caller's transaction); a view still
        waiting for delivery is replaced by this one."""
        row = self.store.enqueue(
            release_id=None,
            channel=user,
            kind=HOME_KIND,
            text="",
            blocks=None,
            at=now,
            user=user,
        )
        self.store.supersede_pending(HOME_KIND, user, row)
        return row

    def render(self, user: str) -> Rendered:
        """The view of `user` now: the steps waiting on them with links, the releases in
        progress, and the last completed ones."""
        now = self.clock.now()
        waiting: list[messages.HomeStep] = []
        active: list[messages.HomeRelease] = []
        for rid in sorted(self.store.release_ids(statuses=OPEN)):
            release = self.store.load(rid).release
            active.append(messages.HomeRelease(release))
            mine = [s for s in release.steps if user in answerers(release, s)]
            waits = self.store.waits(rid) if mine else {}
            for step in mine:
                wait = waits.get(step.key)
                request = self.store.latest_step_message(rid, step.key)
                link = None
                if request is not None and request.status == "delivered" and request.ts:
                    link = message_link(request.channel, request.ts, "open the request")
                since = wait.since if wait is not None else None
                waiting.append(messages.HomeStep(release, step, since, link))
        completed = [
            messages.HomeRelease(record.release, record.ended_at)
            for record in (
                self.store.load(rid)
                for rid in self.store.release_ids(
                    statuses=(ReleaseStatus.COMPLETED.value,), limit=COMPLETED_SHOWN
                )
            )
        ]
        rendered = messages.render_home(user, waiting, active, completed, self.config, now)
        redactor = self.store.redactor
        return Rendered(redactor.text(rendered.text), redactor.scrub(rendered.blocks))

    async def prepare(self, row: OutboxRow) -> OutboxRow:
        """A home row gets the view as it is now; other rows pass unchanged."""
        if row.kind != HOME_KIND or not row.user:
            return row
        view = self.render(row.user)
        return dataclasses.replace(row, text=view.text, blocks=view.blocks)


class Links:
    """Turns links to outbox rows into links to the delivered messages (the chat outbox's
    `prepare`): a row still waiting for delivery holds the message back (RetryLater), and a
    link to a message that could not be delivered becomes its plain label."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def _resolve(self, found: re.Match[str]) -> str:
        target = self.store.message(int(found.group(1)))
        label = found.group(2)
        if target is not None and target.status == "pending":
            # Slack has not given it a timestamp yet (an outage): send the link once it has.
            raise RetryLater(f"the message it links to (m{target.id}) is not delivered yet", 1.0)
        if target is None or target.status != "delivered" or not target.ts:
            return label
        return message_link(target.channel, target.ts, label)

    def resolve(self, text: str) -> str:
        """Every row link in `text`, resolved."""
        return ROW_LINK.sub(self._resolve, text)

    async def prepare(self, row: OutboxRow) -> OutboxRow:
        """The row with its row links resolved (unchanged when it has none)."""
        if "golive-row:" not in row.text and "golive-row:" not in str(row.blocks or ""):
            return row
        return dataclasses.replace(
            row, text=self.resolve(row.text), blocks=map_text(row.blocks, self.resolve)
        )
