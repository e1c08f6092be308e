"""``ledger access SUBJECT --out DIR`` as a user runs it (real processes, a real SQLite file):
the copy and its ``--json`` summary; a taken DIR and an unknown subject as one line; and a
process killed (SIGKILL) or interrupted (SIGINT) while it writes: DIR never appears
half-written, and a killed run's staging directory is removed by the next copy."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from cli.exits import Exit
from ledger.application import open_ledger
from tests import builders as b
from tests.e2e.test_cli_newcomer import clean_env, ledger_argv, one_line_error, run

PHONE = b.CONTACT["phone"]
ORDERS_FOR_A_SLOW_COPY = 300


def made(tmp_path: Path, orders: int = 2) -> Path:
    """The default ledger (``var/ledger.db``) in ``tmp_path`` with ``orders`` paid orders of
    acct-1 and one of acct-2."""
    (tmp_path / "var").mkdir()
    ledger = open_ledger(f"sqlite:///{tmp_path / 'var' / 'ledger.db'}")
    try:
        commands = [b.submit("X-1", account_no="acct-2")]
        for n in range(orders):
            commands += [b.submit(f"O-{n}"), b.pay(f"O-{n}")]
        ledger.execute_batch([(command, None) for command in commands])
    finally:
        ledger.close()
    return tmp_path


def staging(parent: Path, name: str) -> list[str]:
    return [entry for entry in os.listdir(parent) if entry.startswith(f".{name}.access-")]


def verified(out: Path) -> dict[str, object]:
    """The manifest, after checking every file it lists against its digest and size."""
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    names = {entry["name"] for entry in manifest["files"]}
    assert names | {"manifest.json"} == {p.name for p in out.iterdir()}
    for entry in manifest["files"]:
        data = (out / entry["name"]).read_bytes()
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert entry["bytes"] == len(data)
    return dict(manifest)


def test_the_copy_is_written_and_summarised(tmp_path: Path) -> None:
    cwd = made(tmp_path)

    done = run(cwd, ["access", "acct-1", "--out", "copy", "--reference", "REQ-1", "--json"])

    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["counts"]["orders"] == 2 and summary["subject_id"] == "acct-1"
    manifest = verified(cwd / "copy")
    assert manifest["position"] == summary["position"]
    assert [f["name"] for f in summary["files"]][-1] == "manifest.json"
    assert PHONE not in done.stdout + done.stderr
    assert (cwd / "copy" / "orders.csv").read_bytes().startswith("\ufeff订单号".encode())
    plain = run(cwd, ["access", "acct-1", "--out", "copy2"])
    assert plain.returncode == 0 and plain.stdout.startswith("access copy of acct-1 written")


def test_a_taken_directory_and_an_unknown_subject_are_one_line_each(tmp_path: Path) -> None:
    cwd = made(tmp_path)
    (cwd / "copy").mkdir()
    (cwd / "copy" / "mine.txt").write_text("keep")

    taken = run(cwd, ["access", "acct-1", "--out", "copy"])
    unknown = run(cwd, ["access", "ghost-1", "--out", "other"])

    assert taken.returncode == Exit.USAGE
    assert "not empty" in one_line_error(taken, "IO_ERROR")
    assert [p.name for p in (cwd / "copy").iterdir()] == ["mine.txt"]
    assert unknown.returncode == Exit.PROBLEM
    assert "ghost" not in one_line_error(unknown, "NOT_FOUND")
    assert not (cwd / "other").exists()


def start(cwd: Path, out: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ledger_argv("access", "acct-1", "--out", out),
        cwd=cwd,
        env=clean_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def signalled_while_writing(cwd: Path, out: str, signum: int) -> tuple[bool, int]:
    """Start a copy into ``out`` and send ``signum`` as soon as its staging directory exists;
    (whether it was caught writing, its exit status)."""
    process = start(cwd, out)
    caught = False
    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline:
        if staging(cwd, out):
            process.send_signal(signum)
            caught = True
            break
    process.communicate(timeout=120)
    return caught, process.returncode


@pytest.mark.parametrize(
    ("signum", "status"),
    [
        (signal.SIGKILL, -signal.SIGKILL),
        (signal.SIGINT, Exit.INTERRUPTED),
    ],
    ids=["sigkill", "sigint"],  # SIGTERM unwinds as SIGINT does (cli.projections)
)
def test_a_copy_stopped_while_it_writes_leaves_no_directory(
    tmp_path: Path, signum: int, status: int
) -> None:
    cwd = made(tmp_path, ORDERS_FOR_A_SLOW_COPY)
    for attempt in range(5):
        out = f"copy-{attempt}"
        caught, returncode = signalled_while_writing(cwd, out, signum)
        if not caught:  # it finished before the staging directory was seen: a whole copy
            verified(cwd / out)
            continue
        if returncode == 0:  # the signal came after the rename: the copy is whole
            verified(cwd / out)
            continue
        assert returncode == status
        assert not (cwd / out).exists(), "no half-written copy"
        if signum == signal.SIGKILL:
            assert staging(cwd, out), "a killed run leaves only its hidden staging directory"
            again = run(cwd, ["access", "acct-1", "--out", out])
            assert again.returncode == 0, again.stderr
            verified(cwd / out)
        assert staging(cwd, out) == []
        return
    pytest.fail("the copy was never caught while writing")
