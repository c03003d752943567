"""The shape of the code: imports flow adapters → commands → engine → checks/store."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).parent.parent
ADAPTERS = "bot/adapters/"
SANDBOX = "bot/sandbox/"
ENTRY = "bot/__main__.py"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def _files(*folders: str) -> list[Path]:
    return [p for f in folders for p in (ROOT / f).rglob("*.py")]


def test_nothing_below_the_adapters_imports_slack() -> None:
    """Only the Slack adapter modules may import slack_bolt or slack_sdk."""
    for path in _files("bot", "commands", "checks"):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith((ADAPTERS, SANDBOX)) or rel == ENTRY:
            continue
        slack = {n for n in _imports(path) if n.split(".")[0] in ("slack_bolt", "slack_sdk")}
        assert not slack, f"{rel} imports {slack}"


def test_engine_does_not_import_commands_or_adapters() -> None:
    """The engine and the checks know nothing of commands, the console or Slack."""
    for path in _files("bot", "checks"):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith((ADAPTERS, SANDBOX)) or rel == ENTRY:
            continue
        bad = {
            n
            for n in _imports(path)
            if n.split(".")[0] == "commands" or n.replace(".", "/").startswith(ADAPTERS)
        }
        assert not bad, f"{rel} imports {bad}"


def test_checks_do_not_import_the_engine() -> None:
    """Checks are plain async functions over an injected client; they do not reach upward."""
    for path in _files("checks"):
        assert not {n for n in _imports(path) if n.split(".")[0] in ("bot", "commands")}, path


def test_state_machine_is_pure() -> None:
    """The runbook's modules do no I/O: no clock, database, network or environment access."""
    for name in ("model", "events", "rules", "transition", "plan", "people"):
        path = ROOT / "bot" / "domain" / f"{name}.py"
        imports = _imports(path)
        assert not imports & {"os", "time", "sqlite3", "sqlite_utils", "httpx", "asyncio"}, name
        source = path.read_text()
        assert "datetime.now" not in source and "environ" not in source, name
