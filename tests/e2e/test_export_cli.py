"""``ledger export`` and ``verify-export`` as a regulator's clerk runs them (real processes, a
real SQLite file), and the verifier bundled in the bag run in a fresh virtual environment
holding nothing but ``cryptography``: it agrees with ``ledger verify-export``."""

from __future__ import annotations

import json
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from tests.e2e.prepared import copy_into
from tests.e2e.test_cli_newcomer import one_line_error, run

TIMEOUT_S = 600
NO_SUCH_FILE = "No such file or directory"


def ledger(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run(cwd, list(args))


@pytest.fixture(scope="module")
def exported_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sealed demo ledger, an export of one region written to ``bag``, the public key."""
    where = tmp_path_factory.mktemp("exported")
    for args in (["demo", "--orders", "40"], ["seal"]):
        assert ledger(where, *args).returncode == 0
    (where / "vkey").write_text(ledger(where, "seal", "--public-key").stdout)
    asked = ledger(
        where,
        "export",
        "request",
        "--authority",
        "市场监督管理局",
        "--reference",
        "SAMR-1",
        "--basis",
        "ECL 25",
        "--region",
        "CN-BJ",
        "--json",
    )
    assert asked.returncode == 0, asked.stderr
    request_id = json.loads(asked.stdout)["request_id"]
    done = ledger(where, "export", request_id, "--out", "bag", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["counts"]["orders"] > 0
    return where


@pytest.fixture
def exported(exported_template: Path, tmp_path: Path) -> Path:
    """A copy of the module's exported ledger, in ``tmp_path``, for this test to change."""
    return copy_into(exported_template, tmp_path)


def test_verify_export_passes_then_fails_on_a_changed_byte(exported: Path) -> None:
    ok = ledger(exported, "verify-export", "bag", "--public-key", "vkey")
    assert ok.returncode == 0 and ok.stdout.startswith("verified: "), ok.stdout
    orders = exported / "bag" / "data" / "orders.jsonl"
    orders.write_text(orders.read_text().replace("CN-BJ", "CN-SH", 1))
    bad = ledger(exported, "verify-export", "bag", "--public-key", "vkey")
    assert bad.returncode == 1
    assert (
        bad.stdout
        == "NOT VERIFIED: data/orders.jsonl is not the file the bag lists (changed or missing)\n"
    )


@pytest.mark.slow  # a fresh virtual environment and a pip install: a minute
def test_the_bundled_verifier_needs_only_cryptography(exported: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "clean-venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    pip = subprocess.run(
        [python, "-m", "pip", "install", "-q", "cryptography"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert pip.returncode == 0, pip.stderr
    script = exported / "bag" / "data" / "verify_export.py"
    bundled = subprocess.run(
        [python, "-I", script, exported / "bag", "--public-key", exported / "vkey"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    ours = ledger(exported, "verify-export", "bag", "--public-key", "vkey")
    assert bundled.returncode == ours.returncode == 0, bundled.stdout + bundled.stderr
    assert bundled.stdout == ours.stdout


@pytest.mark.parametrize(
    ("args", "code", "exit_code"),
    [
        (["export", "exp-000000000000", "--out", "x"], "NOT_FOUND", 1),
        (["export", "not-an-id", "--out", "x"], "INVALID_COMMAND", 2),
        (
            ["export", "request", "--authority", "", "--reference", "R", "--basis", "B"],
            "INVALID_COMMAND",
            2,
        ),
        (
            ["export", "request", "--authority", "A", "--reference", "R", "--basis", "B\x07"],
            "INVALID_COMMAND",
            2,
        ),
        (
            [
                "export",
                "request",
                "--authority",
                "A",
                "--reference",
                "R",
                "--basis",
                "B",
                "--from",
                "2026-03-02T00:00:00Z",
                "--to",
                "2026-03-01T00:00:00Z",
            ],
            "INVALID_COMMAND",
            2,
        ),
    ],
)
def test_bad_requests_are_one_line(
    exported: Path, args: list[str], code: str, exit_code: int
) -> None:
    done = ledger(exported, *args)
    assert done.returncode == exit_code, done.stderr
    one_line_error(done, code)


@pytest.mark.parametrize("account", ["13812345678", "+86-138-1234-5678", "wang.li@example.cn"])
def test_an_account_that_is_a_phone_number_or_email_is_refused_and_never_kept(
    exported: Path, account: str
) -> None:
    """The commands' rule for account numbers, one rule: a request keeps its scope in clear."""
    done = ledger(exported, "export", "request", "--authority", "A", "--reference", "R",
                  "--basis", "B", "--account", account)  # fmt: skip
    assert done.returncode == 2
    said = one_line_error(done, "INVALID_COMMAND")
    assert said.startswith("ledger: INVALID_COMMAND: argument --account: an account number is")
    assert account not in said


def test_an_out_directory_is_refused_as_ledger_access_refuses_it(exported: Path) -> None:
    """The same rule and words as ``ledger access --out``, naming the path given (never a
    hidden staging directory), nothing made: not a missing parent, not the working directory."""
    manifest = json.loads((exported / "bag" / "data" / "manifest.json").read_text())
    request_id = manifest["request"]["request_id"]
    orders = (exported / "bag" / "data" / "orders.jsonl").read_text().splitlines()
    subject = json.loads(orders[0])["account_no"]
    cases = [
        ("bag", "IO_ERROR", "ledger: IO_ERROR: bag: exists and is not empty; nothing was written"),
        ("missing/dir/bag", "IO_ERROR",
         "ledger: IO_ERROR: missing/dir/bag: its directory does not exist"),
        ("/proc/nc_bag", "IO_ERROR", "ledger: IO_ERROR: /proc/nc_bag: "),
        ("", "INVALID_COMMAND", "ledger: INVALID_COMMAND: argument --out: must name a directory"),
    ]  # fmt: skip
    for out, code, words in cases:
        refused = [ledger(exported, "export", request_id, "--out", out),
                   ledger(exported, "access", subject, "--out", out)]  # fmt: skip
        for done in refused:
            assert done.returncode == 2, done.stderr
            assert one_line_error(done, code).startswith(words), done.stderr
            assert ".partial" not in done.stderr and ".access-" not in done.stderr
    assert not (exported / "missing").exists()


def test_verify_export_of_a_path_that_cannot_be_read_is_an_io_error(exported: Path) -> None:
    """Exit 2 naming the path, as for any file the command line names; never a class name."""
    for args, path in (
        (["nowhere", "--public-key", "vkey"], "nowhere"),
        (["bag", "--public-key", "nowhere.vkey"], "nowhere.vkey"),
    ):
        done = ledger(exported, "verify-export", *args)
        assert done.returncode == 2 and done.stdout == ""
        assert (
            one_line_error(done, "IO_ERROR")
            == f"ledger: IO_ERROR: {path}: No such file or directory"
        )
        script = exported / "bag" / "data" / "verify_export.py"
        bundled = subprocess.run([sys.executable, str(script), *args], cwd=exported,
                                 capture_output=True, text=True, check=False)  # fmt: skip
        assert bundled.returncode == 2 and bundled.stdout == ""
        assert (
            bundled.stderr == f"verify_export.py: cannot read {path}: No such file or directory\n"
        )
