"""Every file the ledger writes is made here: owner-only, never through a link, never over
another file (issue 8, case 13).

- **New output files** (the import's rejects file) are created with ``O_CREAT | O_EXCL |
  O_NOFOLLOW`` and mode 0600: an existing path, a planted symlink or a device is never opened
  for writing, so nothing is truncated, chmodded or overwritten. ``create_numbered`` takes the
  first free name instead (``x.jsonl``, ``x.2.jsonl``, …) so an earlier run's file is kept.
- **SQLite databases** (``prepare_sqlite_file``): the file is created 0600 before the library
  opens it, so SQLite, which gives its ``-wal`` and ``-shm`` files the database's mode, makes
  them 0600 too; an existing database must be a regular file (not a link), and one of ours
  with looser permissions is tightened, with its ``-wal`` and ``-shm``. Directories the
  ledger creates are 0700.
- **Lock files** beside a database (``open_lock_file``) hold no data but are opened the same
  way, so a planted link cannot make the ledger create or open a file elsewhere. A lock file
  lives only while its lock is held (``lock_file_held`` removes it before letting go; a
  process killed while holding one leaves it, and the next holder removes it).

Key material is held in the database (``ledger/keystore.py``); no key file is written yet.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700
MAX_NUMBERED = 999  # x.2.jsonl … x.999.jsonl; beyond that the directory wants tidying
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")

_NEW = os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class UnsafeFile(OSError):
    """A path the ledger would write through is not a regular file of its own."""


def private_directory(path: Path) -> None:
    """Create ``path`` (and its parents) owner-only if missing; an existing one is left as
    it is (it may be shared on purpose, e.g. the working directory). Each missing parent is
    made one by one with the mode too: ``mkdir(parents=True)`` gives parents the umask's."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for directory in reversed(missing):
        directory.mkdir(mode=PRIVATE_DIR_MODE, exist_ok=True)


@contextmanager
def named_as(path: Path) -> Iterator[None]:
    """An ``OSError`` raised inside names ``path``, the one the user gave, rather than the
    hidden staging directory beside it that the error was about."""
    try:
        yield
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(path)) from None


def create_new(path: Path) -> IO[bytes]:
    """Open a file that did not exist, for writing, mode 0600. Raises FileExistsError if
    anything (a file, a link, a device) is at ``path``."""
    fd = os.open(path, _NEW | os.O_WRONLY, PRIVATE_FILE_MODE)
    os.fchmod(fd, PRIVATE_FILE_MODE)  # the umask may only have narrowed it; make it exact
    return os.fdopen(fd, "wb")


def numbered(path: Path, n: int) -> Path:
    """``dir/x.rejects.jsonl`` → ``dir/x.rejects.<n>.jsonl`` (n >= 2); n == 1 is ``path``."""
    if n == 1:
        return path
    return path.with_name(f"{path.stem}.{n}{path.suffix}" if path.suffix else f"{path.name}.{n}")


def create_numbered(path: Path) -> tuple[Path, IO[bytes]]:
    """``create_new`` at the first free one of ``path``, ``numbered(path, 2)``, …: an
    existing file of that name (an earlier run's) is never touched."""
    for n in range(1, MAX_NUMBERED + 1):
        candidate = numbered(path, n)
        with contextlib.suppress(FileExistsError):
            return candidate, create_new(candidate)
    raise FileExistsError(17, f"{path} and {MAX_NUMBERED - 1} numbered siblings exist", str(path))


def prepare_sqlite_file(path: Path) -> None:
    """Make ``path`` ready for SQLite to open: created 0600 (in a 0700 directory if that is
    new) when missing; else it must be a regular file, not a link, and if it is ours its
    permissions (and those of its ``-wal``/``-shm`` files) are tightened to 0600.

    Raises ``UnsafeFile`` for a link or a non-regular file at ``path``.
    """
    private_directory(path.parent)
    try:
        create_new(path).close()
        return
    except FileExistsError:
        pass
    _tighten(path)
    for suffix in SQLITE_SIDE_FILES:
        with contextlib.suppress(FileNotFoundError):
            _tighten(path.with_name(path.name + suffix))


def _tighten(path: Path) -> None:
    """Refuse a link or a non-regular file at ``path``; narrow a file of ours to owner-only.

    The file is reached through an ``O_PATH`` descriptor: closing an ordinary descriptor of
    a database file drops every POSIX lock this process holds on it, so a connection already
    open in this process (SQLite's locks are POSIX locks) would lose its locks and the file
    could be corrupted. Closing an ``O_PATH`` descriptor leaves them alone."""
    fd = os.open(path, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        info = os.fstat(fd)
        if stat.S_ISLNK(info.st_mode):
            raise UnsafeFile(errno.ELOOP, "is a symbolic link", str(path))
        if not stat.S_ISREG(info.st_mode):
            raise UnsafeFile(errno.EINVAL, "is not a regular file", str(path))
        if info.st_uid == os.geteuid() and stat.S_IMODE(info.st_mode) & 0o077:
            # The very file checked above, whatever the path names by now.
            os.chmod(f"/proc/self/fd/{fd}", stat.S_IMODE(info.st_mode) & 0o700)
    finally:
        os.close(fd)


def _open_no_link(path: Path, flags: int, mode: int = PRIVATE_FILE_MODE) -> int:
    """``os.open`` that refuses a symbolic link as the last component (``UnsafeFile``)."""
    try:
        return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafeFile(exc.errno, "is a symbolic link", str(path)) from None
        raise


def open_lock_file(path: Path, *, create: bool = True) -> IO[bytes]:
    """A lock file beside a database: created 0600 if missing (``FileNotFoundError`` instead
    without ``create``), opened without following a link; its content is never read or
    written (only ``flock`` is taken on it)."""
    fd = _open_no_link(path, os.O_RDWR | (os.O_CREAT if create else 0))
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UnsafeFile(errno.EINVAL, "is not a regular file", str(path))
    return os.fdopen(fd, "r+b")


def try_flock(handle: IO[bytes], mode: int) -> bool:
    """``flock`` without waiting: True if taken, False if another holds it."""
    try:
        fcntl.flock(handle, mode | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@contextmanager
def lock_file_held(path: Path, take: Callable[[IO[bytes]], None]) -> Iterator[None]:
    """The exclusive lock of the lock file at ``path`` for the block; the file is made if
    missing and removed before the lock is let go, so none is left beside the database once
    no one holds it. ``take`` flocks the handle ``LOCK_EX``: it waits, or raises (the block
    then does not run).

    Removing a file others may be waiting on is safe because every taker, once it has the
    lock, checks that the file it locked is still the one at ``path``, and starts again on
    the path if not: the lock of a removed file is asked for by no one, so holding it
    excludes nobody (the same device and inode)."""
    while True:
        handle = open_lock_file(path)  # 0600, never through a link
        try:
            take(handle)
            if _same_file(handle.fileno(), path):
                break
        except BaseException:
            handle.close()
            raise
        handle.close()
    try:
        yield
    finally:
        path.unlink(missing_ok=True)
        handle.close()  # releases the lock


def lock_file_taken(path: Path) -> bool:
    """Whether some process holds the lock of the lock file at ``path`` now (a moment's
    shared lock tells); no file, no holder: nothing is created to ask."""
    try:
        handle = open_lock_file(path, create=False)
    except FileNotFoundError:
        return False
    with handle:
        if not try_flock(handle, fcntl.LOCK_SH):
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


def _same_file(fd: int, path: Path) -> bool:
    try:
        at_path = path.stat()
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (held.st_dev, held.st_ino) == (at_path.st_dev, at_path.st_ino)
