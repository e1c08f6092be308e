"""The layers import downwards only (docs/design.md, Layers): the CLI stands above the ledger
and the read side, and the demo's modules import each other one way."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


def test_nothing_in_the_ledger_or_the_read_side_imports_the_cli() -> None:
    upward = {
        f"{path.relative_to(ROOT)}: {module}"
        for package in ("ledger", "projections")
        for path in (ROOT / package).rglob("*.py")
        for module in imported_modules(path)
        if module == "cli" or module.startswith("cli.")
    }
    assert upward == set()


def test_the_demos_people_do_not_import_its_traffic() -> None:
    assert not {
        m for m in imported_modules(ROOT / "ledger" / "demo" / "people.py") if "traffic" in m
    }
