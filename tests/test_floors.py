"""The runbook's floors (§4.6: a soak of at least 15 minutes; §7: at least an hour of heightened
monitoring) are part of the runbook: below them a config is refused, unless it says why — and
then every status, the completion announcement and the record say so near the top."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.adapters.cli import main
from bot.domain.clock import FakeClock
from bot.domain.config import validate_config
from bot.domain.errors import ConfigError
from tests.conftest import COMMANDER, Harness, config_dict, walk

WHY = "staging rehearsal: the whole runbook in ten minutes"
SHORT = {"soak": {"duration": "1m", "interval": "30s"}}


def _write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "golive.yml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_a_one_minute_soak_is_refused_with_its_field_path() -> None:
    """Below the floors, validation names each field, the floor and the way out."""
    data = config_dict(monitoring={**SHORT, "heightened": {"duration": "2m", "interval": "1m"}})
    with pytest.raises(ConfigError) as caught:
        validate_config(data)
    problems = caught.value.problems
    assert problems[0].startswith(
        "monitoring.soak.duration: 1m is shorter than the runbook's 15m (§4.6"
    )
    assert problems[1].startswith(
        "monitoring.heightened.duration: 2m is shorter than the runbook's 1h (§7"
    )
    assert all("monitoring.shortened_reason" in p for p in problems)


def test_the_floors_themselves_and_a_reason_are_accepted() -> None:
    """15 minutes and an hour pass without a word; below them, a reason makes it acceptable and
    is kept as what was shortened, to what, and why."""
    exact = validate_config(config_dict(monitoring={"soak": {"duration": "15m"}}))
    assert exact.monitoring.shortened() is None
    with_reason = validate_config(config_dict(monitoring={**SHORT, "shortened_reason": WHY}))
    shortened = with_reason.monitoring.shortened()
    assert shortened is not None and shortened.reason == WHY
    assert shortened.soak is not None and shortened.soak.total_seconds() == 60
    assert shortened.heightened is None
    with pytest.raises(ConfigError, match="shortened_reason: an empty reason"):
        validate_config(config_dict(monitoring={**SHORT, "shortened_reason": "   "}))


def test_check_config_and_serve_refuse_a_short_soak(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`golive check-config` and `golive serve` both exit 1 naming the field; with a reason,
    check-config accepts the file."""
    path = _write(tmp_path, config_dict(monitoring=SHORT))
    assert main(["check-config", str(path)]) == 1
    assert "monitoring.soak.duration: 1m is shorter than" in capsys.readouterr().out
    assert main(["serve", "--config", str(path), "--port", "0"]) == 1
    assert "monitoring.soak.duration: 1m is shorter than" in capsys.readouterr().err
    path = _write(tmp_path, config_dict(monitoring={**SHORT, "shortened_reason": WHY}))
    assert main(["check-config", str(path)]) == 0
    assert f"note: ⚠️ Runbook shortened: soak 1m (the runbook says at least 15m). Why: {WHY}" in (
        capsys.readouterr().out
    )


async def test_a_shortened_release_says_so_everywhere(clock: FakeClock) -> None:
    """Card, /golive status, completion announcement and record name the shortened soak, its
    length, the floor and the reason, right after their first line."""
    config = validate_config(config_dict(monitoring={**SHORT, "shortened_reason": WHY}))
    h = Harness(config, clock)
    expected = f"⚠️ Runbook shortened: soak 1m (the runbook says at least 15m). Why: {WHY}"
    await h.say(COMMANDER, "/golive start v2.4.0")
    await h.settle()
    card = [m for m in h.messages() if m.kind in ("card", "update") and m.step_key is None]
    assert card and all(m.text.splitlines()[1] == expected for m in card)
    assert card[-1].blocks is not None and expected in str(card[-1].blocks[1])
    status = await h.reply(COMMANDER, "/golive status")
    assert status.splitlines()[1] == expected
    await walk(h, "criteria", soak_minutes=1)
    await h.say(COMMANDER, "/golive complete")
    announcement = next(m.text for m in h.messages() if m.text.startswith("🎉"))
    assert announcement.splitlines()[1] == expected
    record = next(m.file for m in h.messages() if m.kind == "file" and m.file)
    assert record["content"].splitlines()[2] == f"> {expected}"
    await h.service.close()


async def test_the_record_keeps_what_the_release_ran_with(clock: FakeClock, tmp_path: Path) -> None:
    """The shortening is stored with the release: a later config does not rewrite history."""
    database = tmp_path / "golive.db"
    short = config_dict(database=str(database), monitoring={**SHORT, "shortened_reason": WHY})
    h = Harness(validate_config(short), clock, database)
    await h.say(COMMANDER, "/golive start v2.4.0")
    await h.say(COMMANDER, "/golive abort changed our mind")
    h.store.close()
    later = Harness(validate_config(config_dict(database=str(database))), clock, database)
    assert "Runbook shortened: soak 1m" in await later.reply(COMMANDER, "/golive status")
    await later.service.close()
