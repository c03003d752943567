"""A Slack outage (429s with Retry-After, 500s, dropped connections) delays messages, loses none."""

from __future__ import annotations

import itertools
from datetime import timedelta

from bot.domain.model import StepStatus
from bot.engine.outbox import PACED_KINDS
from tests.conftest import ANNOUNCE, CHANNEL, COMMANDER
from tests.slack.conftest import SlackHarness

RETRY_AFTER = 7


async def test_a_minute_of_429s_and_500s_loses_nothing_and_keeps_order(
    served: SlackHarness,
) -> None:
    """A 60 s stretch of 429/500 answers: every message arrives, in order per channel."""
    h = served
    await h.command(COMMANDER, "start v2.4.0")
    await h.settle()
    requests = {key: h.request_in_slack(key).ts for key in ("ci", "incidents")}

    start = h.clock.now()
    h.fake.drop_connections(calls=2)
    h.fake.rate_limit(until=start + timedelta(seconds=30), retry_after=RETRY_AFTER)
    h.fake.fail(500, until=start + timedelta(seconds=60))

    # The release goes on during the outage: reactions and commands need no Web API call.
    for key, ts in requests.items():
        await h.react(h.owner(h.step(key)), ts)
    await h.until(lambda: h.step("incidents").status is StepStatus.DONE, "the reactions")
    await h.approve_through("backup")
    assert h.runtime.outbox.pending() >= 10

    await h.settle(timeout=20.0)

    assert h.clock.now() - start >= timedelta(seconds=60)
    outcomes = {c.outcome for c in h.fake.calls}
    assert {"dropped", "ratelimited", "http_500", "ok"} <= outcomes
    rows = h.rows()
    assert [r for r in rows if r.status not in ("delivered", "superseded")] == []

    for channel in (CHANNEL, ANNOUNCE):
        # Retry-After is honoured: while rate limited, a channel's attempts are that far apart
        # (permalink lookups for App Home views name the channel too, from a queue of their own).
        limited = [
            c.at
            for c in h.fake.calls
            if c.outcome == "ratelimited"
            and c.params.get("channel") == channel
            and c.method.startswith("chat.")
            and c.method != "chat.getPermalink"
        ]
        assert len(limited) >= 2
        gaps = [b - a for a, b in itertools.pairwise(limited)]
        assert min(gaps) >= timedelta(seconds=RETRY_AFTER)

        posted_rows = [r for r in rows if r.channel == channel and r.kind in PACED_KINDS]
        in_slack = h.fake.posts(channel)
        # Nothing lost, nothing doubled, and Slack saw them in the order they were written.
        assert [m.history[0] if m.history else m.text for m in in_slack] == [
            r.text for r in posted_rows
        ]
        by_ts = {r.ts: r.id for r in posted_rows}
        assert [by_ts[m.ts] for m in in_slack] == sorted(by_ts.values())
        # Edits too: the successful chat.update calls follow the outbox order.
        updates = [
            r.text
            for r in rows
            if r.channel == channel and r.kind == "update" and r.status == "delivered"
        ]
        sent = [
            c.params["text"]
            for c in h.fake.calls_to("chat.update")
            if c.outcome == "ok" and c.params["channel"] == channel
        ]
        assert sent == updates

    # The card shows the latest state, and the freeze was announced once in each channel.
    card = h.fake.top_level(CHANNEL)[0]
    latest_card = [r for r in rows if r.kind == "update" and r.update_of == rows[0].id][-1]
    assert card.text == latest_card.text
    freeze = [m for m in h.fake.top_level(ANNOUNCE) if m.text.startswith("🧊")]
    assert len(freeze) == 1
