"""Runbook §2 and §7 with the release notes kept as a GitHub release: "finalized" means
published, and golive writes the issues and follow-up actions into the release's notes at
completion and again when heightened monitoring ends — against the sandbox's GitHub over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from bot.domain.clock import FakeClock
from bot.domain.config import validate_config
from bot.domain.model import ReleaseStatus, StepStatus
from bot.engine.records import record_markdown
from bot.engine.writeback import WRITE_BACK_KIND
from bot.render.release_notes import MARK_END, MARK_START
from bot.sandbox import GitHubRelease, Sandbox
from bot.sandbox.sandbox import REPOSITORY
from tests.conftest import BACKEND, COMMANDER, ON_CALL, Harness, walk
from tests.test_monitoring_flow import Monitored, monitored_config
from tests.test_preconditions import results

# A body as GitHub's web editor saves it (CRLF), with text that must survive byte for byte.
BEFORE = "## What's new in 2.4.0\r\n\r\n- Billing: Xero and QuickBooks CSV\r\n- Faster search\r\n"


def github_config(sb: Sandbox, workdir: Path, **extra: Any) -> dict[str, Any]:
    """The monitored sandbox config with the notes as the GitHub release of the version."""
    data = monitored_config(sb, workdir)
    data["preconditions"]["release_notes"] = {"github_release": True}
    data["slack"]["workspace_url"] = "https://acme.slack.com"
    data.update(extra)
    return data


@asynccontextmanager
async def on_github(tmp_path: Path) -> AsyncIterator[Monitored]:
    """A monitored harness whose release notes live in the sandbox GitHub's releases."""
    clock = FakeClock()
    async with Sandbox.start(clock=clock.now, traffic=False, history=3600) as sb:
        config = validate_config(github_config(sb, tmp_path / "repo"))
        harness = Monitored(config, clock, ":memory:", secrets=sb.tokens)
        harness.sandbox = sb
        yield harness
        await harness.service.close()


def notes_release(h: Monitored, tag: str = "v2.4.0") -> GitHubRelease:
    """The sandbox GitHub's release of `tag`."""
    return next(r for r in h.sandbox.github.repo(REPOSITORY).releases if r.tag_name == tag)


async def ready(h: Monitored, *typed: tuple[str, str]) -> None:
    """Start, type the lines given (user, line), soak cleanly and walk to the criteria."""
    await h.say(COMMANDER, "/golive start v2.4.0")
    for user, line in typed:
        await h.say(user, line)
    await walk(h, "portal")
    await h.tick(10)
    await walk(h, "criteria")


async def complete(h: Monitored, *typed: tuple[str, str]) -> None:
    """`ready`, then complete and deliver what that queued."""
    await ready(h, *typed)
    await h.say(COMMANDER, "/golive complete")
    await h.settle()


def _without_notes_status(record: str) -> str:
    """A record without its line on where golive's section in the release notes stands."""
    return "\n".join(line for line in record.splitlines() if "golive's section" not in line)


def section_of(body: str) -> str:
    """golive's section (markers included), asserting it is there exactly once."""
    assert body.count(MARK_START) == 1 and body.count(MARK_END) == 1, body
    start = body.index(MARK_START)
    return body[start : body.index(MARK_END) + len(MARK_END)]


async def test_a_draft_notes_release_blocks_then_passes_once_published(tmp_path: Path) -> None:
    """A draft (which GitHub's tags endpoint does not return) blocks the notes step as a draft;
    once published, a retry passes and the commander is asked to approve the notes, with a link
    to the release."""
    async with on_github(tmp_path) as h:
        draft = h.sandbox.github.add_release(REPOSITORY, "v2.5.0", body=BEFORE, draft=True)
        await h.say(COMMANDER, "/golive start v2.5.0")
        notes = h.step("notes")
        assert notes.status is StepStatus.BLOCKED and notes.failing == ("release-notes",)
        verdict = results(h, "notes")["release-notes"]
        assert verdict.status == "fail"
        assert "is still a draft" in verdict.summary
        assert verdict.evidence["release_id"] == draft.id
        assert any("is still a draft" in m.text for m in h.messages())
        h.sandbox.github.publish_release(REPOSITORY, draft.id)
        await h.say(COMMANDER, "/golive retry notes")
        assert h.step("notes").status is StepStatus.AWAITING
        verdict = results(h, "notes")["release-notes"]
        assert verdict.status == "pass" and "is published" in verdict.summary
        request = h.approval_message("notes").text
        assert f"https://github.com/{REPOSITORY}/releases/tag/v2.5.0" in request
        await h.react(COMMANDER, "notes")
        assert h.step("notes").status is StepStatus.DONE


async def test_no_release_for_the_version_blocks(tmp_path: Path) -> None:
    """Without any release of the tag (draft or published), the notes step blocks saying so."""
    async with on_github(tmp_path) as h:
        await h.say(COMMANDER, "/golive start v2.6.0")
        assert h.step("notes").status is StepStatus.BLOCKED
        summary = results(h, "notes")["release-notes"].summary
        assert summary.startswith("there is no GitHub release for v2.6.0 in acme/platform")


async def test_the_notes_get_the_section_at_completion_and_after_heightened_monitoring(
    tmp_path: Path,
) -> None:
    """At completion the body holds the notes and follow-ups typed in the thread; after
    heightened monitoring it holds that hour's alert and a late note; the team's text outside
    the markers is unchanged byte for byte, and the section is there once."""
    async with on_github(tmp_path) as h:
        release = notes_release(h)
        release.body = BEFORE
        await complete(
            h,
            (BACKEND, "/golive note billing-api cold cache after wave 2"),
            (COMMANDER, "/golive followup @bob warm the cache before deploys"),
        )
        body = release.body or ""
        assert body.startswith(BEFORE + "\n")
        first = section_of(body)
        assert body == f"{BEFORE}\n{first}\n"
        assert "## Issues and follow-up actions" in first
        assert "bob: billing-api cold cache after wave 2" in first
        assert "warm the cache before deploys — owner: bob (raised by alice" in first
        assert "written again, final, when heightened monitoring ends" in first
        # The console gives messages no Slack timestamp: the section names the channel.
        assert "the release card in Slack channel C0RELEASE1" in first
        # The team edits the notes while golive watches: their text must survive as typed.
        edited_before = BEFORE + "\r\nKnown issue: exports are slow on Mondays.\r\n\r\n"
        edited_after = "\r\n\r\n_Thanks to everyone who tested._\r\n"
        release.body = edited_before + first + edited_after
        h.sandbox.product.set_traffic(error_ratio=0.10)
        await h.tick(2)
        h.sandbox.product.set_traffic(error_ratio=0.005)
        await h.tick(1)
        await h.say(ON_CALL, "/golive note 5xx blip after completion, cache warm-up")
        await h.tick(4)
        assert h.runtime.monitor.periods() == {}
        final_body = release.body or ""
        final = section_of(final_body)
        assert final_body == edited_before + final + edited_after
        assert final != first
        assert "Final: written by golive when heightened monitoring of v2.4.0 ended" in final
        assert "carol: 5xx blip after completion, cache warm\\-up" not in final
        assert "carol: 5xx blip after completion, cache warm-up" in final
        alert = next(line for line in final.splitlines() if "breach during heightened" in line)
        assert "5xx" in alert and "vs baseline" in alert and "**recovered at" in alert
        assert "bob: billing-api cold cache after wave 2" in final
        assert len(h.sandbox.github.release_patches) == 2


async def test_what_people_type_cannot_break_the_markers_or_mention_anyone(
    tmp_path: Path,
) -> None:
    """A note carrying golive's end marker, HTML and an @mention goes in neutralised: the
    section is still whole, once, and no HTML or GitHub mention comes from the note."""
    async with on_github(tmp_path) as h:
        notes_release(h).body = BEFORE
        hostile = "<!-- /golive:record --> <img src=x onerror=alert(1)> ping @octocat [x](y)"
        await complete(h, (ON_CALL, f"/golive note {hostile}"))
        body = notes_release(h).body or ""
        section = section_of(body)
        line = next(x for x in section.splitlines() if "ping" in x)
        assert "&lt;!-- /golive:record --&gt; &lt;img src=x onerror=alert(1)&gt;" in line
        assert "@\u200boctocat" in line and "\\[x\\](y)" in line
        assert body.startswith(BEFORE)


async def test_a_failing_write_is_retried_and_never_blocks_completion(tmp_path: Path) -> None:
    """GitHub answering 500 to the write: the release completes and announces at once, the
    record says the section is on its way, and the outbox writes it once GitHub is back."""
    async with on_github(tmp_path) as h:
        release = notes_release(h)
        release.body = BEFORE
        await ready(h)
        h.sandbox.github.set_fault("500", scope=REPOSITORY)
        await h.say(COMMANDER, "/golive complete")
        await h.settle()
        assert h.release().status is ReleaseStatus.COMPLETED
        assert any(m.text.startswith("🎉") for m in h.messages())
        assert release.body == BEFORE
        (row,) = [m for m in h.messages() if m.kind == WRITE_BACK_KIND]
        assert row.status == "pending" and row.attempts >= 1 and "500" in (row.error or "")
        record = record_markdown(h.store, h.config, h.release().id)
        assert "is being written into the GitHub release of v2.4.0 after" in record
        h.sandbox.github.clear_faults()
        h.clock.advance(60)
        await h.settle()
        (row,) = [m for m in h.messages() if m.kind == WRITE_BACK_KIND]
        assert row.status == "delivered"
        assert (release.body or "").startswith(BEFORE) and MARK_START in (release.body or "")
        record = record_markdown(h.store, h.config, h.release().id)
        assert "is written into the GitHub release of v2.4.0 at https://github.com/" in record


async def test_heightened_monitoring_ends_with_the_final_record_and_a_closed_card(
    tmp_path: Path,
) -> None:
    """When heightened monitoring ends, the final record (with that hour's alerts and the notes
    added after completion) goes to the thread, the card says the release is closed, and
    `golive report` prints the same record; late notes are acknowledged in the thread."""
    async with on_github(tmp_path) as h:
        await complete(h)
        late = await h.say(BACKEND, "/golive followup @carol check the pool size tomorrow")
        assert any("Added after completion: it goes into the final record" in line for line in late)
        h.sandbox.product.set_traffic(error_ratio=0.10)
        await h.tick(2)
        h.sandbox.product.set_traffic(error_ratio=0.005)
        await h.tick(5)
        assert h.runtime.monitor.periods() == {}
        rid = h.release().id
        (final,) = [
            m.file
            for m in h.messages()
            if m.kind == "file" and m.file and m.file["filename"] == "release-v2.4.0-final.md"
        ]
        text = final["content"]
        assert text.splitlines()[2].startswith("> ⚠️ Runbook shortened: soak 5m")
        assert "> 🔒 Closed at" in text
        assert "check the pool size tomorrow" in text
        assert "errors open" in text and "errors recover" in text
        report = record_markdown(h.store, h.config, rid)
        # The same record, but for where the final section stands: queued then, written now.
        assert "(final) is being written into the GitHub release" in text
        assert "(final) is written into the GitHub release of v2.4.0 at https://" in report
        assert _without_notes_status(text) == _without_notes_status(report)
        card = [m for m in h.messages() if m.kind == "update" and m.step_key is None][-1]
        assert "🔒 Closed at" in card.text
        status = await h.reply(COMMANDER, "/golive status")
        assert "🔒 Closed at" in status
        after = await h.say(COMMANDER, "/golive note retro on Friday")
        assert any("Added after the release closed" in line for line in after)
        await h.settle()
        assert "retro on Friday" in (notes_release(h).body or "")


async def test_notes_at_a_url_say_they_could_not_be_written_back(tmp_path: Path) -> None:
    """With `url:` notes, the page check stays and the record says golive could not write the
    issues and follow-up actions into them."""
    clock = FakeClock()
    async with Sandbox.start(clock=clock.now, traffic=False, history=3600) as sb:
        config = validate_config(monitored_config(sb, tmp_path / "repo"))
        h = Monitored(config, clock, ":memory:", secrets=sb.tokens)
        h.sandbox = sb
        await complete(h)
        assert results(h, "notes")["release-notes"].summary.startswith(
            "the release notes for v2.4.0 answer at"
        )
        record = record_markdown(h.store, h.config, h.release().id)
        assert "could not be written back into the notes" in record
        assert not [m for m in h.messages() if m.kind == WRITE_BACK_KIND]
        assert sb.github.release_patches == []
        await h.service.close()


async def test_an_hour_watched_by_hand_also_ends_and_closes_the_release(
    harness: Harness,
) -> None:
    """Without Prometheus, on-call watches by hand; when the hour is over the release closes
    all the same, with the final record in the thread."""
    h = harness
    await h.say(COMMANDER, "/golive start v2.4.0")
    await walk(h, "criteria")
    await h.say(COMMANDER, "/golive complete")
    rid = h.release().id
    assert h.runtime.monitor.periods() == {rid: ("heightened", 60.0)}
    h.clock.advance(3599)
    await h.runtime.monitor.tick(rid)
    assert h.store.load(rid).closed_at is None
    h.clock.advance(1)
    await h.runtime.monitor.tick(rid)
    await h.settle()
    assert h.store.load(rid).closed_at is not None and h.runtime.monitor.periods() == {}
    texts = [m.text for m in h.messages()]
    assert any(t.startswith("👋 Heightened monitoring of v2.4.0 ended after 1h") for t in texts)
    assert any(m.file and m.file["filename"] == "release-v2.4.0-final.md" for m in h.messages())


async def test_a_section_someone_half_deleted_is_not_guessed_at(tmp_path: Path) -> None:
    """If someone deletes golive's end marker, the final write is refused rather than eating
    their text; the record says why and how to mend it."""
    async with on_github(tmp_path) as h:
        release = notes_release(h)
        release.body = BEFORE
        await complete(h)
        written = release.body or ""
        cut = written.replace(MARK_END, "") + "\r\nMore notes by hand.\r\n"
        release.body = cut
        await h.tick(7)
        assert release.body == cut
        rows = [m for m in h.messages() if m.kind == WRITE_BACK_KIND]
        assert [r.status for r in rows] == ["delivered", "failed"]
        record = record_markdown(h.store, h.config, h.release().id)
        assert "could not be written into the GitHub release of v2.4.0" in record
        assert "start marker without its end marker; golive left the body as it is" in record
