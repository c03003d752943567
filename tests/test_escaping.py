"""Escaping at the rendering boundary: mrkdwn for Slack, Markdown for the record, plain text for
the console."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.adapters.console import plain
from bot.domain.config import Shortened
from bot.domain.model import Phase, Role, Stage, StageKind, Step
from bot.domain.records import CheckRow
from bot.engine.records import record_markdown
from bot.render.card import shortened_line
from bot.render.fmt import clip, code, code_block, echo, esc, link, mention, section
from bot.render.messages import render_check_results, rollback_plan_line
from tests.conftest import CHANNEL, COMMANDER, Harness

BAIT = "DB failover <!channel> & <https://evil.example|click>"


def _step() -> Step:
    return Step(
        "preflight",
        Phase.PREFLIGHT,
        "Preflight",
        (Stage(StageKind.CHECK, Role.COMMANDER, "run the preflight", check="preflight"),),
    )


def test_esc_makes_control_characters_entities() -> None:
    """`&`, `<` and `>` become entities, `&` first so nothing is escaped twice."""
    assert esc(BAIT) == "DB failover &lt;!channel&gt; &amp; &lt;https://evil.example|click&gt;"
    assert esc("&lt;") == "&amp;lt;"


def test_echo_keeps_people_and_channels_but_neutralises_broadcasts() -> None:
    """Typed user and channel mentions stay live; broadcasts and user groups become text; a typed
    link shows its target."""
    typed = "<@U0BOB|bob> in <#C0REL|release>: <!channel> <!here> <!everyone> <!subteam^S1|@eng>"
    assert echo(typed) == (
        "<@U0BOB> in <#C0REL>: &lt;!channel&gt; &lt;!here&gt; &lt;!everyone&gt; "
        "&lt;!subteam^S1|@eng&gt;"
    )
    assert echo("see <https://evil.example|the runbook> or <https://ok.example>") == (
        "see the runbook (https://evil.example) or https://ok.example"
    )
    assert echo("a < b & c > d <@not-an-id>") == "a &lt; b &amp; c &gt; d &lt;@not-an-id&gt;"


def test_code_spans_and_blocks_are_escaped_too() -> None:
    """Slack parses `<!channel>` inside code, so code spans and blocks are escaped, and a fence in
    the text cannot close the block."""
    assert code("<!here>") == "`&lt;!here&gt;`"
    assert code("a`b") == "`a'b`"
    block = code_block("line\n```\n<!channel>")
    assert block.startswith("```\n") and block.endswith("\n```")
    assert block.count("```") == 2 and "&lt;!channel&gt;" in block


def test_golive_links_and_mentions_stay_live_with_escaped_parts() -> None:
    """Links golive makes are `<url|label>` with neither part able to end the link early; a
    mention of something that is not a user id is shown as text."""
    assert link("https://wiki/x?a=1&b=2", "notes") == "<https://wiki/x?a=1&amp;b=2|notes>"
    assert link("https://wiki/a|b>c", "x|y") == "<https://wiki/a%7Cb&gt;c|x¦y>"
    assert mention("U0COMMAND") == "<@U0COMMAND>"
    assert mention("<!channel>") == "`&lt;!channel&gt;`"


def test_clip_never_cuts_an_entity_or_a_mention() -> None:
    """Slack's 3,000-character sections are cut before a half entity or half mention."""
    assert clip("ab&amp;", 5) == "ab"
    assert clip("ab<@U0COMMAND>", 8) == "ab"
    assert len(section("x" * 2998 + "&amp;")["text"]["text"]) == 2998


def test_check_results_escape_summary_name_and_output() -> None:
    """A check's name, summary and preflight output are escaped in text and blocks alike."""
    rendered = render_check_results(
        _step(),
        [
            CheckRow(
                id=1,
                release_id=1,
                step_key="preflight",
                attempt=1,
                name="pre<!here>",
                status="fail",
                summary=BAIT,
                evidence={"output_tail": "ok\n<!channel> <https://evil.example|x>\n"},
                duration=0.0,
                at=datetime(2026, 11, 27, 12, 0, tzinfo=UTC),
            )
        ],
        ok=False,
    )
    for text in (rendered.text, rendered.blocks[0]["text"]["text"] if rendered.blocks else ""):
        assert "<!" not in text and "<https" not in text
        assert "&lt;!channel&gt;" in text and "`pre&lt;!here&gt;`" in text


def test_rollback_plan_escapes_registry_tags() -> None:
    """A tag read from the registry is shown as code, escaped."""
    line = rollback_plan_line("api", "platform/api", "1.0<!channel>")
    assert line == "api: roll back to `platform/api:1.0&lt;!channel&gt;`"


async def test_console_and_record_show_what_was_typed(harness: Harness) -> None:
    """The console prints the characters people typed, and the Markdown record escapes them so
    a viewer shows them as written instead of as links or HTML."""
    await harness.say(COMMANDER, "/golive start v2.4.0")
    printed = await harness.say(
        COMMANDER, "/golive note R&amp;D <!channel> [x](https://evil.example) &lt;b&gt;"
    )
    await harness.settle()
    shown = [line for line in harness.output if "Note from" in line]
    assert shown and shown[-1].endswith("R&D <!channel> [x](https://evil.example) <b>"), printed
    rid = harness.store.latest_in_channel(CHANNEL)
    assert rid is not None
    assert harness.store.notes(rid)[0].text == "R&D <!channel> [x](https://evil.example) <b>"
    record = record_markdown(harness.store, harness.config, rid)
    assert r"R&D \<\!channel\> \[x\](https://evil.example) \<b\>" in record


def test_plain_reads_links_and_entities() -> None:
    """The console turns golive's links into `label (url)` and entities into characters."""
    text = f"{link('http://n/x?a=1&b=2', 'notes')} {esc('a<b')} <@U0BOB>"
    assert plain(text, {"U0BOB": "bob"}) == "notes (http://n/x?a=1&b=2) a<b @bob"


def test_the_shortened_reason_from_the_config_is_shown_inert() -> None:
    """monitoring.shortened_reason is written into the card, status and announcement: a
    broadcast or a disguised link in it is shown, not acted on."""
    reason = "rehearsal <!channel> <https://evil.example|docs>"
    line = shortened_line(Shortened(soak=timedelta(minutes=1), heightened=None, reason=reason))
    assert "<!channel>" not in line and "<https://evil.example" not in line
    assert "&lt;!channel&gt;" in line
