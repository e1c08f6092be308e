"""ledger.files on real files and symbolic links (issue 8, case 13)."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import pytest

from ledger.files import (
    UnsafeFile,
    create_new,
    create_numbered,
    lock_file_held,
    lock_file_taken,
    open_lock_file,
    prepare_sqlite_file,
)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    target = tmp_path / "victim.txt"
    target.write_bytes(b"precious")
    target.chmod(0o644)
    return target


def assert_untouched(victim: Path) -> None:
    assert victim.read_bytes() == b"precious"
    assert mode(victim) == 0o644


def test_a_new_file_is_owner_only_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        with create_new(tmp_path / "out.jsonl") as out:
            out.write(b"x")
    finally:
        os.umask(old)
    assert mode(tmp_path / "out.jsonl") == 0o600


def test_a_new_file_is_never_made_through_a_link_or_over_a_file(
    tmp_path: Path, victim: Path
) -> None:
    (tmp_path / "link.jsonl").symlink_to(victim)
    (tmp_path / "dangling.jsonl").symlink_to(tmp_path / "nowhere")
    for taken in ("link.jsonl", "dangling.jsonl", "victim.txt"):
        with pytest.raises(FileExistsError):
            create_new(tmp_path / taken)
    assert_untouched(victim)
    assert not (tmp_path / "nowhere").exists(), "a dangling link was followed"


def test_a_numbered_file_takes_the_first_free_name(tmp_path: Path, victim: Path) -> None:
    first = tmp_path / "in.rejects.jsonl"
    first.symlink_to(victim)
    (tmp_path / "in.rejects.2.jsonl").write_bytes(b"run 2")
    path, out = create_numbered(first)
    out.close()
    assert path == tmp_path / "in.rejects.3.jsonl"
    assert (tmp_path / "in.rejects.2.jsonl").read_bytes() == b"run 2"
    assert_untouched(victim)


def test_a_new_sqlite_file_is_owner_only_in_an_owner_only_directory(tmp_path: Path) -> None:
    path = tmp_path / "var" / "ledger.db"
    prepare_sqlite_file(path)
    assert mode(path) == 0o600 and mode(path.parent) == 0o700


def test_an_existing_sqlite_file_and_its_side_files_are_tightened(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    for name in ("old.db", "old.db-wal", "old.db-shm"):
        (tmp_path / name).write_bytes(b"")
        (tmp_path / name).chmod(0o644)
    prepare_sqlite_file(path)
    assert [mode(tmp_path / n) for n in ("old.db", "old.db-wal", "old.db-shm")] == [0o600] * 3


@pytest.mark.parametrize("linked", ["ledger.db", "ledger.db-wal", "ledger.db-shm"])
def test_a_sqlite_database_or_side_file_that_is_a_link_is_refused(
    tmp_path: Path, victim: Path, linked: str
) -> None:
    (tmp_path / "ledger.db").write_bytes(b"")
    (tmp_path / linked).unlink(missing_ok=True)
    (tmp_path / linked).symlink_to(victim)
    with pytest.raises(UnsafeFile):
        prepare_sqlite_file(tmp_path / "ledger.db")
    assert_untouched(victim)


def test_a_sqlite_database_that_is_not_a_regular_file_is_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "ledger.db"
    os.mkfifo(fifo)
    with pytest.raises(UnsafeFile):
        prepare_sqlite_file(fifo)


def test_a_lock_file_is_never_opened_through_a_link(tmp_path: Path, victim: Path) -> None:
    (tmp_path / "db.setup-lock").symlink_to(victim)
    with pytest.raises(UnsafeFile):
        open_lock_file(tmp_path / "db.setup-lock")
    assert_untouched(victim)
    with open_lock_file(tmp_path / "fresh.lock"):
        pass
    assert mode(tmp_path / "fresh.lock") == 0o600


def test_a_lock_file_that_is_a_device_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UnsafeFile):
        open_lock_file(Path(os.devnull))
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)


def test_preparing_an_open_database_keeps_this_process_s_locks_on_it(tmp_path: Path) -> None:
    """Closing an ordinary descriptor of a file drops this process's POSIX locks on it, which
    SQLite relies on: another process could then write under an open transaction."""
    path = tmp_path / "open.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA journal_mode=WAL")
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN IMMEDIATE")  # the write lock, held by this process
    try:
        for side in ("open.db-wal", "open.db-shm"):
            (tmp_path / side).chmod(0o644)
        prepare_sqlite_file(path)
        probe = (
            "import sqlite3, sys\n"
            "c = sqlite3.connect(sys.argv[1], timeout=0, isolation_level=None)\n"
            "try:\n    c.execute('BEGIN IMMEDIATE'); print('free')\n"
            "except sqlite3.OperationalError: print('locked')\n"
        )
        other = subprocess.run(
            [sys.executable, "-c", probe, str(path)], capture_output=True, text=True, check=True
        )
        assert other.stdout.strip() == "locked"
        assert mode(tmp_path / "open.db-wal") == 0o600
    finally:
        holder.execute("ROLLBACK")
        holder.close()


# -- lock files that live only while held --------------------------------------------------------
def wait_for_it(handle: IO[bytes]) -> None:
    fcntl.flock(handle, fcntl.LOCK_EX)


def test_a_lock_file_is_gone_once_let_go_and_a_probe_makes_none(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db.rebuild.lock"
    assert not lock_file_taken(path)
    assert list(tmp_path.iterdir()) == []
    with lock_file_held(path, wait_for_it):
        assert mode(path) == 0o600
        assert lock_file_taken(path)
    assert not lock_file_taken(path)
    assert list(tmp_path.iterdir()) == []


def test_removing_the_lock_file_never_lets_two_holders_in(tmp_path: Path) -> None:
    """Takers wait on the file the holder removes as it lets go; one of them gets the lock of
    a file no longer at the path while a newcomer locks a new one. Only one may go on."""
    path = tmp_path / "x.lock"
    inside, most = [0], [0]
    count = threading.Lock()

    def taker() -> None:
        for _ in range(150):
            with lock_file_held(path, wait_for_it):
                with count:
                    inside[0] += 1
                    most[0] = max(most[0], inside[0])
                time.sleep(0.0002)  # others open the file and wait on it meanwhile
                with count:
                    inside[0] -= 1

    threads = [threading.Thread(target=taker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most[0] == 1
    assert not path.exists()


def test_a_taker_that_gives_up_leaves_the_holders_file(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"

    def give_up(handle: IO[bytes]) -> None:
        raise TimeoutError

    with lock_file_held(path, wait_for_it):
        with pytest.raises(TimeoutError), lock_file_held(path, give_up):
            pass
        assert path.exists() and lock_file_taken(path)
    assert not path.exists()


def test_every_directory_made_for_a_private_path_is_owner_only(tmp_path: Path) -> None:
    from ledger.files import private_directory

    tmp_path.chmod(0o755)
    deep = tmp_path / "a" / "b" / "c"
    private_directory(deep)
    for made in (tmp_path / "a", tmp_path / "a" / "b", deep):
        assert mode(made) == 0o700, made
    assert mode(tmp_path) == 0o755  # an existing one is left as it is
