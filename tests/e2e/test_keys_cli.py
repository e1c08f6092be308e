"""``ledger keys create|list|revoke`` as a user runs them (real processes, real files)."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.test_cli_newcomer import clean_env, ledger_argv, run


def keys(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run(tmp_path, ["keys", *args])


def test_a_key_is_shown_once_listed_without_its_secret_and_revoked(tmp_path: Path) -> None:
    created = keys(tmp_path, "create", "--role", "auditor", "--name", "audit-team", "--json")
    assert created.returncode == 0, created.stderr
    issued = json.loads(created.stdout)
    assert issued["role"] == "auditor" and issued["key"].startswith(f"mlk_{issued['id']}_")
    listed = json.loads(keys(tmp_path, "list", "--json").stdout)
    assert [(k["key_id"], k["revoked_at"]) for k in listed] == [(issued["id"], None)]
    assert issued["key"].split("_")[-1] not in keys(tmp_path, "list").stdout
    revoked = keys(tmp_path, "revoke", issued["id"])
    assert revoked.returncode == 0 and "revoked" in revoked.stdout
    assert json.loads(keys(tmp_path, "list", "--json").stdout)[0]["revoked_at"] is not None
    secret = issued["key"].split("_")[-1]
    for stored in tmp_path.glob("var/*"):
        assert secret.encode() not in stored.read_bytes(), stored


def test_a_second_live_key_of_one_name_is_refused(tmp_path: Path) -> None:
    assert keys(tmp_path, "create", "--role", "service", "--name", "svc").returncode == 0
    again = keys(tmp_path, "create", "--role", "service", "--name", "svc")
    assert again.returncode == 1
    assert again.stderr.startswith("ledger: API_KEY_NAME_TAKEN: ")


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["create", "--role", "root", "--name", "x"], "--role"),
        (["create", "--role", "service", "--name", "two words"], "name"),
        (["revoke", "not-an-id"], "id"),
    ],
)
def test_bad_values_are_one_line_usage_errors(tmp_path: Path, args: list[str], said: str) -> None:
    done = keys(tmp_path, *args)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("ledger: INVALID_COMMAND: ") and said in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.slow  # 12 s of Ctrl-C at every moment: CI's 20 minutes
def test_ctrl_c_never_leaves_a_key_saved_but_unshown(tmp_path: Path) -> None:
    """Whenever the interrupt lands, either no key was made or the key was printed."""
    assert keys(tmp_path, "list").returncode in (0, 1)  # the database exists from here on
    for attempt, delay_s in enumerate([0.2, 0.4, 0.6, 0.8, 1.0, 1.2, 1.5]):
        name = f"k{attempt}"
        process = subprocess.Popen(
            ledger_argv("keys", "create", "--role", "service", "--name", name, "--json"),
            cwd=tmp_path,
            env=clean_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(delay_s)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
        assert "Traceback" not in err, err
        listed = json.loads(keys(tmp_path, "list", "--json").stdout or "[]")
        made = [k for k in listed if k["name"] == name]
        if made:
            assert json.loads(out)["id"] == made[0]["key_id"], (delay_s, out, err)
