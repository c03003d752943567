"""What the record, the soak chart and the history are drawn from, read out of the store.

Reading is the engine's part; `bot.render.report` turns what is read into Markdown and PNG.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor

from bot.domain.config import Config
from bot.domain.records import OutboxRow
from bot.engine.outbox import Undeliverable
from bot.engine.writeback import WRITE_BACK_KIND
from bot.render.report import history_text, release_record, soak_chart
from bot.store import Store
from checks.monitoring import baseline_in

log = logging.getLogger(__name__)

# A file row whose content is drawn when it is delivered rather than when it is queued: drawing
# the soak chart (matplotlib) on the path of `/golive complete` would slow its reply.
DRAWN_LATER = "drawn_later"
SOAK_CHART = "soak-chart"


def record_markdown(store: Store, config: Config, release_id: int) -> str:
    """The release record of one release, as Markdown."""
    return release_record(
        store.load(release_id),
        config,
        approvals=store.approvals(release_id),
        results=store.check_results(release_id),
        waivers=store.waivers(release_id),
        alerts=store.alerts(release_id),
        samples=store.samples(release_id),
        notes=store.notes(release_id),
        events=store.events(release_id),
        actions=store.action_runs(release_id),
        allowances=store.merge_allowances(release_id),
        writebacks=[m for m in store.messages(release_id) if m.kind == WRITE_BACK_KIND],
    )


def history(store: Store, config: Config, limit: int = 20) -> str:
    """The newest releases, one line each."""
    return history_text(store.history_rows(limit), config)


class Drawings:
    """Fills in the files that are drawn at delivery (the outbox calls `prepare`).

    Charts are drawn in a process of their own: drawing is seconds of CPU in matplotlib, and in
    a thread of golive's it would hold the interpreter lock that the event loop needs to answer
    Slack within its three seconds. The process is started at the first chart (spawned, not
    forked: golive runs threads) and stopped with golive.
    """

    def __init__(self, store: Store, config: Config) -> None:
        self.store = store
        self.config = config
        self._pool: ProcessPoolExecutor | None = None

    def _painter(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn")
            )
        return self._pool

    def close(self) -> None:
        """Stop the drawing process, if one was started."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    async def prepare(self, row: OutboxRow) -> OutboxRow:
        """The row as it should be delivered: a drawn-later file gets its content now."""
        spec = row.file or {}
        if spec.get(DRAWN_LATER) != SOAK_CHART or row.release_id is None:
            return row
        record = self.store.load(row.release_id)
        samples = self.store.samples(row.release_id, "soak")
        baseline = baseline_in(
            [r.evidence for r in self.store.check_results(row.release_id, "baseline")]
        )
        ratio = baseline.ratio if baseline else None
        try:
            draw = soak_chart(record, samples, ratio, self.config)
            png = await asyncio.get_running_loop().run_in_executor(self._painter(), draw)
        except Exception as exc:  # a chart that cannot be drawn must not hold the channel
            log.exception("drawing the soak chart of release %s failed", row.release_id)
            raise Undeliverable(f"the soak chart could not be drawn: {type(exc).__name__}") from exc
        file = {k: v for k, v in spec.items() if k != DRAWN_LATER}
        file["content_b64"] = base64.b64encode(png).decode("ascii")
        return dataclasses.replace(row, file=file)
