"""What ``ledger …`` makes of the values on its command line (issue 9, a newcomer's second
look): an identifier or a name is checked by the rule the commands use, refused with one
``ledger: INVALID_COMMAND: argument …: rule`` line and exit 2 without repeating what was
typed, and nothing a user typed reaches the terminal raw (no escape sequence, no line of its
own)."""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

import pytest

from cli.app import build_parser
from cli.exits import Exit
from tests.e2e.test_cli_newcomer import clean_env, ledger_argv, one_line_error, parsers, run

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


# -- help and usage ------------------------------------------------------------------------


def every_parser() -> list[tuple[str, argparse.ArgumentParser]]:
    return [(" ".join(("ledger", *path)), parser) for path, parser in parsers(build_parser())]


@pytest.mark.parametrize("name,parser", every_parser(), ids=[n for n, _ in every_parser()])
def test_help_reads_as_plain_text_and_says_each_thing_once(
    name: str, parser: argparse.ArgumentParser
) -> None:
    shown = parser.format_help()
    assert "``" not in shown, "reST literals from a docstring"
    for action in parser._actions:
        if "--json" in action.option_strings:
            assert action.help is not None
            assert (action.help.count("print"), action.help.count("JSON")) == (1, 1), action.help
    assert not parser.allow_abbrev, f"{name}: an option must not be taken by its prefix"


def test_an_option_is_never_taken_for_a_longer_one_it_begins(tmp_path: Path) -> None:
    done = run(tmp_path, ["commands", "--json"])
    assert done.returncode == Exit.USAGE and done.stdout == ""
    assert one_line_error(done, "INVALID_COMMAND") == (
        "ledger: INVALID_COMMAND: unrecognized arguments: --json (see ledger commands --help)"
    )


@pytest.mark.parametrize(
    ("args", "help_of"),
    [
        (["import", "x.jsonl", "--bogus"], "ledger import"),
        (["projections", "status", "extra"], "ledger projections status"),
        (["order", "show", "O-1", "O-2"], "ledger order show"),
        (["keys", "list", "--bogus"], "ledger keys list"),
    ],
)
def test_an_unrecognised_argument_points_at_its_subcommands_help(
    args: list[str], help_of: str, tmp_path: Path
) -> None:
    done = run(tmp_path, args)
    assert done.returncode == Exit.USAGE
    assert one_line_error(done, "INVALID_COMMAND").endswith(f" (see {help_of} --help)")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("extra", [["extra"], ["--help"], ["demo"]])
def test_version_followed_by_anything_is_a_usage_error(extra: list[str], tmp_path: Path) -> None:
    done = run(tmp_path, ["--version", *extra])
    assert done.returncode == Exit.USAGE and done.stdout == ""
    assert one_line_error(done, "INVALID_COMMAND") == (
        "ledger: INVALID_COMMAND: argument --version: takes no other arguments (see ledger --help)"
    )


# -- numbers and choices -------------------------------------------------------------------


@pytest.mark.parametrize("text", [" 7", "7 ", "٣", "1_0", "+7", "0x7", "7.0", "-7", ""])
def test_a_whole_number_option_takes_ascii_digits_only(
    text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["projections", "run", "--batch-size", text])
    assert exited.value.code == Exit.USAGE
    assert "argument --batch-size: must be a whole number from 1 to " in capsys.readouterr().err


@pytest.mark.parametrize("text", [" 1", "١", "1_0", "1e3", "+1", "0x1"])
def test_a_number_of_seconds_takes_ascii_digits_and_a_point_only(
    text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["projections", "run", "--idle", text])
    assert "argument --idle: must be a number of seconds" in capsys.readouterr().err


def test_numbers_as_typed_are_still_taken() -> None:
    parsed = build_parser().parse_args(["demo", "--seed", "-5", "--orders", "007"])
    assert (parsed.seed, parsed.orders) == (-5, 7)
    parsed = build_parser().parse_args(["projections", "run", "--idle", "0.5", "--batch-size", "9"])
    assert (parsed.idle, parsed.batch_size) == (0.5, 9)
    assert build_parser().parse_args(["projections", "run", "--idle", ".25"]).idle == 0.25


def test_demo_fresh_with_a_database_url_is_refused_naming_both(tmp_path: Path) -> None:
    done = run(tmp_path, ["demo", "--fresh", "--database-url", f"sqlite:///{tmp_path / 'x.db'}"])
    assert done.returncode == Exit.USAGE
    line = one_line_error(done, "INVALID_COMMAND")
    assert "--database-url" in line and "--fresh" in line
    assert list(tmp_path.iterdir()) == []


def test_demo_orders_has_an_upper_bound_its_help_gives(tmp_path: Path) -> None:
    from ledger.demo import MAX_ORDERS

    done = run(tmp_path, ["demo", "--orders", str(MAX_ORDERS + 1)])
    assert done.returncode == Exit.USAGE
    assert f"from 1 to {MAX_ORDERS}" in one_line_error(done, "INVALID_COMMAND")
    assert list(tmp_path.iterdir()) == []
    assert f"1 to {MAX_ORDERS}" in " ".join(run(tmp_path, ["demo", "--help"]).stdout.split())


# -- settings and listings -----------------------------------------------------------------


def test_an_empty_log_level_counts_as_unset(tmp_path: Path) -> None:
    done = run(tmp_path, ["projections", "run", "--once"], LEDGER_LOG_LEVEL="")
    assert done.returncode == Exit.OK, done.stderr
    assert "INFO projections: running" in done.stderr, "the default level, INFO"


def test_commands_lists_who_may_sign_a_delivery(tmp_path: Path) -> None:
    from ledger.domain.order.delivery import SIGNER_RELATIONS

    listed = run(tmp_path, ["commands"]).stdout.splitlines()
    (signer,) = [line for line in listed if line.startswith("  * signer_relation: string (")]
    assert all(relation in signer for relation in SIGNER_RELATIONS), signer
    assert not [line for line in listed if "must be one line of text" in line], "said once"


@pytest.mark.parametrize("command", [["erase"], ["access", "--out", "copy"], ["hold", "place"]])
def test_every_subject_argument_is_refused_with_one_worded_rule(
    command: list[str], tmp_path: Path
) -> None:
    done = run(tmp_path, [*command, "bad id!", "--reference", "r-1"])
    assert done.returncode == 2
    assert "SUBJECT: must be an account number: 1 to 128 of" in done.stderr
    assert "--help)" in done.stderr and "^[" not in done.stderr and "bad id!" not in done.stderr
