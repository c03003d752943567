"""golive.yml: the contract is accepted, broken files are rejected with field paths."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.adapters.cli import main
from bot.domain.config import Secrets, format_duration, load_config, parse_duration, parse_percent
from bot.domain.errors import ConfigError
from tests.conftest import config_dict

ROOT = Path(__file__).parent.parent


def _key_paths(data: Any, prefix: str = "") -> set[str]:
    paths: set[str] = set()
    if isinstance(data, dict):
        for key, value in data.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            paths.add(path)
            paths |= _key_paths(value, path)
    elif isinstance(data, list):
        for item in data:
            paths |= _key_paths(item, prefix + "[]")
    return paths


def test_contract_example_is_accepted(data_dir: Path) -> None:
    """Every key of the configuration contract is accepted with its meaning."""
    config = load_config(data_dir / "golive.contract.yml")
    assert config.monitoring.soak.duration == timedelta(minutes=15)
    assert config.monitoring.min_error_increase == pytest.approx(0.005)
    assert config.monitoring.slo_p95 == timedelta(milliseconds=400)
    assert config.preconditions.ci is not None
    assert config.preconditions.ci.required_checks == [
        "python-services",
        "web-portal",
        "smoke-core-flow",
    ]
    assert config.verification is not None
    assert config.verification.paths.invoice_csv == "/billing/invoices/{id}/csv"
    assert config.services[0].deploy_wave == 1 and config.services[2].tier == "frontend"
    assert config.slack.approve_reaction == "white_check_mark"


def test_shipped_example_has_every_contract_key(data_dir: Path) -> None:
    """The project's own documented example names every key of the contract and validates."""
    contract = yaml.safe_load((data_dir / "golive.contract.yml").read_text())
    ours = yaml.safe_load((ROOT / "golive.example.yml").read_text())
    missing = _key_paths(contract) - _key_paths(ours)
    assert not missing
    load_config(ROOT / "golive.example.yml")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("15m", 900), ("1h", 3600), ("400ms", 0.4), ("1h30m", 5400), ("1.5s", 1.5)],
)
def test_durations(text: str, seconds: float) -> None:
    """Durations are written with units and read exactly."""
    assert parse_duration(text).total_seconds() == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["15 minutes", "15", "", "m", "-5m", "0s", "5x"])
def test_bad_durations(text: str) -> None:
    """Anything that is not a positive number with a unit is refused."""
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_duration_round_trip() -> None:
    """The short form shown to people reads back to the same value."""
    for text in ("30s", "15m", "1h", "400ms", "1h30m"):
        assert format_duration(parse_duration(text)) == text


@pytest.mark.parametrize(("value", "fraction"), [("0.5%", 0.005), ("12%", 0.12), (0.005, 0.005)])
def test_percentages(value: object, fraction: float) -> None:
    """Percentages read as fractions."""
    assert parse_percent(value) == pytest.approx(fraction)


@pytest.mark.parametrize("value", ["lots", "150%", True, "0.5", -0.1])
def test_bad_percentages(value: object) -> None:
    """Non-percentages and out-of-range values are refused."""
    with pytest.raises(ValueError, match="percentage"):
        parse_percent(value)


def _problems(data: Any) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        _validate(data)
    return caught.value.problems


def _validate(data: Any) -> None:
    from bot.domain.config import validate_config

    validate_config(data)


def test_every_problem_is_listed_with_its_path() -> None:
    """A broken file gets one line per problem, each starting with its field path."""
    data = config_dict(
        services=[
            {"name": "api", "tier": "middle"},
            {"name": "web", "tier": "frontend", "wave": 2},
            {"name": "api", "tier": "backend"},
        ],
        monitoring={
            "soak": {"duration": "15 minutes", "interval": "30s"},
            "bogus": 1,
            "min_error_increase": "lots",
            "breach_ticks": 0,
        },
        timezone="Mars/Olympus",
    )
    data["slack"] = {"release_channels": ["release"], "approve_reaction": ":ok hand:"}
    data["roles"] = {"on_call": "carol"}
    data["preconditions"] = {"ci": {"repository": "acme", "token_env": "GITHUB TOKEN"}}
    problems = _problems(data)
    expected_starts = [
        "monitoring.soak.duration: not a duration: '15 minutes'",
        "monitoring.bogus: unknown key",
        "monitoring.min_error_increase: not a percentage: 'lots'",
        "monitoring.breach_ticks: ",
        "timezone: unknown timezone: 'Mars/Olympus'",
        "slack.release_channels[0]: not a Slack channel id",
        "slack.approve_reaction: not a reaction name",
        "roles.on_call: not a Slack user id",
        "services[0].tier: ",
        "services[1]: only backend services deploy in waves",
        "preconditions.ci.repository: not an owner/name repository",
        "preconditions.ci.token_env: not an environment variable name",
        "preconditions.ci.required_checks: required",
    ]
    for start in expected_starts:
        assert any(p.startswith(start) for p in problems), (start, problems)


def test_duplicate_service_names_are_refused() -> None:
    """Two services with one name would make waves ambiguous."""
    data = config_dict(services=[{"name": "api", "tier": "backend"}] * 2)
    assert _problems(data) == ["services: service names repeat: api"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "the file is empty"),
        ("slack: [unclosed", "not valid YAML at line 1"),
        ("- a\n- b\n", "expected a mapping of keys, got list"),
    ],
)
def test_unreadable_files(tmp_path: Path, content: str, message: str) -> None:
    """Empty, malformed and non-mapping files get a sentence, not a traceback."""
    path = tmp_path / "golive.yml"
    path.write_text(content)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert message in caught.value.problems[0]


def test_missing_file(tmp_path: Path) -> None:
    """A missing file is named."""
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "nope.yml")


def test_check_config_cli_exit_codes(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`golive check-config` exits 0 on the contract and 1 with every problem on a broken file."""
    assert main(["check-config", str(data_dir / "golive.contract.yml")]) == 0
    assert ": ok (3 services" in capsys.readouterr().out
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "slack: {release_channels: [C0RELEASE1]}\n"
        "services: [{name: api, tier: backend}]\n"
        "monitoring: {soak: {duration: 15 minutes, interval: 30s}, window: soon}\n"
    )
    assert main(["check-config", str(broken)]) == 1
    out = capsys.readouterr().out
    assert "2 problem(s)" in out
    assert "monitoring.soak.duration: not a duration: '15 minutes'" in out
    assert "monitoring.window: not a duration: 'soon'" in out
    assert "Traceback" not in out


def test_secrets_come_from_the_environment_by_name(data_dir: Path) -> None:
    """The config names variables; missing ones are reported with the field that needs them."""
    config = load_config(data_dir / "golive.contract.yml")
    secrets = Secrets({"GITHUB_TOKEN": "ghp_x", "PAGERDUTY_API_TOKEN": ""})
    missing = dict(secrets.missing(config))
    assert "GITHUB_TOKEN" not in missing
    assert missing["PAGERDUTY_API_TOKEN"] == "preconditions.incidents.token_env"
    assert missing["GOLIVE_FINANCE_TOKEN"] == "verification.finance_token_env"
    assert "ghp_x" not in repr(secrets)


def test_query_templates_keep_promql_braces(data_dir: Path) -> None:
    """Only {window} is replaced; PromQL label braces stay as they are."""
    config = load_config(data_dir / "golive.contract.yml")
    query = config.monitoring.render(config.monitoring.errors_query, timedelta(minutes=5))
    assert query == 'sum(increase(http_requests_total{status=~"5.."}[5m]))'


def test_registry_login_keys_come_in_pairs_and_are_required_secrets() -> None:
    """preconditions.rollback.username_env without password_env is refused; with both, both
    variables are secrets golive needs."""
    from bot.domain.config import validate_config

    rollback = {"registry_url": "https://registry.example.com", "username_env": "REGISTRY_USER"}
    data = config_dict(preconditions={"rollback": rollback})
    assert _problems(data) == [
        "preconditions.rollback: username_env and password_env go together: set both or neither"
    ]
    rollback["password_env"] = "REGISTRY_PASSWORD"
    config = validate_config(config_dict(preconditions={"rollback": rollback}))
    assert dict(Secrets({}).missing(config)) == {
        "REGISTRY_USER": "preconditions.rollback.username_env",
        "REGISTRY_PASSWORD": "preconditions.rollback.password_env",
    }


def test_health_expectations_need_a_health_url_and_one_body_rule() -> None:
    """expect_* keys describe a health_url's answer: refused without one, and expect_json with
    expect_text is refused; a valid declaration is kept as written."""
    from bot.domain.config import validate_config

    service = {"name": "api", "tier": "backend", "expect_status": 204}
    assert _problems(config_dict(services=[service])) == [
        "services[0]: expect_status describe the health_url's answer; set health_url"
    ]
    service.update(
        health_url="https://api.internal/healthz", expect_json={"ok": True}, expect_text="ok"
    )
    assert _problems(config_dict(services=[service])) == [
        "services[0]: declare expect_json or expect_text, not both"
    ]
    del service["expect_text"]
    config = validate_config(config_dict(services=[service]))
    assert (config.services[0].expect_status, config.services[0].expect_json) == (204, {"ok": True})


def test_keys_the_sequential_test_replaced_are_accepted_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """`breach_ticks` and `significance` still validate; check-config and start-up say they are
    ignored and what replaced them; a config without them hears nothing."""
    from bot.domain.config import deprecations, validate_config
    from bot.engine.runtime import Runtime

    old = config_dict(monitoring={"breach_ticks": 3, "significance": 0.05})
    config = validate_config(old)
    warnings = deprecations(config)
    assert len(warnings) == 2
    assert warnings[0].startswith("monitoring.breach_ticks is deprecated and ignored")
    assert "replaced by monitoring.false_page_rate" in warnings[1]
    assert deprecations(validate_config(config_dict())) == []
    path = tmp_path / "old.yml"
    path.write_text(yaml.safe_dump(old))
    assert main(["check-config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "warning: monitoring.breach_ticks is deprecated" in out
    assert "warning: monitoring.significance is deprecated" in out
    config = validate_config({**old, "database": ":memory:"})
    with caplog.at_level("WARNING", logger="bot.runtime"):
        Runtime(config, Secrets({}), transport=lambda *a: None)  # type: ignore[arg-type]
    assert sum("is deprecated and ignored" in r.getMessage() for r in caplog.records) == 2


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("latency_bucket_query", "sum(x[{window}])", "needs both {le} and {window}"),
        ("false_page_rate", "0%", "false_page_rate must lie above 0%"),
        ("tolerance", 2.5, "less than 2"),
        ("min_conclusive", "lots", "not a percentage"),
    ],
)
def test_new_monitoring_keys_are_validated(key: str, value: Any, problem: str) -> None:
    """The sequential test's keys refuse nonsense with their field path."""
    problems = _problems(config_dict(monitoring={key: value}))
    assert any(p.startswith(f"monitoring.{key}: ") and problem in p for p in problems), problems
