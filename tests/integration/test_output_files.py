"""The files an import and the ledger write, on real files and links (issue 8, case 13):
never through a link, never over another file, owner-only, and a rejects file only when a
line is rejected."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from ledger.application import Ledger, open_ledger
from ledger.domain.errors import InvalidCommand
from ledger.files import UnsafeFile
from ledger.importer import default_rejects_path, import_file
from tests import builders as b


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    target = tmp_path / "victim.txt"
    target.write_bytes(b"precious")
    target.chmod(0o644)
    return target


@pytest.fixture(autouse=True)
def in_tmp_path(tmp_path: Path) -> Iterator[None]:
    """Each test runs in its own directory, where a rejects file goes by default (not
    ``monkeypatch.chdir``: a test's ``monkeypatch.undo()`` would undo it)."""
    with contextlib.chdir(tmp_path):
        yield


def source_with(tmp_path: Path, *, rejected: bool) -> Path:
    lines = [b.submit("OF-1")]
    if rejected:
        lines.append(b.submit("OF-2", shipping_region="CN-HK"))  # personal data in the line
    path = tmp_path / "good.jsonl"
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    return path


def assert_untouched(victim: Path) -> None:
    assert victim.read_bytes() == b"precious"
    assert stat.S_IMODE(victim.stat().st_mode) == 0o644


@pytest.mark.parametrize("rejected", [False, True], ids=["nothing-rejected", "a-line-rejected"])
def test_a_planted_link_at_the_rejects_path_is_never_followed(
    ledger: Ledger, tmp_path: Path, victim: Path, rejected: bool
) -> None:
    source = source_with(tmp_path, rejected=rejected)
    planted = default_rejects_path(source)
    planted.symlink_to(victim)
    report = import_file(ledger, source)
    assert_untouched(victim)
    assert planted.is_symlink(), "the link is not ours to remove"
    if rejected:
        assert report.rejects_path == "good.rejects.2.jsonl"
        assert stat.S_IMODE(Path(report.rejects_path).stat().st_mode) == 0o600
    else:
        assert report.rejects_path is None
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
            ["good.jsonl", "good.rejects.jsonl", "victim.txt", *database_files(tmp_path)]
        ), "no rejects file left behind"


def database_files(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir() if p.name.startswith("ledger.db")]


@pytest.mark.parametrize("kind", ["file", "link", "device"])
def test_a_chosen_rejects_path_that_exists_is_refused_before_anything_is_imported(
    ledger: Ledger, tmp_path: Path, victim: Path, kind: str
) -> None:
    chosen = {"file": victim, "link": tmp_path / "link", "device": Path(os.devnull)}[kind]
    if kind == "link":
        chosen.symlink_to(victim)
    device_mode = os.stat(os.devnull).st_mode
    source = source_with(tmp_path, rejected=True)
    with pytest.raises(InvalidCommand) as caught:
        import_file(ledger, source, rejects_path=chosen)
    assert caught.value.field == "rejects"
    assert ledger.head_position() == 0, "nothing imported"
    assert_untouched(victim)
    assert os.stat(os.devnull).st_mode == device_mode, "the device keeps its mode"


def test_the_sqlite_database_and_its_wal_are_owner_only(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        ledger = open_ledger(f"sqlite:///{tmp_path / 'var' / 'l.db'}")
        try:
            ledger.execute(b.submit("OF-DB"))
            made = sorted((tmp_path / "var").iterdir())
            assert {p.name for p in made} >= {"l.db", "l.db-wal", "l.db-shm"}
            for path in made:
                assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
        finally:
            ledger.close()
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "var").stat().st_mode) == 0o700


def test_a_sqlite_database_path_that_is_a_link_is_refused(tmp_path: Path, victim: Path) -> None:
    (tmp_path / "l.db").symlink_to(victim)
    with pytest.raises(UnsafeFile):
        open_ledger(f"sqlite:///{tmp_path / 'l.db'}")
    assert_untouched(victim)


def test_an_existing_world_readable_database_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    sqlite3.connect(path).close()
    path.chmod(0o644)
    open_ledger(f"sqlite:///{path}").close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
