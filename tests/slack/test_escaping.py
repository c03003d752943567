"""Text golive did not write reaches Slack inert: no live broadcast, no disguised link."""

from __future__ import annotations

import json

from bot.domain.clock import FakeClock
from bot.domain.model import StepStatus
from bot.sandbox import FakeSlack, Sandbox
from bot.sandbox.pagerduty import DEFAULT_SERVICE_ID, DEFAULT_TOKEN
from tests.conftest import BACKEND, CHANNEL, COMMANDER, ON_CALL
from tests.slack.conftest import serving, slack_config

LIVE = ("<!channel>", "<!here>", "<!everyone>", "<!subteam^", "<https://evil.example")


def _wire(fake: FakeSlack) -> list[str]:
    """The text and blocks of every message golive posted or edited, as sent."""
    return [
        json.dumps([c.params.get("text"), c.params.get("blocks")], ensure_ascii=False)
        for c in fake.calls
        if c.method in ("chat.postMessage", "chat.update", "chat.postEphemeral")
    ]


async def test_hostile_titles_and_typed_text_reach_slack_escaped(
    fake_slack: FakeSlack, clock: FakeClock
) -> None:
    """An incident title and typed text full of mrkdwn reach chat.postMessage escaped, while
    golive's own mentions and its release-notes link stay live."""
    async with Sandbox.start(traffic=False, history=0) as sb:
        sb.pagerduty.add_incident("DB failover")
        sb.pagerduty.set_fault_switch("mrkdwn_titles")
        config = slack_config(
            preconditions={
                "incidents": {
                    "pagerduty_url": sb.pagerduty.url,
                    "service_ids": [DEFAULT_SERVICE_ID],
                },
                "release_notes": {"url": sb.urls["notes"]},
            }
        )
        async with serving(config, fake_slack, clock, PAGERDUTY_API_TOKEN=DEFAULT_TOKEN) as h:
            await h.command(COMMANDER, "start v2.4.0")
            await h.until(
                lambda: h.step("incidents").status is StepStatus.BLOCKED, "incidents to block"
            )
            await h.until(lambda: h.step("notes").status is StepStatus.AWAITING, "notes to wait")
            # As Slack sends them: `@channel` typed becomes <!channel>, a user group and a
            # formatted link keep their markup, a typed & < > arrive escaped.
            typed = (
                "note failover done <!channel> <!subteam^S0ALLENG|@eng> see "
                "<https://evil.example|the runbook> cc <@U0ONCALL1|carol> &lt;b&gt; &amp; co"
            )
            reply = await h.command(BACKEND, typed)
            assert reply["text"] == "Note recorded."
            await h.command(COMMANDER, "waive incidents <!here> known <https://evil.example|x>")
            await h.settle()
            notes_url = sb.urls["notes"].replace("{version}", "v2.4.0")

    wire = _wire(fake_slack)
    for live in LIVE:
        assert not [w for w in wire if live in w], live
    texts = fake_slack.texts(CHANNEL)
    blocked = next(t for t in texts if "open critical incident" in t)
    assert "DB failover &lt;!channel&gt; &lt;!here&gt; &lt;!subteam^S0ALLENG&gt; &amp;" in blocked
    assert "&lt;https://evil.example|click&gt;" in blocked
    assert blocked.endswith(f"<@{COMMANDER}>")  # golive's own mention of the commander
    note = next(t for t in texts if t.startswith("📝"))
    assert note == (
        f"📝 Note from <@{BACKEND}>: failover done &lt;!channel&gt; "
        "&lt;!subteam^S0ALLENG|@eng&gt; see the runbook (https://evil.example) "
        f"cc <@{ON_CALL}> &lt;b&gt; &amp; co"
    )
    waived = next(t for t in texts if t.startswith("⚠️"))
    assert "&lt;!here&gt; known x (https://evil.example)" in waived
    request = next(t for t in texts if "Release notes" in t and "Approve" in t)
    assert f"<{notes_url}|{notes_url}>" in request  # the link golive makes stays a link
