"""`golive demo`: the embedded default works end to end, unattended and typed at."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).parent.parent


def test_demo_auto_plays_a_whole_release(tmp_path: Path) -> None:
    """`golive demo --auto` walks every phase, pages on a spike, recovers, completes: exit 0."""
    result = subprocess.run(
        [sys.executable, "-m", "bot", "demo", "--auto", "--speed", "4", "--dir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    out = result.stdout
    assert result.returncode == 0, out[-3000:] + result.stderr[-2000:]
    assert "Every phase did what it should" in out
    for expected in (
        "alice> /golive start v2.4.0",
        "🧊 *Merge freeze*",
        "⏰ @bob *Migrations* has waited",
        "[direct message to @bob] ⏰ Release v2.4.0: *Migrations* waits for you",
        "⏫ @bob *Migrations* has waited",
        "🚨 @carol *5xx breach* during the soak of v2.4.0",
        "✅ *5xx recovered*",
        "🎉 Release v2.4.0 is complete",
        "👋 Monitoring of v2.4.0 ended",
    ):
        assert expected in out, expected
    assert "✗" not in out
    assert (tmp_path / "golive-files" / "release-v2.4.0.md").exists()
    report = subprocess.run(
        [sys.executable, "-m", "bot", "report", "v2.4.0", "--config",
         str(tmp_path / "golive.yml")],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert report.returncode == 0 and report.stdout.startswith("# Release v2.4.0 — completed")


def test_interactive_demo_takes_typed_commands(tmp_path: Path) -> None:
    """The interactive demo shows the guide, runs typed commands and sandbox switches."""
    typed = (
        "/golive start v2.4.0\n/golive status\n/fault\n/deploys fail\n/as bob\n"
        "/golive approve\n/quit\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "bot", "demo", "--dir", str(tmp_path)],
        cwd=ROOT, input=typed, capture_output=True, text=True, timeout=120,
    )
    out = result.stdout
    assert result.returncode == 0, out[-3000:] + result.stderr[-2000:]
    assert "You are @alice, the release commander" in out
    assert "[only @alice sees this] Release v2.4.0 started." in out
    assert "Pre-release baseline — passed" in out
    assert "(sandbox faults: " in out and "rbac_hole" in out
    assert "(sandbox: deploys from now on fail)" in out
    assert "(you are now @bob)" in out
    assert "[only @bob sees this] nothing is waiting on you" in out
