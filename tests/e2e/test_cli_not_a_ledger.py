"""``ledger …`` pointed at a database that is not a ledger (issue 9, a newcomer's second look):
a reader refuses an empty SQLite file, another program's SQLite database, a directory, and a
PostgreSQL database without the events table alike, ``STORAGE_UNAVAILABLE`` exit 1, and
leaves it exactly as it was; a writer makes an empty file a ledger but never adds its tables
to another program's database."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import psycopg
import pytest

from cli.exits import Exit
from tests.e2e.test_cli_newcomer import one_line_error, prepare, run

READERS = [
    "projections status",
    "projections check",
    "projections rebuild",
    "projections skip",
    "order show",
    "keys list",
    "keys revoke",
]
WRITERS = ["demo", "import", "projections run", "keys create"]


def fingerprint(path: Path) -> tuple[str, int]:
    """The file's bytes (as a digest) and its mode."""
    return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mode


def foreign_database(path: Path) -> Path:
    """Another program's SQLite database: a table of its own, a row in it."""
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE contacts (name text)")
        conn.execute("INSERT INTO contacts VALUES ('someone')")
    sqlite3.connect(path).close()
    path.chmod(0o644)
    return path


def tables_in(path: Path) -> list[str]:
    with sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return sorted(str(name) for (name,) in rows)


@pytest.mark.parametrize("kind", ["empty", "foreign"])
@pytest.mark.parametrize("name", READERS)
def test_a_reader_refuses_a_sqlite_file_without_a_ledger_and_leaves_it_as_it_was(
    name: str, kind: str, tmp_path: Path
) -> None:
    path = tmp_path / "other.db"
    if kind == "empty":
        path.touch()
    else:
        foreign_database(path)
    args = prepare(tmp_path, name)
    before, listing = fingerprint(path), sorted(p.name for p in tmp_path.iterdir())
    done = run(tmp_path, [*args, "--database-url", f"sqlite:///{path}"])
    assert done.returncode == Exit.PROBLEM, done.stderr
    line = one_line_error(done, "STORAGE_UNAVAILABLE")
    assert f"no ledger at SQLite {path}: it has no stored_events table" in line
    assert fingerprint(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == listing, "nothing made beside it"


@pytest.mark.postgres
@pytest.mark.parametrize("name", READERS)
def test_a_reader_refuses_a_postgresql_database_without_a_ledger_alike(
    name: str, tmp_path: Path, pg_url: str
) -> None:
    done = run(tmp_path, [*prepare(tmp_path, name), "--database-url", pg_url])
    assert done.returncode == Exit.PROBLEM, done.stderr
    line = one_line_error(done, "STORAGE_UNAVAILABLE")
    assert "no ledger at PostgreSQL " in line and "it has no ledger_events table" in line
    with psycopg.connect(pg_url) as conn:
        tables = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        assert tables.fetchall() == [], "no table made"


@pytest.mark.parametrize("name", WRITERS)
def test_a_writer_refuses_another_programs_sqlite_database_and_leaves_it_as_it_was(
    name: str, tmp_path: Path
) -> None:
    path = foreign_database(tmp_path / "other.db")
    args = prepare(tmp_path, name)
    before, listing = fingerprint(path), sorted(p.name for p in tmp_path.iterdir())
    done = run(tmp_path, [*args, "--database-url", f"sqlite:///{path}"])
    assert done.returncode == Exit.PROBLEM, done.stderr
    line = one_line_error(done, "STORAGE_UNAVAILABLE")
    assert f"{path} is another program's SQLite database" in line
    assert fingerprint(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == listing, "nothing made beside it"


@pytest.mark.parametrize("name", WRITERS)
def test_a_writer_makes_an_empty_sqlite_file_a_ledger(name: str, tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    path.touch()
    done = run(tmp_path, [*prepare(tmp_path, name), "--database-url", f"sqlite:///{path}"])
    assert done.returncode == Exit.OK, done.stderr
    assert "stored_events" in tables_in(path)
    status = run(tmp_path, ["projections", "status", "--database-url", f"sqlite:///{path}"])
    assert status.returncode == Exit.OK, status.stderr


@pytest.mark.parametrize("name", [*READERS, *WRITERS])
def test_a_directory_as_the_sqlite_database_is_storage_unavailable_exit_1(
    name: str, tmp_path: Path
) -> None:
    """As the README says of "a file that is not a database", not IO_ERROR exit 2."""
    (tmp_path / "a.db").mkdir()
    done = run(tmp_path, [*prepare(tmp_path, name), "--database-url", "sqlite:///a.db"])
    assert done.returncode == Exit.PROBLEM, done.stderr
    assert "a.db is a directory" in one_line_error(done, "STORAGE_UNAVAILABLE")
    assert list((tmp_path / "a.db").iterdir()) == []
