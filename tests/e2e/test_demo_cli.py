"""`ledger demo` through the real command line, in a subprocess, on the embedded SQLite.

Each run works in a temporary directory, so its ``./var/ledger.db`` (or with ``--fresh`` its
``./var/demo-<seed>-<orders>.db``) lands there.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path
from typing import Any

import orjson
import pytest

from ledger.commands import parse_command
from ledger.demo.traffic import (
    MIN_ORDERS_FOR_EVERY_PATH,
    SCENES,
    generate_traffic,
    personal_strings,
)

SEED, ORDERS = 7, 60
# Keys of the --json object that vary between runs (documented in cli/demo.py).
VARYING_KEYS = ("timing", "run")
# Every closure ground the traffic drives, with the clause it must be recorded under.
CLOSED_STATES = {
    "closed: payment_deadline (3.1.3)",
    "closed: user_cancel (3.1.2)",
    "closed: stock_shortage (3.1.4)",
    "closed: delivery_refused (3.2.3)",
    "closed: no_answer (3.2.4(2))",
    "closed: bad_address (3.2.4(1))",
    "closed: abnormal_order (3.1.6)",
    "closed: account_restricted (6.1)",
    "closed: mutual_termination (3.1.2)",
}
# Refusals the rules must answer with, each under its clause.
REFUSALS = {
    ("PURCHASE_LIMIT_EXCEEDED", "3.1.5"),
    ("ACCOUNT_RESTRICTED", "6.1"),
    ("REFUSAL_THRESHOLD_NOT_MET", "6.1(5)"),
    ("DISPOSITION_NOT_CLOSE", "6.2"),
    ("PROMOTION_NOT_ACTIVE", "3.1.10"),
    ("ENTITLEMENT_ALREADY_CONSUMED", "3.1.11"),
    ("TWO_CALLS_REQUIRED", "3.2.4(2)"),
    ("FLAG_NOT_REVIEWED", "PIPL 24"),
    ("FLAG_DISMISSED", "3.1.6"),
    ("ALREADY_DELIVERED", "3.1.6"),
    ("NOT_PAID", "3.1.3"),
    ("PAYMENT_DEADLINE_PASSED", "3.1.3"),
    ("CONTRACT_ALREADY_FORMED", "3.1.2"),
    ("SHORTAGE_UNRESOLVED", "3.1.4"),
    ("USER_CONSENT_REQUIRED", "3.1.7"),
    ("RETURN_WINDOW_CLOSED", "CPL 25"),
    ("GROUP_PURCHASE_NO_REASON_RETURN", "3.3.2"),
    ("OUTSIDE_MAINLAND", "3.3.3"),
    ("OVER_REFUND", "3.1.4"),
    ("TRANSACTION_NOT_COMPLETE", "ECL 31"),
}


def ledger_command() -> list[str]:
    """The venv's ``ledger`` console script, or the same entry point through the interpreter."""
    script = Path(sys.executable).with_name("ledger")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from cli import main; sys.exit(main())"]


def run_cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    env["LEDGER_LOG_LEVEL"] = "WARNING"
    return subprocess.run(
        [*ledger_command(), "demo", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def run_json(cwd: Path) -> dict[str, Any]:
    done = run_cli(cwd, "--orders", str(ORDERS), "--seed", str(SEED), "--json", "--fresh")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1, "--json prints exactly one JSON object"
    summary: dict[str, Any] = orjson.loads(lines[0])
    return summary


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, Any]]:
    """The same seed twice in one directory: the second run starts from a fresh file again."""
    cwd = tmp_path_factory.mktemp("demo")
    first = run_json(cwd)
    second = run_json(cwd)
    assert stored_events(cwd / "var" / f"demo-{SEED}-{ORDERS}.db") == second["events_written"]
    return first, second


def stored_events(path: Path) -> int:
    """Rows in the file's events table: the second run's alone, since it starts afresh."""
    with closing(sqlite3.connect(path)) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        (table,) = [name for name in names if name.endswith("events")]
        (count,) = conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()
    return int(count)


def deterministic(summary: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in summary.items() if k not in VARYING_KEYS}


def test_same_seed_gives_the_same_summary(two_runs: tuple[dict[str, Any], dict[str, Any]]) -> None:
    first, second = two_runs
    assert deterministic(first) == deterministic(second)
    assert first["timing"]["elapsed_s"] > 0
    assert first["run"]["run_id"] == f"demo{SEED}"


def test_every_scenario_kind_runs(two_runs: tuple[dict[str, Any], dict[str, Any]]) -> None:
    summary = two_runs[0]
    assert ORDERS >= MIN_ORDERS_FOR_EVERY_PATH
    assert set(summary["scenarios"]) == set(SCENES)
    assert all(n >= 1 for n in summary["scenarios"].values())
    assert sum(summary["scenarios"].values()) <= ORDERS


def test_every_outcome_is_the_one_the_rules_predict(
    two_runs: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    commands = two_runs[0]["commands"]
    assert commands["unexpected"] == 0
    assert commands["duplicates"] == 0
    assert commands["accepted"] > commands["refused"] > 0
    assert commands["total"] == commands["accepted"] + commands["refused"]


def test_final_states_cover_every_path(two_runs: tuple[dict[str, Any], dict[str, Any]]) -> None:
    summary = two_runs[0]
    states = summary["final_states"]
    assert set(states) >= CLOSED_STATES
    assert {"delivered", "returned", "never submitted (refused at submission)"} <= set(states)
    assert sum(v["orders"] for v in states.values()) == ORDERS
    # Every story runs to its end: each submitted order's transaction completes (ECL 31).
    submitted = ORDERS - states["never submitted (refused at submission)"]["orders"]
    assert summary["transactions_completed"] == submitted


def test_refusals_are_counted_per_code_with_their_clause(
    two_runs: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    summary = two_runs[0]
    counted = {(r["code"], r["clause"]): r["count"] for r in summary["refusals"]}
    assert set(counted) >= REFUSALS
    assert counted[("PURCHASE_LIMIT_EXCEEDED", "3.1.5")] == 2
    assert sum(counted.values()) == summary["commands"]["refused"]


def test_money_entitlements_and_events(two_runs: tuple[dict[str, Any], dict[str, Any]]) -> None:
    summary = two_runs[0]
    money = summary["money_fen"]
    assert money["paid"] > money["refunded"] > 0
    assert money["gift_charges"] > 0
    assert money["kept"] == money["paid"] - money["refunded"]
    assert money["refunds_outstanding"] == 0
    assert money["unpaid_on_open_orders"] == 0
    assert all(isinstance(v, int) for v in money.values())
    codes = summary["entitlements"]
    assert codes["issued"] >= codes["consumed"] > 0
    assert codes["forfeited"] > 0 and codes["restored"] > 0
    assert summary["events_written"] > summary["commands"]["accepted"]


def test_human_summary_shows_no_personal_data(tmp_path: Path) -> None:
    orders = MIN_ORDERS_FOR_EVERY_PATH
    done = run_cli(tmp_path, "--orders", str(orders), "--seed", "5")
    assert done.returncode == 0, done.stderr
    for heading in ("Final order states", "Refusals", "Money", "Events written", "Elapsed"):
        assert heading in done.stdout
    assert "PURCHASE_LIMIT_EXCEEDED" in done.stdout
    output = done.stdout + done.stderr
    leaked = sorted(s for s in personal_strings(5, orders) if s in output)
    assert not leaked, f"{len(leaked)} personal strings printed"


def test_bad_usage_exits_2(tmp_path: Path) -> None:
    done = run_cli(tmp_path, "--orders", "0")
    assert done.returncode == 2


def test_generated_traffic_is_deterministic_valid_and_in_time_order() -> None:
    first = list(generate_traffic(45, 3))
    assert first == list(generate_traffic(45, 3))
    assert first != list(generate_traffic(45, 4))
    times = [at for _, at in first]
    assert times == sorted(times)
    assert all(at.tzinfo is not None for at in times)
    for command, _ in first:
        orjson.dumps(command)  # JSON-ready, for a JSONL workload
        parse_command(command)
    ids = [command["command_id"] for command, _ in first]
    assert len(ids) == len(set(ids))


# -- two runs at once ---------------------------------------------------------------------------
CONCURRENT_ORDERS = 40


def start_demo(cwd: Path, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    env["LEDGER_LOG_LEVEL"] = "WARNING"
    return subprocess.Popen(
        [*ledger_command(), "demo", "--orders", str(CONCURRENT_ORDERS), "--json", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def both_succeed(runs: list[subprocess.Popen[str]]) -> list[dict[str, Any]]:
    summaries = []
    for run in runs:
        out, err = run.communicate(timeout=600)
        assert run.returncode == 0, err
        summaries.append(orjson.loads(out))
    return summaries


def test_two_demos_at_once_into_one_database_take_different_runs_and_both_succeed(
    backend: str, tmp_path: Path
) -> None:
    runs = [start_demo(tmp_path, "--seed", "3", "--database-url", backend) for _ in range(2)]
    first, second = both_succeed(runs)
    assert {first["run"]["run_id"], second["run"]["run_id"]} == {"demo3", "demo3r2"}
    assert first["commands"]["unexpected"] == second["commands"]["unexpected"] == 0
    assert deterministic(first) == deterministic(second)
    third = both_succeed([start_demo(tmp_path, "--seed", "3", "--database-url", backend)])[0]
    assert third["run"]["run_id"] == "demo3r3" and deterministic(third) == deterministic(first)


def test_two_fresh_demos_at_once_in_one_directory_both_succeed_and_leave_one_whole_file(
    tmp_path: Path,
) -> None:
    runs = [start_demo(tmp_path, "--seed", "4", "--fresh") for _ in range(2)]
    first, second = both_succeed(runs)
    assert first["commands"]["unexpected"] == second["commands"]["unexpected"] == 0
    assert deterministic(first) == deterministic(second)
    assert first["run"]["run_id"] == second["run"]["run_id"] == "demo4"
    path = tmp_path / "var" / f"demo-4-{CONCURRENT_ORDERS}.db"
    assert stored_events(path) == first["events_written"]
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # nothing left over


def test_the_next_commands_name_the_demos_database_without_its_password(
    tmp_path: Path, backend: str
) -> None:
    scheme, _, rest = backend.partition("://")
    user, at, host = rest.partition("@")
    given = f"{scheme}://{user}:s3cret{at}{host}" if at else backend  # trust auth ignores it
    done = run_cli(tmp_path, "--orders", "3", "--seed", "5", "--database-url", given)
    assert done.returncode == 0, done.stderr
    assert "s3cret" not in done.stdout + done.stderr
    assert f"projections run --once --database-url {backend}," in done.stdout
    assert ("password is left out" in done.stdout) == bool(at)
