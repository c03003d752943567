"""The shape of the code beyond what the import contracts hold (`lint-imports`, test_lint)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).parent.parent


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_state_machine_is_pure() -> None:
    """The runbook's modules do no I/O: no clock, database, network or environment access."""
    for name in ("model", "events", "rules", "transition", "plan", "people"):
        path = ROOT / "bot" / "domain" / f"{name}.py"
        imports = _imports(path)
        assert not imports & {"os", "time", "sqlite3", "sqlite_utils", "httpx", "asyncio"}, name
        source = path.read_text()
        assert "datetime.now" not in source and "environ" not in source, name
