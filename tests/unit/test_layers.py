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


def imports_of(packages: tuple[str, ...], above: tuple[str, ...]) -> set[str]:
    """Imports from ``packages`` of any module of the packages ``above`` them."""
    return {
        f"{path.relative_to(ROOT)}: {module}"
        for package in packages
        for path in (ROOT / package).rglob("*.py")
        for module in imported_modules(path)
        if module.split(".")[0] in above
    }


def test_nothing_in_the_ledger_or_the_read_side_imports_an_entrypoint() -> None:
    assert imports_of(("ledger", "projections"), ("cli", "api")) == set()


def test_the_http_api_does_not_import_the_cli() -> None:
    assert imports_of(("api",), ("cli",)) == set()


def test_the_demos_people_do_not_import_its_traffic() -> None:
    assert not {
        m for m in imported_modules(ROOT / "ledger" / "demo" / "people.py") if "traffic" in m
    }
