"""``ledger seal``, ``prove`` and ``verify`` as an auditor runs them (real processes, a real
SQLite file): a proof checked with nothing but its text and the public key, a tampered row
named by ``verify`` with exit 1, bad input as one line with exit 2."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

import pytest

from replay.merkle import leaf_hash
from replay.signed_note import Verifier
from replay.tlog_proof import TlogProof
from tests.e2e.prepared import copy_into
from tests.e2e.test_cli_newcomer import one_line_error, run

ORIGIN = "mall-ledger.local/log"


def ledger(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run(cwd, list(args))


@pytest.fixture(scope="module")
def sealed_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ledger with the demo's events, sealed once, in the module's own directory."""
    where = tmp_path_factory.mktemp("sealed")
    demo = ledger(where, "demo", "--orders", "40")
    assert demo.returncode == 0, demo.stderr
    done = ledger(where, "seal", "--json")
    assert done.returncode == 0, done.stderr
    assert "made a new checkpoint signing key" in done.stderr
    return where


@pytest.fixture
def sealed(sealed_template: Path, tmp_path: Path) -> Path:
    """A copy of the module's sealed demo ledger, in ``tmp_path``, for this test to change."""
    return copy_into(sealed_template, tmp_path)


def test_a_seal_writes_the_checkpoint_file_and_verify_says_intact(sealed: Path) -> None:
    files = list((sealed / "var" / "checkpoints").glob("*/*.checkpoint"))
    assert len(files) == 1
    again = ledger(sealed, "seal", "--json")
    outcome = json.loads(again.stdout)
    assert outcome["appended"] == 1  # the first seal's own checkpoint event
    done = ledger(sealed, "verify", "--checkpoint", str(files[0]), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["intact"] and len(report["checkpoints"]) == 2


def test_an_auditor_checks_a_proof_with_the_public_key_alone(sealed: Path) -> None:
    vkey = ledger(sealed, "seal", "--public-key").stdout.strip()
    proof_text = ledger(sealed, "prove", "7").stdout
    proof = TlogProof.parse(proof_text)
    assert proof.extra is not None
    checkpoint = proof.verify(leaf_hash(proof.extra), [Verifier.parse(vkey)], ORIGIN)
    assert checkpoint.size > proof.index
    assert int.from_bytes(proof.extra[19:27], "big") == 7


def test_a_changed_row_fails_verify_with_its_position_and_exit_1(sealed: Path) -> None:
    with sqlite3.connect(sealed / "var" / "ledger.db") as conn:
        conn.execute(
            "UPDATE stored_events SET state = CAST(state || x'20' AS BLOB) WHERE rowid = 42"
        )
    done = ledger(sealed, "verify")
    assert done.returncode == 1
    problems = [line for line in done.stdout.splitlines() if line.startswith("NOT INTACT")]
    assert problems[0] == "NOT INTACT: position 42: changed since it was sealed as leaf 41"
    # The checkpoints after it differ because of it: said once, as its consequence.
    assert len(problems) == 2 and problems[1].endswith(
        "only because of position 42 (a consequence of that row, not a fork)"
    )
    assert "sealed again (a fork)" not in done.stdout


def test_verify_with_another_key_fails_every_checkpoint(sealed: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    ledger(other, "seal", "--public-key")
    key = tmp_path / "other.vkey"
    key.write_text(ledger(other, "seal", "--public-key").stdout)
    done = ledger(sealed, "verify", "--public-key", str(key))
    assert done.returncode == 1
    assert "no signature by a trusted key" in done.stdout


@pytest.mark.parametrize(
    ("args", "code", "exit_code"),
    [
        (["prove"], "INVALID_COMMAND", 2),
        (["prove", "3", "--consistency", "1", "2"], "INVALID_COMMAND", 2),
        (["prove", "999999"], "NOT_FOUND", 1),
        (["prove", "--consistency", "5", "4"], "PROOF_INVALID", 1),
        (["verify", "--checkpoint", "missing.checkpoint"], "IO_ERROR", 2),
    ],
)
def test_bad_requests_are_one_line(
    sealed: Path, args: list[str], code: str, exit_code: int
) -> None:
    done = ledger(sealed, *args)
    assert done.returncode == exit_code
    one_line_error(done, code)


def test_verify_before_any_seal_asks_for_a_key(tmp_path: Path) -> None:
    assert ledger(tmp_path, "demo", "--orders", "1").returncode == 0
    done = ledger(tmp_path, "verify")
    assert done.returncode == 2
    assert "--public-key" in one_line_error(done, "INVALID_COMMAND")


def test_the_worker_seals_on_its_timer_and_once_more_as_it_stops(tmp_path: Path) -> None:
    import signal
    import time

    from tests.e2e.test_cli_newcomer import clean_env, ledger_argv

    assert ledger(tmp_path, "demo", "--orders", "5").returncode == 0
    worker = subprocess.Popen(
        ledger_argv("projections", "run"),
        cwd=tmp_path,
        env=clean_env(LEDGER_SEAL_INTERVAL_S="1", LEDGER_LOG_LEVEL="INFO"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    checkpoints = tmp_path / "var" / "checkpoints"
    deadline = time.monotonic() + 60
    while not list(checkpoints.glob("*/*.checkpoint")) and time.monotonic() < deadline:
        time.sleep(0.2)
    worker.send_signal(signal.SIGTERM)
    _, stderr = worker.communicate(timeout=60)
    assert worker.returncode == 0, stderr
    assert "sealed" in stderr
    sizes = sorted(int(p.stem) for p in checkpoints.glob("*/*.checkpoint"))
    assert len(sizes) >= 2  # the timer's, and the last one as the worker stopped
    done = ledger(tmp_path, "verify", "--json")
    assert done.returncode == 0, done.stdout
    assert json.loads(done.stdout)["checkpoints"] == sizes


def test_seal_prove_verify_and_api_keys_need_no_master_key(sealed: Path, tmp_path: Path) -> None:
    gone = str(tmp_path / "no-such" / "master.key")
    for args in (["seal", "--json"], ["prove", "7"], ["verify"], ["keys", "list"]):
        done = run(sealed, args, LEDGER_MASTER_KEY=gone)
        assert done.returncode == 0, (args, done.stderr)
        assert "MASTER_KEY_ERROR" not in done.stderr
    assert not Path(gone).exists()  # no master key was made either


@pytest.mark.slow  # eight processes (~5 s); test_checkpoint_files.py runs by default
def test_a_sqlite_and_a_postgresql_ledger_sealed_from_one_directory_keep_apart(
    tmp_path: Path, pg_url: str
) -> None:
    """The newcomer's sequence: the SQLite demo sealed, then the PostgreSQL demo sealed in the
    same directory (one default key and checkpoint directory): both seals succeed, each
    ``verify`` passes on its own files, and a file of the other is named as not its own."""
    pg = ["--database-url", pg_url]
    sealed: list[dict[str, object]] = []
    for url in ([], pg):
        assert ledger(tmp_path, "demo", "--orders", "5", *url).returncode == 0
        done = ledger(tmp_path, "seal", "--json", *url)
        assert done.returncode == 0, done.stderr
        sealed.append(json.loads(done.stdout))
    lite, post = sealed
    assert lite["size"] == post["size"]  # one name in the shared directory before log ids
    assert lite["log_id"] != post["log_id"] and lite["file"] != post["file"]
    for outcome, url in ((lite, []), (post, pg)):
        done = ledger(tmp_path, "verify", "--checkpoint", str(outcome["file"]), "--json", *url)
        assert done.returncode == 0, done.stdout
        assert json.loads(done.stdout)["log_id"] == outcome["log_id"]
    for mine, theirs, url in ((lite, post, []), (post, lite, pg)):
        done = ledger(tmp_path, "verify", "--checkpoint", str(theirs["file"]), *url)
        assert done.returncode == 1
        assert (
            f"NOT INTACT: {theirs['file']}: not this ledger's checkpoint: it is of the log "
            f"{theirs['log_id']}, this ledger's log id is {mine['log_id']}"
        ) in done.stdout
        assert "fork" not in done.stdout
