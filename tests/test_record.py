"""The release record and the soak chart: uploaded when a release ends, printed by the CLI."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from bot.adapters.cli import main
from bot.adapters.console import ConsoleTransport
from bot.domain.clock import FakeClock
from tests.conftest import (
    ANNOUNCE,
    BACKEND,
    CHANNEL,
    COMMANDER,
    ON_CALL,
    Harness,
    make_config,
    walk,
)
from tests.test_monitoring_flow import monitored, soak


def _files(h: Harness) -> list[tuple[str, str, dict[str, str]]]:
    return [(m.channel, m.text, m.file or {}) for m in h.messages() if m.kind == "file"]


async def test_completion_uploads_chart_and_record(tmp_path: Path) -> None:
    """Completion posts the soak chart with the announcement and the record to the thread."""
    async with monitored(tmp_path) as h:
        await soak(h)
        h.sandbox.product.set_traffic(error_ratio=0.10)
        await h.tick(2)
        h.sandbox.product.set_traffic(error_ratio=0.005)
        await h.tick(8)
        await walk(h, "criteria")
        await h.say(BACKEND, "/golive note billing-api cold cache after wave 2")
        await h.say(COMMANDER, "/golive followup @bob warm the cache before deploys")
        await h.say(COMMANDER, "/golive complete")
        files = _files(h)
        charts = [f for f in files if f[2]["filename"] == "soak-v2.4.0.png"]
        assert {c[0] for c in charts} == {CHANNEL, ANNOUNCE}
        # Queued without its picture (drawing it would slow the reply to /golive complete);
        # drawn when the outbox delivers it.
        assert "content_b64" not in charts[0][2]
        row = next(m for m in h.messages() if m.file and m.file["filename"] == "soak-v2.4.0.png")
        delivered = await h.runtime.outbox.prepare(row)
        assert delivered.file is not None
        png = base64.b64decode(delivered.file["content_b64"])
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
        (record,) = [f for f in files if f[2]["filename"] == "release-v2.4.0.md"]
        text = record[2]["content"]
        for heading in (
            "# Release v2.4.0 — completed",
            "## Approvals",
            "## Check results",
            "## Waivers",
            "## Alerts",
            "## Monitoring",
            "## Notes and follow-ups",
            "## Timeline",
        ):
            assert heading in text, heading
        assert "errors open" in text and "errors recover" in text
        assert "follow-up by <@U0COMMAND> for <@U0BACKEND>: warm the cache" in text
        assert "| freeze | <@U0COMMAND> | approved via console |" in text
        assert "criterion:5xx" in text and "verify:invoice" in text


async def test_abort_and_rollback_attach_the_record(harness: Harness) -> None:
    """An aborted release leaves its record in the thread too."""
    await harness.say(COMMANDER, "/golive start v2.4.0")
    await harness.say(COMMANDER, "/golive abort vendor outage")
    (record,) = [f for f in _files(harness) if f[2]["filename"] == "release-v2.4.0.md"]
    assert record[0] == CHANNEL
    assert "- Reason (aborted): vendor outage" in record[2]["content"]
    await harness.say(COMMANDER, "/golive start v2.4.1")
    await walk(harness, "wave-1")
    await harness.say(ON_CALL, "/golive rollback errors on wave 1")
    assert any(f[2]["filename"] == "release-v2.4.1.md" for f in _files(harness))


async def test_console_saves_files(tmp_path: Path, clock: FakeClock) -> None:
    """The console writes attached files to disk and says where."""
    printed: list[str] = []
    h = Harness(make_config(), clock, ":memory:")
    h.runtime.outbox.transport = ConsoleTransport(printed.append, {}, tmp_path / "files")
    await h.say(COMMANDER, "/golive start v2.4.0")
    await h.say(COMMANDER, "/golive abort changed our mind")
    saved = tmp_path / "files" / "release-v2.4.0.md"
    assert saved.read_text().startswith("# Release v2.4.0 — aborted")
    assert any(f"saved to {saved}" in line for line in printed)


async def test_report_and_history_commands(
    tmp_path: Path, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    """`golive report` prints the record of a release and `golive history` lists releases."""
    database = tmp_path / "golive.db"
    config_file = tmp_path / "golive.yml"
    config_file.write_text(
        "database: " + str(database) + "\n"
        "slack: {release_channels: [C0RELEASE1]}\n"
        "roles: {on_call: U0ONCALL1, backend: U0BACKEND, frontend: U0FRONTEN}\n"
        "services: [{name: api, tier: backend}]\n"
    )
    h = Harness(make_config(database=str(database)), clock, database)
    await h.say(COMMANDER, "/golive start v2.4.0")
    await h.say(COMMANDER, "/golive abort not today")
    h.store.close()
    assert main(["report", "v2.4.0", "--config", str(config_file)]) == 0
    assert capsys.readouterr().out.startswith("# Release v2.4.0 — aborted")
    assert main(["history", "--config", str(config_file)]) == 0
    assert "#1 v2.4.0 — aborted" in capsys.readouterr().out
    assert main(["report", "v9.9.9", "--config", str(config_file)]) == 1
    assert "no release called v9.9.9" in capsys.readouterr().err
