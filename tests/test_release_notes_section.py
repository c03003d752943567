"""golive's section in the release notes: put into a body people edit without touching their
text, never twice, and with whatever people typed made harmless."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.domain.clock import FakeClock
from bot.engine.effects import Effects
from bot.render.release_notes import MARK_END, MARK_START, BrokenMarkers, neutral, splice
from bot.store import Store
from tests.conftest import CHANNEL, COMMANDER, Harness, make_config

SECTION = f"{MARK_START}\n## Issues and follow-up actions\n\nNone recorded.\n{MARK_END}"
NEWER = f"{MARK_START}\n## Issues and follow-up actions\n\n- one note\n{MARK_END}"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (None, f"{SECTION}\n"),
        ("", f"{SECTION}\n"),
        ("Notes\r\n", f"Notes\r\n\n{SECTION}\n"),
        ("Notes without a newline", f"Notes without a newline\n\n{SECTION}\n"),
    ],
)
def test_the_first_write_appends_after_the_body(body: str | None, expected: str) -> None:
    """The first time, the section goes after the body, which is kept as it was."""
    assert splice(body, SECTION) == expected


def test_a_later_write_replaces_the_section_and_keeps_everything_else() -> None:
    """The section between the markers is replaced; the text before and after, CRLFs and all,
    is unchanged byte for byte."""
    before, after = "# 2.4.0\r\n\r\n- a\r\n\r\n", "\r\n\r\nThanks, team\r\n"
    body = before + SECTION + after
    assert splice(body, NEWER) == before + NEWER + after
    assert splice(splice(body, NEWER), NEWER) == before + NEWER + after


def test_a_second_copy_of_the_section_is_removed() -> None:
    """A section pasted twice (a copied body) is written once."""
    body = f"intro\n{SECTION}\nmiddle\n{SECTION}\nend\n"
    assert splice(body, NEWER) == f"intro\n{NEWER}\nmiddle\n\nend\n"


@pytest.mark.parametrize(
    "body",
    [f"intro\n{MARK_START}\nhalf a section", f"intro\n{MARK_END}\n", f"{SECTION}\n{MARK_START}"],
)
def test_half_a_section_is_refused_rather_than_guessed(body: str) -> None:
    """When someone removed one marker, golive refuses to write instead of eating their text."""
    with pytest.raises(BrokenMarkers):
        splice(body, NEWER)


def test_typed_text_cannot_open_html_break_markers_or_mention() -> None:
    """Markers, HTML, Markdown links, line breaks and @mentions come out inert and bounded;
    Slack's own markup is turned into words."""
    names = {"U0BACKEND": "bob"}
    text = neutral(
        f"{MARK_END} <script>x</script> [a](b) *bold*\n\n# heading @octocat <@U0BACKEND> "
        f"<!channel> <https://x.example/a|the doc>",
        names,
    )
    assert "<" not in text and ">" not in text.replace("&gt;", "")
    assert "&lt;!-- /golive:record --&gt;" in text
    assert "\n" not in text and "\\[a\\](b)" in text and "\\*bold\\*" in text
    assert "@\u200boctocat" in text and " bob " in text and " channel " in text
    assert "the doc (https://x.example/a)" in text
    assert len(neutral("x" * 5000, names)) == 1000


async def test_the_thread_link_is_a_permalink_once_slack_has_the_card(clock: FakeClock) -> None:
    """With the workspace configured and the card delivered to Slack, the section links to
    the thread; before that it names the channel."""
    config = make_config(
        slack={"release_channels": [CHANNEL], "workspace_url": "https://acme.slack.com/"}
    )
    h = Harness(config, clock)
    await h.say(COMMANDER, "/golive start v2.4.0")
    store: Store = h.store
    effects = Effects(config, store)
    record = store.load(h.release().id)
    assert record.card_message is not None
    store.mark_delivered(record.card_message, None, datetime(2026, 11, 20, tzinfo=UTC))
    assert effects.thread_link(record).permalink is None
    store.mark_delivered(record.card_message, "1763627400.000200", datetime.now(UTC))
    assert effects.thread_link(record).permalink == (
        "https://acme.slack.com/archives/C0RELEASE1/p1763627400000200"
    )
    await h.service.close()
