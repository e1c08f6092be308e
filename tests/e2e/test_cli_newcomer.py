"""``ledger …`` as a newcomer meets it (issue 9): every subcommand, in a real process, against
the conditions that used to end in a Python traceback. Each must end with at most one line on
stderr (``ledger: CODE: message``) and the documented exit code (cli.exits.Exit)."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from cli.app import build_parser
from cli.args import output_dir
from cli.exits import Exit
from ledger.demo.traffic import MIN_ORDERS_FOR_EVERY_PATH
from tests import builders as b
from tests.fix_pg import database_url

TIMEOUT_S = 180
ABSENT_FILE = "commands.jsonl"

# Every leaf command with the arguments it needs to get as far as the database.
SUBCOMMANDS: dict[str, list[str]] = {
    "demo": ["demo", "--orders", str(MIN_ORDERS_FOR_EVERY_PATH)],
    "import": ["import", ABSENT_FILE],
    "projections run": ["projections", "run", "--once"],
    "projections status": ["projections", "status"],
    "projections rebuild": ["projections", "rebuild", "--no-progress"],
    "projections check": ["projections", "check"],
    "projections skip": ["projections", "skip", "orders", "1"],
    "order show": ["order", "show", "O-1"],
    "commands": ["commands"],
    "keys create": ["keys", "create", "--role", "service", "--name", "newcomer"],
    "keys list": ["keys", "list"],
    "keys revoke": ["keys", "revoke", "0123456789ab"],
    # These open an existing ledger only (never create one): in a fresh directory they
    # stop at the database, so the test run's master key file is never rotated here.
    "keys rotate-master": ["keys", "rotate-master"],
    "keys retire-master": ["keys", "retire-master", "0123456789abcdef"],  # checks only
    "keys compact": ["keys", "compact"],
    "keys expire-linkage": ["keys", "expire-linkage"],
    "hold place": ["hold", "place", "acct-1", "--reference", "CASE-1", "--reason", "dispute"],
    "hold release": ["hold", "release", "acct-1", "--reference", "CASE-1"],
    "access": ["access", "acct-1", "--out", "access-copy"],
    "erase": ["erase", "acct-1"],
    "retention run": ["retention", "run"],
    "serve": ["serve", "--port", "18765"],
    "seal": ["seal"],
    "prove": ["prove", "1"],
    "verify": ["verify"],
    "replay order": ["replay", "order", "O-1", "--position", "1"],
    "replay entitlement": ["replay", "entitlement", "C-1", "--position", "1"],
    "replay account": ["replay", "account", "A-1", "--as-of", "2026-01-01T00:00:00+08:00"],
    "replay check": ["replay", "check"],
    "export request": ["export", "request", "--authority", "A", "--reference", "R", "--basis", "B"],
    "export write": ["export", "exp-000000000000", "--out", "bag"],
    "verify-export": ["verify-export", "bag", "--public-key", "vkey"],
}
# retire-master refuses a version its keyring lacks before it opens any database.
NO_DATABASE = {"commands", "verify-export", "keys retire-master"}
WITH_DATABASE = [name for name in SUBCOMMANDS if name not in NO_DATABASE]
# A server runs until stopped: it has no output to pipe and never ends on its own.
SERVERS = {"serve"}
ENDING = [name for name in SUBCOMMANDS if name not in SERVERS]


# The families whose first subcommand the default run checks: one reader and one writer of
# each store and each entry path (argparse, the import, a server, the history). The rest run
# with ``-m slow``; each family's own e2e file checks its errors in the default run too.
DEFAULT_FAMILIES = frozenset({"demo", "import", "projections", "order", "keys", "serve", "seal"})


def each(names: Iterable[str]) -> list[Any]:
    """The subcommands as test parameters: all of them in the slow run (``-m slow``); in the
    default one, the first of each of ``DEFAULT_FAMILIES`` (siblings share their family's
    module and entry code): the default run stays lean."""
    seen: set[str] = set()
    params = []
    for name in names:
        family = name.split()[0]
        lean = family in DEFAULT_FAMILIES and family not in seen
        params.append(pytest.param(name, id=name, marks=[] if lean else [pytest.mark.slow]))
        seen.add(family)
    return params


def ledger_argv(*args: str) -> list[str]:
    script = Path(sys.executable).with_name("ledger")
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-m", "cli", *args]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    return {**env, "LEDGER_LOG_LEVEL": "WARNING", **extra}


def prepare(cwd: Path, name: str) -> list[str]:
    """The subcommand's arguments; ``import`` gets a one-line file to read."""
    if name == "import":
        (cwd / ABSENT_FILE).write_bytes(orjson.dumps(b.submit("NEW-1")) + b"\n")
    return SUBCOMMANDS[name]


def run(cwd: Path, args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    return run_argv(cwd, ledger_argv(*args), **env)


def in_bash(cwd: Path, command: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run_argv(cwd, ["bash", "-c", command], **env)


def run_argv(cwd: Path, argv: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        cwd=cwd,
        env=clean_env(**env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )


def one_line_error(done: subprocess.CompletedProcess[str], code: str) -> str:
    """The one stderr line, which names ``code``; never a traceback."""
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"ledger: {code}: "), done.stderr
    return lines[0]


# -- the parser ------------------------------------------------------------------------------


def parsers(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from parsers(sub, (*path, name))


def leaf_commands() -> set[str]:
    names = set()
    for path, parser in parsers(build_parser()):
        if not any(isinstance(a, argparse._SubParsersAction) for a in parser._actions):
            names.add(" ".join(path))
    return names


def test_these_tests_cover_every_subcommand() -> None:
    assert leaf_commands() == set(SUBCOMMANDS)


def test_every_option_argument_and_subcommand_has_help() -> None:
    missing = []
    for path, parser in parsers(build_parser()):
        for action in parser._actions:
            where = " ".join(("ledger", *path, *(action.option_strings or [action.dest])))
            if isinstance(action, argparse._SubParsersAction):
                helped = {a.dest: a.help for a in action._choices_actions}
                missing += [f"{where} {n}" for n in action.choices if not helped.get(n)]
            elif not action.help or action.help == argparse.SUPPRESS:
                missing.append(where)
    assert missing == []


def test_every_command_that_opens_the_ledger_takes_database_url() -> None:
    for path, parser in parsers(build_parser()):
        name = " ".join(path)
        if name in WITH_DATABASE:
            options = {o for a in parser._actions for o in a.option_strings}
            assert "--database-url" in options, name


def bad_values() -> Iterator[tuple[list[str], str]]:
    """(argv with a wrong value, the option) for every option or argument that has a type."""
    for path, parser in parsers(build_parser()):
        for action in parser._actions:
            if action.type in (None, Path, output_dir) or action.choices:  # paths take "x!"
                continue
            name = action.option_strings[0] if action.option_strings else action.metavar
            base = list(SUBCOMMANDS[" ".join(path)])
            # "x!": no number, no projection's name, no identifier (``!``)
            if action.option_strings:
                yield [*base, action.option_strings[0], "x!"], str(name)
            else:
                yield [*path, *["orders"] * (name == "POSITION"), "x!"], str(name)


@pytest.mark.parametrize("argv,option", list(bad_values()))
def test_a_wrong_value_names_the_option_never_a_function(
    argv: list[str], option: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(argv)
    assert exited.value.code == Exit.USAGE
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"argument {option}: " in error
    assert " value: " not in error  # argparse's "invalid <function name> value: 'x'"


@pytest.mark.parametrize("idle", ["0", "0.001", "-1", "nan", "inf"])
def test_projections_run_refuses_an_idle_that_would_spin(
    idle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["projections", "run", "--idle", idle])
    assert "argument --idle: must be a number of seconds, at least 0.05" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "help_of"),
    [
        ([], "ledger"),
        (["nope"], "ledger"),
        (["import"], "ledger import"),
        (["projections", "run", "--bogus"], "ledger projections run"),
        (["projections", "rebuild", "--jobs", "x"], "ledger projections rebuild"),
        (["projections", "skip", "no-such", "1"], "ledger projections skip"),
        (["order"], "ledger order"),
    ],
)
def test_a_usage_error_is_one_line_with_where_to_read_the_usage_and_exit_2(
    argv: list[str], help_of: str, tmp_path: Path
) -> None:
    done = run(tmp_path, argv)
    assert done.returncode == Exit.USAGE
    assert one_line_error(done, "INVALID_COMMAND").endswith(f" (see {help_of} --help)")
    assert done.stdout == ""
    assert list(tmp_path.iterdir()) == []


def test_exit_codes_are_the_documented_ones() -> None:
    assert {e.name: int(e) for e in Exit} == {
        "OK": 0,
        "PROBLEM": 1,
        "USAGE": 2,
        "STOPPED": 3,
        "INTERRUPTED": 130,
        "TERMINATED": 143,
    }


# -- every subcommand against each condition ------------------------------------------------


@pytest.mark.parametrize("name", each(SUBCOMMANDS))
def test_a_wrong_log_level_is_one_line_and_exit_2(name: str, tmp_path: Path) -> None:
    done = run(tmp_path, prepare(tmp_path, name), LEDGER_LOG_LEVEL="foo")
    assert done.returncode == Exit.USAGE
    assert "LEDGER_LOG_LEVEL" in one_line_error(done, "INVALID_COMMAND")
    assert not (tmp_path / "var").exists()


@pytest.mark.parametrize("name", each(WITH_DATABASE))
def test_a_postgresql_database_that_does_not_exist_is_one_line(
    name: str, tmp_path: Path, pg_server_url: str
) -> None:
    url = database_url(pg_server_url, f"ledger_test_absent_{os.getpid()}")
    done = run(tmp_path, [*prepare(tmp_path, name), "--database-url", url])
    assert done.returncode == Exit.PROBLEM
    assert "does not exist" in one_line_error(done, "STORAGE_UNAVAILABLE")


@pytest.mark.parametrize("name", each(WITH_DATABASE))
def test_a_postgresql_port_nobody_listens_on_is_one_line(name: str, tmp_path: Path) -> None:
    url = "postgresql://postgres@127.0.0.1:1/ledger"
    done = run(tmp_path, prepare(tmp_path, name), LEDGER_DATABASE_URL=url)
    assert done.returncode == Exit.PROBLEM
    one_line_error(done, "STORAGE_UNAVAILABLE")


@pytest.mark.parametrize("name", each(WITH_DATABASE))
def test_an_sqlite_url_on_a_text_file_is_one_line(name: str, tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("shopping list\n" * 100)
    done = run(tmp_path, [*prepare(tmp_path, name), "--database-url", f"sqlite:///{notes}"])
    assert done.returncode == Exit.PROBLEM
    one_line_error(done, "STORAGE_UNAVAILABLE")
    assert notes.read_text() == "shopping list\n" * 100


def into_a_closed_pipe(cwd: Path, args: list[str]) -> subprocess.CompletedProcess[str]:
    """``ledger … | head -1`` where the reader is gone before the first line; the run must
    be quiet about it."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            ledger_argv(*args),
            cwd=cwd,
            env=clean_env(),
            stdin=subprocess.DEVNULL,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=TIMEOUT_S,
            check=False,
        )
    finally:
        os.close(write_end)
    for noise in ("Traceback", "BrokenPipe", "Broken pipe", "Exception ignored"):
        assert noise not in done.stderr
    return done


def piped_into_head(cwd: Path, args: list[str], head: str) -> subprocess.CompletedProcess[str]:
    """``ledger ARGS | head HEAD`` in bash; the exit code is ledger's."""
    done = in_bash(cwd, f"{' '.join(ledger_argv(*args))} | head {head}; exit ${{PIPESTATUS[0]}}")
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr
    return done


@pytest.mark.parametrize("name", each(ENDING))
def test_a_closed_pipe_on_stdout_ends_quietly(name: str, tmp_path: Path) -> None:
    done = into_a_closed_pipe(tmp_path, prepare(tmp_path, name))
    assert done.returncode in {int(e) for e in Exit}, done.stderr


def test_status_piped_into_head_prints_its_first_line_and_exits_quietly(tmp_path: Path) -> None:
    assert run(tmp_path, ["projections", "run", "--once"]).returncode == Exit.OK  # makes it
    done = piped_into_head(tmp_path, ["projections", "status"], "-c 5")
    assert done.stdout == "head "


@pytest.mark.parametrize(
    "delay_s",
    [0.15, pytest.param(0.6, marks=pytest.mark.slow)],  # once loaded: the slow run
)
@pytest.mark.parametrize("name", each(SUBCOMMANDS))
def test_ctrl_c_in_the_first_second_is_one_line_and_exit_130(
    name: str, delay_s: float, tmp_path: Path
) -> None:
    process = subprocess.Popen(
        ledger_argv(*prepare(tmp_path, name)),
        cwd=tmp_path,
        env=clean_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(delay_s)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=TIMEOUT_S)
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr
    if delay_s < 0.2:  # still loading: the interrupt always lands
        assert process.returncode == Exit.INTERRUPTED
    if process.returncode == Exit.INTERRUPTED:
        assert stderr.strip().splitlines()[-1:] == ["ledger: interrupted"], stderr
        assert len(stderr.strip().splitlines()) == 1, stderr


# -- what a newcomer reaches for ---------------------------------------------------------------


def test_version_prints_the_package_version(tmp_path: Path) -> None:
    done = run(tmp_path, ["--version"])
    assert done.returncode == Exit.OK
    assert done.stdout.startswith("ledger 0.") and done.stdout.count("\n") == 1


def test_the_quickstart_path_demo_then_the_next_commands_as_printed_see_what_it_wrote(
    tmp_path: Path,
) -> None:
    """The README's ``.venv/bin/ledger demo``, with ``ledger`` not on PATH: the next commands
    it prints run as printed."""
    venv = Path(sys.executable).parent.parent
    assert (venv / "bin" / "ledger").exists(), "the quickstart installs the console script"
    (tmp_path / ".venv").symlink_to(venv)
    path = ":".join(p for p in os.environ["PATH"].split(":") if Path(p) != venv / "bin")
    demo = in_bash(tmp_path, ".venv/bin/ledger demo --orders 40 --seed 3", PATH=path)
    assert demo.returncode == Exit.OK, demo.stderr
    printed = [line for line in demo.stdout.splitlines() if line.startswith("next: ")]
    assert printed == [
        "next: .venv/bin/ledger projections run --once, then .venv/bin/ledger projections status"
    ]
    for command in printed[0].removeprefix("next: ").split(", then "):
        done = in_bash(tmp_path, command, PATH=path)
        assert done.returncode == Exit.OK, (command, done.stderr)
    status = run(tmp_path, ["projections", "status", "--json"])
    report = orjson.loads(status.stdout)
    assert report["head"] > 0 and all(p["lag_events"] == 0 for p in report["projections"])
    assert [p.name for p in (tmp_path / "var").glob("*.db")] == ["ledger.db"]


def test_demo_fresh_writes_its_own_file_and_names_it_in_the_next_commands(
    tmp_path: Path,
) -> None:
    demo = run(tmp_path, ["demo", "--orders", "1", "--seed", "4", "--fresh"])
    assert demo.returncode == Exit.OK, demo.stderr
    assert (tmp_path / "var" / "demo-4-1.db").exists()
    assert not (tmp_path / "var" / "ledger.db").exists()
    assert "--database-url sqlite:///var/demo-4-1.db" in demo.stdout


def test_order_show_gives_state_and_events_with_personal_fields_sealed(tmp_path: Path) -> None:
    from ledger.demo.traffic import personal_strings

    seed, orders = 5, 40
    assert run(tmp_path, ["demo", "--orders", str(orders), "--seed", str(seed)]).returncode == 0
    assert run(tmp_path, ["projections", "run", "--once"]).returncode == Exit.OK
    order_no = f"demo{seed}-000003"
    shown = run(tmp_path, ["order", "show", order_no, "--json"])
    assert shown.returncode == Exit.OK, shown.stderr
    report = orjson.loads(shown.stdout)
    assert report["state"]["order_no"] == order_no
    assert report["events"][0]["event"] == "OrderSubmitted"
    assert [e["version"] for e in report["events"]] == list(range(1, len(report["events"]) + 1))
    text = run(tmp_path, ["order", "show", order_no])
    assert text.returncode == Exit.OK and f"order {order_no}" in text.stdout
    people = personal_strings(seed, orders)
    assert not [s for s in people if s in shown.stdout or s in text.stdout]

    # ``| head -1``: the first line, then quiet; a reader gone before it is exit 1 (README)
    assert piped_into_head(tmp_path, ["order", "show", order_no], "-1").stdout == (
        f"order {order_no}\n"
    )
    for args in (["order", "show", order_no], ["order", "show", order_no, "--json"]):
        closed = into_a_closed_pipe(tmp_path, args)
        assert (closed.returncode, closed.stderr) == (Exit.PROBLEM, "")


def test_order_show_of_an_unknown_order_is_not_found(tmp_path: Path) -> None:
    assert run(tmp_path, ["projections", "run", "--once"]).returncode == Exit.OK  # makes it
    done = run(tmp_path, ["order", "show", "NO-SUCH"])
    assert done.returncode == Exit.PROBLEM
    one_line_error(done, "NOT_FOUND")


def test_commands_lists_every_type_and_the_refund_id_initiate_refund_returns(
    tmp_path: Path,
) -> None:
    from ledger.commands import COMMAND_TYPES
    from ledger.importer import import_line_schema

    listed = run(tmp_path, ["commands"])
    assert listed.returncode == Exit.OK
    names = {line for line in listed.stdout.splitlines() if not line.startswith(" ")}
    assert set(COMMAND_TYPES) <= names
    after_refund = listed.stdout.split("\ninitiate_refund\n", 1)[1].split("\n")
    assert "    result: refund_id" in after_refund
    schema = run(tmp_path, ["commands", "--json-schema"])
    assert orjson.loads(schema.stdout) == import_line_schema()


def test_commands_shows_date_times_with_their_bounds_and_the_import_lines_at(
    tmp_path: Path,
) -> None:
    listed = run(tmp_path, ["commands"]).stdout.splitlines()
    bounds = (
        "RFC 3339 date-time with offset, from 2000-01-01T00:00:00Z to before 2100-01-01T00:00:00Z"
    )
    assert f"  * valid_from: {bounds}" in listed
    assert f"    estimated_delivery: {bounds} | null" in listed
    assert not [line for line in listed if "_from: string" in line or "_until: string" in line]
    at = [line for line in listed if line.startswith("    at: ")]
    assert len(at) == 1 and "2000-01-01T00:00:00Z to now plus 5 minutes" in at[0]


def test_an_import_file_opening_with_a_byte_order_mark_imports_its_first_line(
    tmp_path: Path,
) -> None:
    lines = [b.submit("BOM-1"), b.pay("BOM-1")]
    body = b"".join(orjson.dumps(line) + b"\n" for line in lines)
    (tmp_path / "bom.jsonl").write_bytes(b"\xef\xbb\xbf" + body)
    done = run(tmp_path, ["import", "bom.jsonl", "--json"])
    assert done.returncode == Exit.OK, done.stderr
    report = orjson.loads(done.stdout)
    assert (report["imported"], report["rejected"]) == (2, 0)


def test_database_url_wins_over_the_environment(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.db"
    demo = run(tmp_path, ["demo", "--orders", "1", "--database-url", f"sqlite:///{elsewhere}"])
    assert demo.returncode == Exit.OK, demo.stderr
    done = run(
        tmp_path,
        ["projections", "status", "--json", "--database-url", f"sqlite:///{elsewhere}"],
        LEDGER_DATABASE_URL="postgresql://postgres@127.0.0.1:1/ledger",
    )
    assert done.returncode == Exit.OK, done.stderr
    assert orjson.loads(done.stdout)["head"] > 0


def test_a_malformed_database_url_option_is_named_as_the_option(tmp_path: Path) -> None:
    done = run(tmp_path, ["projections", "status", "--database-url", "mysql://db"])
    assert done.returncode == Exit.USAGE
    assert "--database-url: " in one_line_error(done, "INVALID_COMMAND")


@pytest.mark.parametrize("name", each(WITH_DATABASE))
def test_an_empty_database_url_option_is_refused_naming_it_and_makes_nothing(
    name: str, tmp_path: Path
) -> None:
    """``--database-url ''`` is a mistake, not "unset": it would silently read the default."""
    args = prepare(tmp_path, name)
    before = sorted(p.name for p in tmp_path.iterdir())
    done = run(tmp_path, [*args, "--database-url", ""])
    assert done.returncode == Exit.USAGE
    assert "--database-url: is empty" in one_line_error(done, "INVALID_COMMAND")
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_a_postgres_scheme_url_opens_the_same_database_as_postgresql(
    tmp_path: Path, pg_url: str
) -> None:
    assert pg_url.startswith("postgresql://")
    short = "postgres://" + pg_url.removeprefix("postgresql://")
    assert run(tmp_path, ["projections", "run", "--once", "--database-url", pg_url]).returncode == 0
    done = run(tmp_path, ["projections", "status", "--json", "--database-url", short])
    assert done.returncode == Exit.OK, done.stderr
    assert orjson.loads(done.stdout)["head"] == 0
