"""The repository explains itself (issue 9, item 7): every error code of the catalogue
(ledger/domain/codes.py) is in docs/rules.md, and the README and docs/ point only at files a
clone has (no ``../shared``)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ledger.domain.codes import BY_CODE, CATALOGUE

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "docs" / "rules.md"
# The issue counts about sixty codes; the catalogue holds them all (tests/unit/test_codes.py
# proves no code is written anywhere else).
MIN_CODES = 60
LINK = re.compile(r"\]\(([^)\s]+)\)")
MARKDOWN_NAME = re.compile(r"[\w.-]+\.md\b")
OUTSIDE_DIRS = {".git", ".venv", "var", "node_modules"}


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


def test_the_catalogue_holds_the_codes_the_source_raises() -> None:
    assert len(CATALOGUE) >= MIN_CODES, sorted(BY_CODE)
    assert {"NOT_PAID", "INVALID_COMMAND", "CONFLICT", "PROJECTION_BEHIND"} <= set(BY_CODE)


def test_every_error_code_in_the_catalogue_is_documented_in_docs_rules() -> None:
    documented = RULES.read_text(encoding="utf-8")
    missing = sorted(
        entry.code
        for entry in CATALOGUE
        if re.search(rf"(?<![A-Z0-9_]){entry.code}(?![A-Z0-9_])", documented) is None
    )
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
