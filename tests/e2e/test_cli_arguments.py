"""What ``ledger …`` makes of the values on its command line (issue 9, a newcomer's second
look): an identifier or a name is checked by the rule the commands use, refused with one
``ledger: INVALID_COMMAND: argument …: rule`` line and exit 2 without repeating what was
typed, and nothing a user typed reaches the terminal raw (no escape sequence, no line of its
own)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from cli.exits import Exit
from tests.e2e.test_cli_newcomer import clean_env, ledger_argv, one_line_error, run

TIMEOUT_S = 60
FORGED = "A\x1b[31mB\nledger: FORGED: line"


def run_bytes(cwd: Path, *args: str | bytes) -> subprocess.CompletedProcess[str]:
    """``ledger ARGS`` where an argument may be bytes that are not UTF-8, as a shell passes
    them (``$'\\xff\\xfe'``)."""
    return subprocess.run(
        [*ledger_argv(), *args],
        cwd=cwd,
        env=clean_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        errors="backslashreplace",
        timeout=TIMEOUT_S,
        check=False,
    )


def refused_unechoed(done: subprocess.CompletedProcess[str], where: str) -> str:
    assert done.returncode == Exit.USAGE, done.stderr
    line = one_line_error(done, "INVALID_COMMAND")
    assert line.startswith(f"ledger: INVALID_COMMAND: argument {where}: "), line
    assert "\x1b" not in done.stderr and "FORGED" not in done.stderr
    return line


@pytest.mark.parametrize(
    ("order_no", "rule"),
    [
        (b"\xff\xfe", "must be text in UTF-8: no undecodable bytes or lone surrogates"),
        (FORGED, "must match the pattern ^[A-Za-z0-9._:/@+-]+$"),
        ("", "must be at least 1 character(s) long"),
        ("O 1", "must match the pattern ^[A-Za-z0-9._:/@+-]+$"),
        ("O" * 129, "must be at most 128 characters long"),
    ],
)
def test_order_show_checks_the_order_number_as_commands_do(
    order_no: str | bytes, rule: str, tmp_path: Path
) -> None:
    done = run_bytes(tmp_path, "order", "show", order_no)
    line = refused_unechoed(done, "ORDER_NO")
    assert line == (
        f"ledger: INVALID_COMMAND: argument ORDER_NO: {rule} (see ledger order show --help)"
    )
    assert list(tmp_path.iterdir()) == [], "refused before any database is opened"


@pytest.mark.parametrize(
    "args",
    [
        ["projections", "run", "--once", FORGED],
        ["projections", "rebuild", "orders", FORGED],
        ["projections", "check", FORGED],
        ["projections", "skip", FORGED, "1"],
    ],
    ids=["run", "rebuild", "check", "skip"],
)
def test_a_projection_name_is_one_of_the_projections_never_repeated(
    args: list[str], tmp_path: Path
) -> None:
    line = refused_unechoed(run(tmp_path, args), "NAME")
    assert "must be one of orders, entitlements, limits, flags, payments, retention" in line
    assert list(tmp_path.iterdir()) == []


def test_an_unrecognised_argument_is_shown_escaped(tmp_path: Path) -> None:
    done = run(tmp_path, ["projections", "status", FORGED])
    assert done.returncode == Exit.USAGE
    line = one_line_error(done, "INVALID_COMMAND")
    assert "\x1b" not in done.stderr
    assert "unrecognized arguments: A\\x1b[31mB ledger: FORGED: line (see " in line


def test_a_file_name_in_an_error_is_shown_escaped(tmp_path: Path) -> None:
    done = run(tmp_path, ["import", f"{FORGED}.jsonl"])
    assert done.returncode == Exit.USAGE
    line = one_line_error(done, "IO_ERROR")
    assert line == (
        "ledger: IO_ERROR: A\\x1b[31mB\\nledger: FORGED: line.jsonl: No such file or directory"
    )


def test_a_key_name_with_a_trailing_newline_is_refused(tmp_path: Path) -> None:
    done = run(tmp_path, ["keys", "create", "--role", "service", "--name", "svc\n"])
    assert done.returncode == Exit.USAGE
    assert "name: 1-64 characters" in one_line_error(done, "INVALID_COMMAND")
    assert run(tmp_path, ["keys", "list"]).stdout == ""
