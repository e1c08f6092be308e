"""The repository explains itself (issue 9, item 7): every error code the source raises is in
docs/rules.md, and the README and docs/ point only at files a clone has (no ``../shared``)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "docs" / "rules.md"
SOURCE_PACKAGES = ("ledger", "projections")
# The issue counts about sixty codes; fewer found means the scan no longer sees how codes are
# written (say, after they moved into a catalogue) and must be taught, not that codes went away.
MIN_CODES_FOUND = 60
CODE = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*")
LINK = re.compile(r"\]\(([^)\s]+)\)")
MARKDOWN_NAME = re.compile(r"[\w.-]+\.md\b")
OUTSIDE_DIRS = {".git", ".venv", "var", "node_modules"}


def _is_code(value: object) -> bool:
    return isinstance(value, str) and len(value) > 3 and CODE.fullmatch(value) is not None


def _first_str(call: ast.Call) -> object:
    """The first positional argument if it is a string literal, else the ``code=`` keyword's."""
    if call.args and isinstance(call.args[0], ast.Constant):
        return call.args[0].value
    for keyword in call.keywords:
        if keyword.arg == "code" and isinstance(keyword.value, ast.Constant):
            return keyword.value.value
    return None


def _codes_in(tree: ast.AST) -> set[str]:
    """Codes written the ways the source writes them: ``RuleViolation("CODE", …)``, a
    ``code = "CODE"`` class attribute, and a constant named after itself (``CODE = "CODE"``,
    or ``CODE = Something("CODE", …)`` as a catalogue entry would be)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if name == "RuleViolation" and _is_code(_first_str(node)):
                found.add(str(_first_str(node)))
        elif isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            value = node.value
            literal: object = value.value if isinstance(value, ast.Constant) else None
            if isinstance(value, ast.Call):
                literal = _first_str(value)
            for target in targets:
                if not isinstance(target, ast.Name) or not _is_code(literal):
                    continue
                if target.id == "code" or target.id == literal:
                    found.add(str(literal))
    return found


def source_codes() -> dict[str, str]:
    """Every error code in the production packages, with a file that uses it."""
    codes: dict[str, str] = {}
    for package in SOURCE_PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for code in _codes_in(ast.parse(path.read_text(encoding="utf-8"))):
                codes.setdefault(code, str(path.relative_to(ROOT)))
    return codes


def doc_pages() -> list[Path]:
    """The pages a reader of a clone starts from: the READMEs and docs/."""
    return [
        ROOT / "README.md",
        ROOT / "projections" / "README.md",
        *sorted((ROOT / "docs").glob("*.md")),
    ]


def repository_markdown_names() -> set[str]:
    return {
        path.name
        for path in ROOT.rglob("*.md")
        if not OUTSIDE_DIRS & set(path.relative_to(ROOT).parts)
    }


def test_the_scan_finds_the_codes_the_source_raises() -> None:
    codes = source_codes()
    assert len(codes) >= MIN_CODES_FOUND, sorted(codes)
    assert {"NOT_PAID", "INVALID_COMMAND", "CONFLICT", "PROJECTION_BEHIND"} <= set(codes)


def test_every_error_code_in_the_source_is_documented_in_docs_rules() -> None:
    documented = RULES.read_text(encoding="utf-8")
    missing = {
        code: where
        for code, where in source_codes().items()
        if re.search(rf"(?<![A-Z0-9_]){code}(?![A-Z0-9_])", documented) is None
    }
    assert not missing, f"add these codes (clause, when, file) to docs/rules.md: {missing}"


@pytest.mark.parametrize("page", doc_pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_a_page_points_at_nothing_outside_the_repository(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    assert "../shared" not in text and "/work/shared" not in text
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue  # a web address or an anchor on the same page
        resolved = (page.parent / target.split("#", 1)[0]).resolve()
        assert resolved.is_relative_to(ROOT), f"{page.name} links outside the repository: {target}"
        assert resolved.exists(), f"{page.name} links to a missing file: {target}"


@pytest.mark.parametrize("page", doc_pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_a_page_names_only_markdown_files_the_repository_has(page: Path) -> None:
    known = repository_markdown_names()
    named = set(MARKDOWN_NAME.findall(page.read_text(encoding="utf-8")))
    assert named <= known, f"{page.name} names pages a clone lacks: {sorted(named - known)}"
