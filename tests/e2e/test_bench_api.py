"""Smoke test of ``python -m bench.api``: a tiny run against real ``ledger serve`` processes,
the shape of its JSON lines (not speed), shared transactions only with group commit on, and
no scratch database left behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import psycopg
import pytest

from bench.api import COMMANDS_PER_ORDER, WARMUP_ORDERS

TIMEOUT_S = 300
COMMANDS = 8

# A bench run is a minute of real processes: checked in the slow run, not the default one.
pytestmark = pytest.mark.slow


def test_a_tiny_run_prints_each_run_then_the_two_result_lines(
    pg_server_url: str, tmp_path: Path
) -> None:
    env = {**os.environ, "LEDGER_DATABASE_URL": pg_server_url}
    args = ["--commands", str(COMMANDS), "--clients", "4", "--repeats", "1"]
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.api", *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stdout, stderr = process.communicate(timeout=TIMEOUT_S)
    assert process.returncode == 0, stderr

    records = [orjson.loads(line) for line in stdout.splitlines()]
    assert [(r["bench"], r.get("phase")) for r in records] == [
        ("api", "workload"),
        ("api", "ours"),
        ("api", "baseline"),
        ("api", "summary"),
        ("api_commands", None),
        ("api_latency", None),
    ]
    ours, baseline, summary, commands, latency = records[1:]
    for run in (ours, baseline):
        assert run["commands"] == COMMANDS and run["failed"] == 0
        assert run["commands_per_s"] > 0 and 0 < run["p50_ms"] <= run["p99_ms"]
    assert ours["events"] == baseline["events"] > 0  # the same commands, the same rows
    # Switched off, every command had its own transaction (the warm-up's too, and the key's).
    sent = COMMANDS + WARMUP_ORDERS * COMMANDS_PER_ORDER
    assert baseline["transactions"] == sent + 1
    assert ours["transactions"] <= sent + 1
    assert summary["problems"] == [] and summary["workers"] == 1
    assert set(commands) == {"bench", "ours", "baseline", "unit"}
    assert commands["unit"] == "commands/s"
    assert (commands["ours"], commands["baseline"]) == (
        ours["commands_per_s"],
        baseline["commands_per_s"],
    )
    assert set(latency) == {"bench", "p50_ms", "p99_ms", "baseline_p99_ms"}
    assert latency["baseline_p99_ms"] == baseline["p99_ms"]

    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        left = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s",
            (f"bench_api_{process.pid}_%",),
        ).fetchall()
    assert left == [], "scratch databases must be dropped"


def test_it_refuses_sqlite(tmp_path: Path) -> None:
    env = {**os.environ, "LEDGER_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    run = subprocess.run(
        [sys.executable, "-m", "bench.api", "--commands", "2"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert run.returncode == 2
    assert "needs PostgreSQL" in run.stderr
