"""The database URL as a user meets it: every read-only command on a database that is not
there, not a database, or malformed gives one typed line and the documented exit code, and
makes nothing."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

LEDGER = ["-c", "import sys; from cli import main; sys.exit(main())"]
READ_ONLY = [
    ["projections", "status"],
    ["projections", "status", "--json"],
    ["projections", "check"],
    ["projections", "rebuild"],
    ["projections", "skip", "orders", "1"],
]
EXIT_PROBLEM, EXIT_USAGE = 1, 2
SECRET = "secret-pw"


def ledger_cli(cwd: Path, url: str, args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *LEDGER, *args],
        cwd=cwd,
        env={**os.environ, "LEDGER_DATABASE_URL": url},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def one_typed_line(done: subprocess.CompletedProcess[str], code: str) -> str:
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"ledger: {code}: "), done.stderr
    assert "Traceback" not in done.stderr and SECRET not in done.stderr
    return lines[0]


@pytest.mark.parametrize("args", READ_ONLY, ids=" ".join)
def test_a_read_only_command_on_a_missing_sqlite_file_creates_nothing(
    args: list[str], tmp_path: Path
) -> None:
    done = ledger_cli(tmp_path, "sqlite:///nonexistent/dir/x.db", args)
    assert done.returncode == EXIT_PROBLEM
    assert "no ledger at nonexistent/dir/x.db" in one_typed_line(done, "STORAGE_UNAVAILABLE")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args", READ_ONLY, ids=" ".join)
def test_a_sqlite_url_naming_a_text_file_is_one_typed_line(args: list[str], tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello\n")
    done = ledger_cli(tmp_path, "sqlite:///notes.txt", args)
    assert done.returncode == EXIT_PROBLEM
    assert "not a SQLite database" in one_typed_line(done, "STORAGE_UNAVAILABLE")
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


@pytest.mark.parametrize(
    "url",
    ["sqlite://", "mysql://localhost/x", f"postgresql://u:{SECRET}@127.0.0.1:99999/x"],
)
def test_a_malformed_url_is_a_usage_error_naming_the_setting(url: str, tmp_path: Path) -> None:
    done = ledger_cli(tmp_path, url, ["projections", "status"])
    assert done.returncode == EXIT_USAGE
    assert "LEDGER_DATABASE_URL" in one_typed_line(done, "INVALID_COMMAND")


@pytest.mark.parametrize("args", READ_ONLY, ids=" ".join)
def test_a_wrong_postgres_port_is_one_typed_line(args: list[str], tmp_path: Path) -> None:
    done = ledger_cli(tmp_path, f"postgresql://postgres:{SECRET}@127.0.0.1:1/ledger", args)
    assert done.returncode == EXIT_PROBLEM
    one_typed_line(done, "STORAGE_UNAVAILABLE")


@pytest.mark.postgres
def test_status_on_a_missing_postgres_database_is_one_typed_line(
    pg_url: str, tmp_path: Path
) -> None:
    missing = urlunsplit(urlsplit(pg_url)._replace(path=f"/no_such_{uuid.uuid4().hex[:8]}"))
    done = ledger_cli(tmp_path, missing, ["projections", "status"])
    assert done.returncode == EXIT_PROBLEM
    assert "does not exist" in one_typed_line(done, "STORAGE_UNAVAILABLE")


def test_projections_run_makes_a_missing_sqlite_ledger(tmp_path: Path) -> None:
    done = ledger_cli(tmp_path, "sqlite:///var/new.db", ["projections", "run", "--once"])
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "var" / "new.db").is_file()
    assert not [p for p in (tmp_path / "var").iterdir() if "lock" in p.name]
    assert ledger_cli(tmp_path, "sqlite:///var/new.db", ["projections", "status"]).returncode == 0
