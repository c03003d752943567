"""The docs stay true: the README names every subcommand, CLI command and config key, and CI
runs the README's test command."""

from __future__ import annotations

import re
import typing
from pathlib import Path

from pydantic import BaseModel

from bot.adapters.cli import build_parser
from bot.domain.config import Config
from commands import COMMANDS

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()


def _section(title: str) -> str:
    start = README.index(f"## {title}")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else None]


def _key_paths(model: type[BaseModel], prefix: str = "") -> list[str]:
    paths: list[str] = []
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        annotation = field.annotation
        if typing.get_origin(annotation) is dict:
            _, inner = typing.get_args(annotation)
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                paths += _key_paths(inner, f"{path}.<step>.")  # `actions`, keyed by step
                continue
        if typing.get_origin(annotation) is list:
            (inner,) = typing.get_args(annotation)
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                paths += _key_paths(inner, f"{path}[].")
                continue
        nested = [
            a
            for a in (typing.get_args(annotation) or (annotation,))
            if isinstance(a, type) and issubclass(a, BaseModel)
        ]
        if nested:
            paths += _key_paths(nested[0], f"{path}.")
        else:
            paths.append(path)
    return paths


def test_every_subcommand_is_in_the_command_table() -> None:
    """Each /golive subcommand has a row in the README's command table."""
    table = _section("Commands")
    for name in COMMANDS:
        assert f"| `/golive {name}" in table, name


def test_every_cli_command_is_documented() -> None:
    """Each `golive` CLI command appears in the README."""
    parser = build_parser()
    choices = next(a for a in parser._actions if a.dest == "command").choices
    assert choices is not None
    for name in choices:
        assert f"`golive {name}" in README, name


def test_config_reference_names_every_key() -> None:
    """Every key of the config models has a row in the configuration reference, and no row
    names a key that does not exist."""
    table = _section("Configuration reference")
    documented = set(re.findall(r"^\| `([a-z0-9_.\[\]<>]+)` \|", table, flags=re.M))
    assert documented == set(_key_paths(Config))


def test_ci_runs_the_readme_test_command() -> None:
    """.ci/run ends with the same test command the README gives."""
    setup = _section("Set-up: two commands")
    commands = re.search(r"```sh\n(.*?)```", setup, flags=re.S)
    assert commands is not None
    install, test = commands.group(1).strip().splitlines()
    assert "golive demo --auto" in install and "pip install -e '.[dev]'" in install
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()
    assert ci[-1] == test == "python3 -m pytest"
    assert "apt-get install -y --no-install-recommends prometheus" in "\n".join(ci)
