"""One error catalogue (issue 9, item 1): every code is defined once in ledger/domain/codes.py,
no code is written as a string anywhere else in ledger/ or projections/, every error class takes
its code from the catalogue, and the README's "Error codes" table is the catalogue."""

from __future__ import annotations

import ast
import re
from http import HTTPStatus
from pathlib import Path
from types import ModuleType

import pytest

import ledger.keystore
import ledger.sealing
import projections.db
import projections.freshness
import projections.parallel
import projections.skip
from ledger.domain import codes
from ledger.domain.codes import BY_CODE, CATALOGUE, ErrorCode
from ledger.domain.errors import LedgerError, RuleViolation, StorageUnavailable

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE_FILE = ROOT / "ledger" / "domain" / "codes.py"
SOURCE_PACKAGES = ("ledger", "projections")
ERROR_MODULES = (
    ledger.keystore,
    ledger.sealing,
    projections.db,
    projections.freshness,
    projections.parallel,
    projections.skip,
)
UPPER_SNAKE = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*")
TABLE_ROW = re.compile(r"^\| `([A-Z0-9_]+)` \| (.*?) \| (\d{3}) \| (.*) \|$")


def source_files() -> list[Path]:
    return [
        path
        for package in SOURCE_PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if path != CATALOGUE_FILE
    ]


def where(path: Path, node: ast.AST) -> str:
    return f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', '?')}"


def catalogue_entry_named(node: ast.expr) -> ErrorCode | None:
    """The entry an argument such as ``codes.NOT_PAID`` names, if it names one."""
    if (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "codes"
    ):
        entry = getattr(codes, node.attr, None)
        return entry if isinstance(entry, ErrorCode) else None
    return None


def ast_targets(node: ast.Assign | ast.AnnAssign) -> list[ast.expr]:
    return node.targets if isinstance(node, ast.Assign) else [node.target]


def readme_table() -> list[tuple[str, str, int, str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Error codes\n", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        if found := TABLE_ROW.match(line):
            code, clause, status, meaning = found.groups()
            rows.append((code, "" if clause == "—" else clause, int(status), meaning))
    return rows


def test_every_constant_is_named_after_its_code_and_defined_once() -> None:
    named = {name: value for name, value in vars(codes).items() if isinstance(value, ErrorCode)}
    assert all(name == entry.code for name, entry in named.items())
    assert len(CATALOGUE) == len(named) == len(BY_CODE)
    assert all(UPPER_SNAKE.fullmatch(entry.code) for entry in CATALOGUE)


def test_every_entry_has_one_sentence_of_meaning_and_an_error_status() -> None:
    for entry in CATALOGUE:
        assert entry.meaning.endswith(".") and "\n" not in entry.meaning, entry.code
        assert 400 <= entry.status < 600, entry.code
        assert "|" not in entry.meaning + entry.clause, f"{entry.code} breaks the README table"


def test_the_statuses_the_api_will_give_follow_the_documented_mapping() -> None:
    expected = {
        "CONFLICT": HTTPStatus.CONFLICT,
        "NOT_FOUND": HTTPStatus.NOT_FOUND,
        "COMMAND_ID_REUSED": HTTPStatus.UNPROCESSABLE_ENTITY,
        "INVALID_COMMAND": HTTPStatus.UNPROCESSABLE_ENTITY,
        "INVALID_JSON": HTTPStatus.BAD_REQUEST,
        "STORAGE_UNAVAILABLE": HTTPStatus.SERVICE_UNAVAILABLE,
        # The API issue: a read-your-writes wait that ran out is 409 with the position.
        "PROJECTION_BEHIND": HTTPStatus.CONFLICT,
        "IDEMPOTENCY_KEY_REQUIRED": HTTPStatus.BAD_REQUEST,
        "UNAUTHENTICATED": HTTPStatus.UNAUTHORIZED,
        "FORBIDDEN": HTTPStatus.FORBIDDEN,
        "COMMAND_IN_PROGRESS": HTTPStatus.CONFLICT,
        "PRECONDITION_FAILED": HTTPStatus.PRECONDITION_FAILED,
        "REQUEST_TOO_LARGE": HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
        "UNSUPPORTED_MEDIA_TYPE": HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
    }
    assert {code: BY_CODE[code].status for code in expected} == expected
    rules = [entry for entry in CATALOGUE if entry.clause]
    assert {entry.status for entry in rules} == {
        HTTPStatus.CONFLICT,
        HTTPStatus.UNPROCESSABLE_ENTITY,
    }


def test_the_readme_error_code_table_is_the_catalogue() -> None:
    catalogue = [(e.code, e.clause, int(e.status), e.meaning) for e in CATALOGUE]
    table = readme_table()
    missing = sorted(set(catalogue) - set(table))
    stale = sorted(set(table) - set(catalogue))
    assert not missing and not stale, (
        f"README 'Error codes' table differs from ledger/domain/codes.py; "
        f"rows to add or fix: {missing}; rows to remove: {stale}"
    )
    assert table == catalogue, "the README lists the codes in the catalogue's order"


def test_no_code_is_written_as_a_string_outside_the_catalogue() -> None:
    literals = []
    for path in source_files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and node.value in BY_CODE:
                literals.append(f"{where(path, node)} {node.value!r}")
            elif isinstance(node, ast.ClassDef):
                literals += [
                    f"{where(path, line)} a class's code = … (set catalogued = codes.X)"
                    for line in node.body
                    if isinstance(line, ast.Assign | ast.AnnAssign)
                    and isinstance(line.value, ast.Constant)
                    and "code" in {getattr(t, "id", "") for t in ast_targets(line)}
                ]
    assert not literals, "use the catalogue entry (codes.X) instead:\n" + "\n".join(literals)


def test_a_code_cited_per_raise_is_given_its_clause_at_every_raise() -> None:
    wrong = []
    for path in source_files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            named = [e for arg in node.args if (e := catalogue_entry_named(arg)) is not None]
            has_clause = any(keyword.arg == "clause" for keyword in node.keywords)
            wrong += [
                f"{where(path, node)} {entry.code}"
                for entry in named
                if entry.per_raise != has_clause
            ]
    assert not wrong, "per-raise codes need clause=…, the others take the catalogue's:\n" + (
        "\n".join(wrong)
    )


def test_the_raise_sites_name_catalogue_entries() -> None:
    """The scan above would pass on a source that raises nothing: make sure it sees raises."""
    raised = set()
    for path in source_files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                raised |= {e.code for a in node.args if (e := catalogue_entry_named(a))}
    assert len(raised) >= 60
    assert {"NOT_PAID", "ORDER_CLOSED", "RETURN_ID_REUSED", "PAYMENT_ID_REUSED"} <= raised


def test_a_refusal_carries_its_entry_and_keeps_the_shape_of_its_dict() -> None:
    refusal = RuleViolation(codes.NOT_PAID, "order A-1: not paid")
    assert refusal.entry is codes.NOT_PAID
    assert refusal.as_dict() == {
        "code": "NOT_PAID",
        "clause": "3.1.3",
        "message": "order A-1: not paid",
    }
    cited = RuleViolation(codes.ORDER_CLOSED, "order A-1 was closed", clause="3.1.3")
    assert (cited.code, cited.clause) == ("ORDER_CLOSED", "3.1.3")


def all_error_classes() -> set[type[LedgerError]]:
    found: set[type[LedgerError]] = set()
    pending: list[type[LedgerError]] = [LedgerError]
    while pending:
        cls = pending.pop()
        found.add(cls)
        pending.extend(cls.__subclasses__())
    return found


@pytest.mark.parametrize("module", ERROR_MODULES, ids=lambda m: m.__name__)
def test_the_error_classes_of_each_module_take_their_code_from_the_catalogue(
    module: ModuleType,
) -> None:
    classes = [cls for cls in all_error_classes() if cls.__module__ == module.__name__]
    assert classes
    for cls in classes:
        assert cls.catalogued in CATALOGUE and cls.catalogued is not codes.LEDGER_ERROR


def test_an_error_class_answers_with_its_entry() -> None:
    error = StorageUnavailable("database unavailable or failing: gone")
    assert error.as_dict() == {
        "code": "STORAGE_UNAVAILABLE",
        "clause": "",
        "message": "database unavailable or failing: gone",
    }
