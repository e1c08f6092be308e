"""One master key file serving two databases (issue 11, item 6): a rotation on one database
keeps every other database's keys openable, the other finishes on its own run, an old
version is retired only when no database the keyring knows of uses it, a first-format file
keeps working, and a process that started before a rotation keeps opening keys."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ledger.application import open_ledger
from ledger.domain.errors import InvalidCommand
from ledger.key_admin import retire_master, rotate_master
from ledger.key_wrapping import (
    KEYRING_HEADER,
    MASTER_KEY_SETTING,
    FileKeyWrapper,
    master_key_id,
    read_keyring,
)
from tests.fix_app import opened_ledger
from tests.integration.test_master_key import ledger_keys, master

SUBJECTS = [f"acct-{n:03d}" for n in range(20)]


__all__ = ["master"]  # the test's own master key file, shared fixture


def test_a_rotation_of_one_database_keeps_the_other_databases_keys(
    backend: str, master: Path, tmp_path: Path
) -> None:
    other = f"sqlite:///{tmp_path / 'other.db'}"
    with opened_ledger(backend) as one, opened_ledger(other) as two:
        keys_one = one.keystore.keys_for(SUBJECTS)
        keys_two = two.keystore.keys_for(SUBJECTS)
    old = read_keyring(master).current
    rotated = ledger_keys(backend, "rotate-master", "--json")
    assert rotated.returncode == 0, rotated.stderr
    new = json.loads(rotated.stdout)["master_key_id"]
    with opened_ledger(other) as two:  # not rotated: still opens under the old version
        assert two.keystore.keys_for(SUBJECTS) == keys_two
    refused = ledger_keys(backend, "retire-master", old, "--yes")
    assert refused.returncode == 1
    assert (
        f"{len(SUBJECTS)} keys wrapped by {old}" in refused.stdout
        and "not retired" in refused.stdout
    )
    assert old in read_keyring(master).keys
    again = ledger_keys(other, "rotate-master", "--json")
    assert json.loads(again.stdout) == {
        "rewrapped": len(SUBJECTS),
        "master_key_id": new,
        "resumed": True,
        "older_master_key_ids": [old],
    }
    checked = ledger_keys(backend, "retire-master", old)
    assert checked.returncode == 1 and "run again with --yes" in checked.stdout
    retired = ledger_keys(other, "retire-master", old, "--yes", "--json")
    assert retired.returncode == 0, retired.stdout + retired.stderr
    report = json.loads(retired.stdout)
    assert report["retired"] and set(report["keys_wrapped"].values()) == {0}
    assert len(report["keys_wrapped"]) == 2 and report["unchecked"] == {}
    assert list(read_keyring(master).keys) == [new]
    with opened_ledger(backend) as one, opened_ledger(other) as two:
        assert one.keystore.keys_for(SUBJECTS) == keys_one
        assert two.keystore.keys_for(SUBJECTS) == keys_two


def test_a_database_that_cannot_be_opened_blocks_retiring_until_forgotten(
    master: Path, tmp_path: Path
) -> None:
    gone = tmp_path / "gone.db"
    with opened_ledger(f"sqlite:///{gone}") as ledger:
        ledger.keystore.key_for("acct-1")
        rotate_master(ledger.keystore)
    old = next(iter(read_keyring(master).keys))
    gone.unlink()
    wrapper = FileKeyWrapper(master, create=False)
    blocked = retire_master(wrapper, old, confirmed=True)
    assert not blocked.retired and blocked.unchecked == {
        f"sqlite:///{gone.resolve()}": "the file does not exist"
    }
    done = retire_master(wrapper, old, forget=[f"sqlite:///{gone}"], confirmed=True)
    assert done.retired and old not in read_keyring(master).keys
    with pytest.raises(InvalidCommand):  # the current version is never retired
        retire_master(wrapper, read_keyring(master).current, confirmed=True)


def test_a_first_format_master_key_file_keeps_working_and_becomes_a_keyring(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "old" / "master.key"
    path.parent.mkdir()
    raw, following = os.urandom(32), os.urandom(32)
    path.write_bytes(raw)
    path.chmod(0o600)
    monkeypatch.setenv(MASTER_KEY_SETTING, str(path))
    with opened_ledger(backend) as ledger:
        key = ledger.keystore.key_for("acct-1")
    ring = read_keyring(path)
    assert path.read_text().startswith(KEYRING_HEADER) and ring.current == master_key_id(raw)
    # a first-format rotation killed mid-way left master.key.next: it becomes the current
    # version, the one that rotation was moving to
    Path(f"{path}.next").write_bytes(following)
    with opened_ledger(backend) as ledger:
        done = rotate_master(ledger.keystore)
        assert done.master_key_id == master_key_id(following) and done.resumed
        assert ledger.keystore.key_for("acct-1") == key
    assert not Path(f"{path}.next").exists()
    assert set(read_keyring(path).keys) == {master_key_id(raw), master_key_id(following)}


def test_a_process_started_before_a_rotation_keeps_opening_keys(backend: str, master: Path) -> None:
    running = open_ledger(backend)
    try:
        keys = running.keystore.keys_for(SUBJECTS)
        with opened_ledger(backend) as other:
            rotate_master(other.keystore)
        running.keystore.forget_cache()
        assert running.keystore.keys_for(SUBJECTS) == keys
        made = running.keystore.key_for("acct-new")  # wrapped under the new version
        assert running.keystore.count_wrapped_by(read_keyring(master).current) == len(SUBJECTS) + 1
        assert made is not None
    finally:
        running.close()


def test_a_master_key_error_is_answered_503_with_retry_after_not_500() -> None:
    from api.problems import refusal
    from ledger.key_wrapping import MasterKeyError

    answer = refusal(MasterKeyError("the keyring lacks a version"), "/v1/orders/o-1")
    assert answer.status_code == 503 and "Retry-After" in answer.headers
