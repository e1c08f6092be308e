"""``ledger hold place|release`` as a user runs them (real processes, a real SQLite file):
a hold placed, repeated and released; bad input and refusals as one line, never echoing it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.e2e.test_cli_newcomer import one_line_error, run

PHONE = "13812345678"


def ledger(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run(tmp_path, list(args))


@pytest.fixture
def made(tmp_path: Path) -> Path:
    """A ledger that exists (a key created in it), in ``tmp_path``."""
    done = ledger(tmp_path, "keys", "create", "--role", "admin", "--name", "ops")
    assert done.returncode == 0, done.stderr
    return tmp_path


def test_a_hold_is_placed_repeated_and_released(made: Path) -> None:
    place = ["hold", "place", "acct-1", "--reference", "CASE-1", "--reason", "dispute"]
    placed = ledger(made, *place, "--command-id", "hold-1")
    assert (placed.returncode, placed.stdout) == (0, "legal hold CASE-1 placed (dispute)\n")
    again = ledger(made, *place, "--command-id", "hold-1")
    assert again.returncode == 0 and "a repeat" in again.stdout

    released = ledger(made, "hold", "release", "acct-1", "--reference", "CASE-1", "--json")

    assert released.returncode == 0, released.stderr
    outcome = json.loads(released.stdout)
    assert (outcome["type"], outcome["events"]) == (
        "release_legal_hold",
        ["data-subject/LegalHoldReleased"],
    )


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["place", PHONE + " x", "--reference", "C-1", "--reason", "dispute"], "SUBJECT"),
        (["place", "acct-1", "--reference", PHONE + " x", "--reason", "dispute"], "--reference"),
        (["place", "acct-1", "--reference", "C-1", "--reason", PHONE], "--reason"),
        (["place", "acct-1", "--reason", "dispute"], "--reference"),
        (["release", "acct-1", "--reference", "C-1", "--command-id", PHONE + " x"], "--command-id"),
    ],
)
def test_bad_input_is_one_line_naming_the_argument_never_its_value(
    made: Path, args: list[str], named: str
) -> None:
    done = ledger(made, "hold", *args)

    assert done.returncode == 2
    line = one_line_error(done, "INVALID_COMMAND")
    assert named in line and PHONE not in line


def test_a_phone_number_as_subject_is_refused_without_echoing_it(made: Path) -> None:
    """A subject id is a business key that outlives erasure: never a phone (issue 11)."""
    done = ledger(made, "hold", "place", PHONE, "--reference", "CASE-1", "--reason", "dispute")
    assert done.returncode == 2
    line = one_line_error(done, "INVALID_COMMAND")
    assert "never a phone number or email" in line and PHONE not in line


def test_refusals_are_one_line_and_exit_1(made: Path) -> None:
    # An opaque account number that still holds the phone's digits: none may be echoed.
    subject = f"M-{PHONE}"
    place = ["hold", "place", subject, "--reference", "CASE-1", "--reason", "dispute"]
    assert ledger(made, *place).returncode == 0
    other = ledger(made, *place[:-1], "investigation")
    unknown = ledger(made, "hold", "release", subject, "--reference", "CASE-2")

    assert (other.returncode, unknown.returncode) == (1, 1)
    for done, code in ((other, "LEGAL_HOLD_REFERENCE_REUSED"), (unknown, "NOT_FOUND")):
        assert PHONE not in one_line_error(done, code)
