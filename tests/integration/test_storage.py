"""Storage chosen by one setting, and its failures as one typed error (DESIGN.md, Errors)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ledger.application import open_ledger
from ledger.domain.errors import StorageUnavailable

CLOSED_PORT_URL = "postgresql://postgres:secret-pw@127.0.0.1:1/ledger"
PROCESSES_AT_ONCE = 6


def test_an_unreachable_database_is_a_typed_error_without_the_password() -> None:
    with pytest.raises(StorageUnavailable) as caught:
        open_ledger(CLOSED_PORT_URL)
    assert caught.value.code == "STORAGE_UNAVAILABLE"
    assert "secret-pw" not in caught.value.message
    assert "127.0.0.1" in caught.value.message


def test_the_cli_reports_an_unreachable_database_in_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ledger.cli", "demo", "--orders", "40"],
        cwd=tmp_path,
        env={"LEDGER_DATABASE_URL": CLOSED_PORT_URL, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert "ledger: STORAGE_UNAVAILABLE:" in done.stderr
    assert "Traceback" not in done.stderr and "secret-pw" not in done.stderr


def test_unset_url_means_a_sqlite_file_in_var(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    ledger = open_ledger(None)
    try:
        assert ledger.head_position() == 0
    finally:
        ledger.close()
    assert (tmp_path / "var" / "ledger.db").is_file()


def test_processes_starting_together_on_a_fresh_database_all_open_it(backend: str) -> None:
    """Workers and CLIs often start at once: table creation must not race (a lost race
    surfaced as an IntegrityError on the library's migration row, or on pg_type)."""
    code = "import sys; from ledger.cli import main; sys.exit(main(['projections', 'status']))"
    env = {"LEDGER_DATABASE_URL": backend, "PATH": "/usr/bin:/bin"}
    starts = [
        subprocess.Popen(
            [sys.executable, "-c", code],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCESSES_AT_ONCE)
    ]
    failures = []
    for started in starts:
        _, stderr = started.communicate(timeout=120)
        if started.returncode != 0:
            failures.append(stderr[-400:])
    assert failures == []
