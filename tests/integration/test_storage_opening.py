"""Opening storage (ledger/storage.py): writers make a missing SQLite database, readers make
nothing and say why they cannot read; no lock file is left beside the database."""

from __future__ import annotations

import stat
import uuid
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from ledger.application import open_ledger
from ledger.domain.errors import StorageUnavailable
from projections.engine import open_runtime
from projections.queries import ReadModels

SECRET = "secret-pw"

# Every way of opening storage for reading, by name.
READERS: dict[str, Callable[[str], Any]] = {
    "ledger": lambda url: open_ledger(url, create=False),
    "runtime": lambda url: open_runtime(url, create=False),
    "read models": ReadModels.open,
}


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize("reader", READERS)
def test_a_reader_on_a_missing_sqlite_file_makes_nothing(reader: str, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nonexistent' / 'dir' / 'x.db'}"
    with pytest.raises(StorageUnavailable) as caught:
        READERS[reader](url)
    assert "no ledger at" in caught.value.message
    assert files_under(tmp_path) == []


@pytest.mark.parametrize("create", [True, False])
@pytest.mark.parametrize("opener", ["ledger", "runtime"])
def test_a_sqlite_url_naming_a_text_file_is_a_typed_error(
    opener: str, create: bool, tmp_path: Path
) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not a database, but a long enough line of text\n" * 20)
    before = text.read_bytes()
    url = f"sqlite:///{text}"
    with pytest.raises(StorageUnavailable) as caught:
        if opener == "ledger":
            open_ledger(url, create=create)
        else:
            open_runtime(url, create=create)
    assert "is not a SQLite database" in caught.value.message
    assert text.read_bytes() == before
    assert files_under(tmp_path) == ["notes.txt"]


def other_programs_database(path: Path) -> bytes:
    """A SQLite database with a table of another program's; its bytes."""
    import sqlite3

    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("CREATE TABLE notes (body text)")
        conn.execute("INSERT INTO notes VALUES ('keep me')")
    return path.read_bytes()


@pytest.mark.parametrize("kind", ["empty", "foreign"])
@pytest.mark.parametrize("reader", READERS)
def test_a_reader_refuses_a_sqlite_file_without_the_events_table_and_writes_nothing(
    reader: str, kind: str, tmp_path: Path
) -> None:
    path = tmp_path / "x.db"
    before = other_programs_database(path) if kind == "foreign" else b""
    path.write_bytes(before)
    with pytest.raises(StorageUnavailable) as caught:
        READERS[reader](f"sqlite:///{path}")
    assert caught.value.message.startswith(f"no ledger at SQLite {path}: it has no stored_events")
    assert path.read_bytes() == before
    assert files_under(tmp_path) == ["x.db"]


@pytest.mark.parametrize("opener", ["ledger", "runtime"])
def test_a_writer_refuses_another_programs_sqlite_database(opener: str, tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    before = other_programs_database(path)
    path.chmod(0o644)
    with pytest.raises(StorageUnavailable) as caught:
        (open_ledger if opener == "ledger" else open_runtime)(f"sqlite:///{path}")
    assert "another program's SQLite database" in caught.value.message
    assert path.read_bytes() == before
    assert stat.S_IMODE(path.stat().st_mode) == 0o644, "not even tightened"
    assert files_under(tmp_path) == ["x.db"]


def test_a_writer_makes_an_empty_file_a_ledger_that_readers_then_open(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    path.touch()
    open_ledger(f"sqlite:///{path}").close()
    for reader in READERS.values():
        reader(f"sqlite:///{path}").close()


def test_a_directory_as_the_sqlite_database_is_storage_unavailable(tmp_path: Path) -> None:
    (tmp_path / "x.db").mkdir()
    for create in (True, False):
        with pytest.raises(StorageUnavailable, match="is a directory"):
            open_ledger(f"sqlite:///{tmp_path / 'x.db'}", create=create)
    assert files_under(tmp_path) == ["x.db"]


def test_a_writer_makes_the_missing_directories_and_the_database(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "ledger.db"
    open_ledger(f"sqlite:///{path}").close()
    assert path.is_file()


def test_opening_leaves_no_lock_file_beside_the_sqlite_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    open_ledger(url).close()
    open_runtime(url).close()
    ReadModels.open(url).close()
    open_ledger(url, create=False).close()
    assert [name for name in files_under(tmp_path) if "lock" in name] == []
    assert "ledger.db" in files_under(tmp_path)


def test_readers_open_an_existing_ledger(backend: str) -> None:
    open_ledger(backend).close()
    for reader in READERS.values():
        reader(backend).close()


def _with(pg_url: str, **parts: str) -> str:
    return urlunsplit(urlsplit(pg_url)._replace(**parts))


def tables_in(pg_url: str) -> list[str]:
    import psycopg

    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
        ).fetchall()
    return [str(row[0]) for row in rows]


@pytest.mark.postgres
@pytest.mark.parametrize("reader", READERS)
def test_a_reader_on_a_postgres_database_without_a_ledger_makes_nothing(
    reader: str, pg_url: str
) -> None:
    with pytest.raises(StorageUnavailable) as caught:
        READERS[reader](pg_url)
    assert caught.value.message.startswith("no ledger at PostgreSQL ")
    assert tables_in(pg_url) == []


@pytest.mark.postgres
@pytest.mark.parametrize("reader", READERS)
def test_a_reader_on_a_missing_postgres_database_is_a_typed_error(reader: str, pg_url: str) -> None:
    missing = _with(pg_url, path=f"/no_such_ledger_{uuid.uuid4().hex[:8]}")
    with pytest.raises(StorageUnavailable) as caught:
        READERS[reader](missing)
    assert "does not exist" in caught.value.message


@pytest.mark.parametrize("reader", READERS)
def test_a_reader_on_a_wrong_port_is_a_typed_error_without_the_password(reader: str) -> None:
    wrong_port = f"postgresql://postgres:{SECRET}@127.0.0.1:1/ledger"
    with pytest.raises(StorageUnavailable) as caught:
        READERS[reader](wrong_port)
    assert SECRET not in caught.value.message
    assert "127.0.0.1" in caught.value.message
