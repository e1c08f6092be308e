"""The key store's master key and residues (issue 11, item 6) on both backends: keys wrapped
under a master key file, its rotation (also killed mid-way and resumed), the errors a missing
or wrong master key gives, the WAL a reader's snapshot keeps, and the cache's lifetime."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ledger.application import open_ledger
from ledger.domain.errors import LedgerError
from ledger.key_admin import rotate_master
from ledger.key_wrapping import (
    MASTER_KEY_SETTING,
    FileKeyWrapper,
    MasterKeyError,
    read_keyring,
    write_new_master_key,
)
from ledger.keystore import KeyStore, PostgresKeyStore, ShredIncomplete, SqliteKeyStore
from ledger.storage_url import StorageUrl
from tests.fix_app import opened_ledger

AT = datetime(2026, 3, 3, tzinfo=UTC)
SUBJECTS = [f"acct-{n:05d}" for n in range(1_000)]


@pytest.fixture
def master(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A master key file of this test's own, named by the setting."""
    path = tmp_path / "keys" / "master.key"
    write_new_master_key(path)
    monkeypatch.setenv(MASTER_KEY_SETTING, str(path))
    return path


def open_store(url: str, path: Path) -> KeyStore:
    where = StorageUrl.of(url)
    wrapper = FileKeyWrapper(path, create=False)
    if where.sqlite_path is not None:
        return SqliteKeyStore(where.sqlite_path, wrapper=wrapper)
    return PostgresKeyStore(where, wrapper=wrapper)


@pytest.fixture
def store(backend: str, master: Path) -> Iterator[KeyStore]:
    with open_store(backend, master) as opened:
        yield opened


def test_the_master_key_file_is_made_0600_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "home" / "mall-ledger" / "master.key"
    monkeypatch.delenv(MASTER_KEY_SETTING)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "home"))
    with opened_ledger(f"sqlite:///{tmp_path / 'ledger.db'}"):
        assert path.stat().st_mode & 0o777 == 0o600
        assert path.parent.stat().st_mode & 0o777 == 0o700
        assert len(read_keyring(path).keys) == 1
    assert f"created a new master key at {path}" in caplog.text


def test_a_rotation_rewraps_every_key_under_a_new_version_and_keeps_the_old_one(
    store: KeyStore, master: Path
) -> None:
    keys = store.keys_for(SUBJECTS[:50])
    old = read_keyring(master).current
    done = rotate_master(store)
    assert done.rewrapped == 50 and not done.resumed and done.older_ids == (old,)
    ring = read_keyring(master)
    assert ring.current == done.master_key_id != old and set(ring.keys) == {old, ring.current}
    assert store.count_wrapped_by(old) == 0
    store.forget_cache()
    assert store.keys_for(SUBJECTS[:50]) == keys
    store.close()
    with open_store_again(store, master) as fresh:  # another process, the new file only
        assert fresh.keys_for(SUBJECTS[:50]) == keys


def open_store_again(store: KeyStore, master: Path) -> KeyStore:
    wrapper = FileKeyWrapper(master, create=False)
    if isinstance(store, SqliteKeyStore):
        return SqliteKeyStore(store.path, wrapper=wrapper)
    assert isinstance(store, PostgresKeyStore)
    return PostgresKeyStore(store._url, wrapper=wrapper)


ROTATE_SLOWLY = """
import sys, time
from ledger.application import open_ledger
from tests.fix_app import opened_ledger
from ledger.key_admin import rotate_master
ledger = open_ledger(sys.argv[1], create=False)
def batch(n):
    print("batch", n, flush=True)
    time.sleep(0.5)
rotate_master(ledger.keystore, batch)
"""


def test_a_rotation_killed_mid_way_leaves_every_key_readable_and_resumes(
    backend: str, master: Path
) -> None:
    with opened_ledger(backend) as ledger:
        keys = ledger.keystore.keys_for(SUBJECTS)
    process = subprocess.Popen(
        [sys.executable, "-c", ROTATE_SLOWLY, backend],
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    assert process.stdout is not None
    assert process.stdout.readline().startswith("batch")  # one batch re-wrapped, not all
    process.send_signal(signal.SIGKILL)
    process.wait()
    ring = read_keyring(master)
    assert len(ring.keys) == 2  # the new version is in, the old one kept
    with opened_ledger(backend) as ledger:  # reads both versions meanwhile
        assert ledger.keystore.keys_for(SUBJECTS) == keys
        assert 0 < ledger.keystore.count_wrapped_by(ring.current) < len(SUBJECTS)
        done = rotate_master(ledger.keystore)
        assert done.resumed and 0 < done.rewrapped < len(SUBJECTS)
        assert done.master_key_id == ring.current  # finished, no third version
    assert read_keyring(master).keys == ring.keys
    with opened_ledger(backend) as ledger:
        assert ledger.keystore.keys_for(SUBJECTS) == keys


def test_a_lost_master_key_file_is_a_clear_error_not_a_new_key(
    backend: str, master: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with opened_ledger(backend) as ledger:
        ledger.keystore.key_for("acct-1")
    lost = tmp_path / "elsewhere" / "master.key"
    monkeypatch.setenv(MASTER_KEY_SETTING, str(lost))
    with pytest.raises(MasterKeyError) as caught:
        open_ledger(backend)
    assert caught.value.code == "MASTER_KEY_ERROR" and str(lost) in caught.value.message
    assert not lost.exists()
    write_new_master_key(lost)  # a master key, but not the one that wrapped the keys
    with pytest.raises(MasterKeyError):
        open_ledger(backend)
    lost.write_bytes(b"short")
    with pytest.raises(MasterKeyError) as caught:
        open_ledger(backend)
    assert "32 bytes" in caught.value.message


def test_sqlite_destroy_reports_a_wal_a_reader_keeps(tmp_path: Path, master: Path) -> None:
    path = tmp_path / "keys.db"
    wrapper = FileKeyWrapper(master, create=False)
    with SqliteKeyStore(path, wrapper=wrapper, shred_wait_s=0.3) as store:
        store.key_for("acct-1")
        with closing(sqlite3.connect(path)) as reader:
            reader.execute("BEGIN")
            reader.execute("SELECT count(*) FROM ledger_keys").fetchone()  # holds a snapshot
            with pytest.raises(ShredIncomplete) as caught:
                store.destroy("acct-1", AT)
            assert caught.value.code == "SHRED_INCOMPLETE"
            reader.rollback()
        assert store.is_destroyed("acct-1")  # the destroy itself stands
        store.compact()  # the reader gone: the WAL is truncated
        assert Path(f"{path}-wal").stat().st_size == 0


def test_another_processes_destroy_is_honoured_within_the_cache_lifetime(
    backend: str, master: Path
) -> None:
    where = StorageUrl.of(backend)
    wrapper = FileKeyWrapper(master, create=False)
    if where.sqlite_path is not None:
        mine: KeyStore = SqliteKeyStore(where.sqlite_path, wrapper=wrapper, cache_ttl_s=0.0)
    else:
        mine = PostgresKeyStore(where, wrapper=wrapper, cache_ttl_s=0.0)
    with mine, open_store(backend, master) as theirs:
        assert mine.key_for("acct-5") is not None
        assert theirs.destroy("acct-5", AT)
        assert mine.key_for("acct-5") is None  # its entry had expired: storage was asked


def test_a_first_format_key_table_is_migrated_and_its_tokens_still_open(
    tmp_path: Path, master: Path
) -> None:
    path = tmp_path / "old.db"
    raw = os.urandom(32)
    with closing(sqlite3.connect(path)) as conn:
        conn.execute(
            "CREATE TABLE ledger_subject_keys (subject_id TEXT PRIMARY KEY, key BLOB NULL,"
            " created_at TEXT NOT NULL, destroyed_at TEXT NULL)"
        )
        conn.execute("INSERT INTO ledger_subject_keys VALUES ('acct-1', ?, 'x', NULL)", (raw,))
        conn.execute("INSERT INTO ledger_subject_keys VALUES ('acct-2', NULL, 'x', 'y')")
        conn.commit()
    with SqliteKeyStore(path, wrapper=FileKeyWrapper(master, create=False)) as store:
        assert store.key_for("acct-1") == raw
        assert store.is_destroyed("acct-2") and store.key_for("acct-2") is None
    with closing(sqlite3.connect(path)) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert "ledger_subject_keys" not in tables
    assert raw not in path.read_bytes()


def test_errors_are_ledger_errors() -> None:
    assert issubclass(MasterKeyError, LedgerError) and issubclass(ShredIncomplete, LedgerError)


def ledger_keys(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``ledger keys ARGS`` in a process of its own, on ``url``."""
    return subprocess.run(
        [sys.executable, "-m", "cli", "keys", *args, "--database-url", url],
        env=os.environ.copy(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_cli_rotates_the_master_key_and_compacts(backend: str, master: Path) -> None:
    with opened_ledger(backend) as ledger:
        key = ledger.keystore.key_for("acct-1")
        ledger.keystore.destroy("acct-2", AT)
    old = read_keyring(master).current
    done = ledger_keys(backend, "rotate-master", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "rewrapped": 1,
        "master_key_id": read_keyring(master).current,
        "resumed": False,
        "older_master_key_ids": [old],
    }
    compacted = ledger_keys(backend, "compact")
    assert compacted.returncode == 0 and compacted.stdout == "key store compacted\n"
    with opened_ledger(backend) as ledger:
        assert ledger.keystore.key_for("acct-1") == key


def test_the_cli_names_a_missing_master_key_in_one_line(
    backend: str, master: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with opened_ledger(backend) as ledger:
        ledger.keystore.key_for("acct-1")
    monkeypatch.setenv(MASTER_KEY_SETTING, str(tmp_path / "gone.key"))
    done = ledger_keys(backend, "rotate-master")  # compact needs no master key any more
    assert done.returncode == 1
    assert done.stderr.startswith("ledger: MASTER_KEY_ERROR: master key file ")
    assert "Traceback" not in done.stderr


def test_the_cli_expires_old_linkage_keys_once(backend: str, master: Path) -> None:
    this_year = datetime.now(UTC).year  # the CLI runs on the system clock
    with opened_ledger(backend) as ledger:
        for year in (this_year - 3, this_year - 2, this_year - 1, this_year):
            assert ledger.keystore.year_linkage_key(year) is not None
    first = ledger_keys(backend, "expire-linkage", "--json")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout) == {"destroyed_years": [this_year - 3, this_year - 2]}
    again = ledger_keys(backend, "expire-linkage")
    assert again.stdout == "linkage keys destroyed: none due\n"
    with opened_ledger(backend) as ledger:
        assert ledger.keystore.year_linkage_key(this_year - 2) is None
        assert ledger.keystore.year_linkage_key(this_year - 1) is not None


def test_a_rotation_rewraps_every_direct_key_generation_and_leaves_destroyed_ones_gone(
    store: KeyStore, master: Path
) -> None:
    first = store.current_direct("acct-1")
    assert first is not None and first[0] == "d"
    assert store.retire_direct("acct-1") == ["d"]
    second = store.current_direct("acct-1")
    assert second is not None and second[0] == "d2"
    assert store.destroy_kinds("acct-1", ["d"], AT)
    main = store.key_for("acct-1")

    assert rotate_master(store).rewrapped == 2  # the main key and d2

    store.close()
    with open_store_again(store, master) as fresh:  # another process, the new file only
        assert fresh.current_direct("acct-1") == second
        assert fresh.key_for("acct-1") == main
        assert fresh.existing_key("acct-1", "d") is None
        assert fresh.kind_destroyed("acct-1", "d") and not fresh.kind_destroyed("acct-1", "d2")
