"""Smoke test of ``python -m bench.ingest``: a tiny run, the shape of its JSON lines (not speed),
and no scratch database left behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import psycopg
import pytest

TIMEOUT_S = 300
RATES = ("ours", "baseline", "limit")

# A bench run is a minute of real processes: checked in the slow run, not the default one.
pytestmark = pytest.mark.slow


def test_a_tiny_run_prints_phases_then_the_result_line(pg_server_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "LEDGER_DATABASE_URL": pg_server_url}
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.ingest", "--orders", "4", "--batch-size", "3"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stdout, stderr = process.communicate(timeout=TIMEOUT_S)
    assert process.returncode == 0, stderr

    records = [orjson.loads(line) for line in stdout.splitlines()]
    assert all(r["bench"] == "ingest" for r in records)
    assert [r.get("phase") for r in records] == ["workload", "ours", "baseline", "limit", None]
    result = records[-1]
    for name in RATES:
        assert isinstance(result[name], float) and result[name] > 0, name
    assert result["unit"] == "events/s"
    assert result["ours_vs_limit"] == pytest.approx(result["ours"] / result["limit"], rel=0.01)
    assert result["ours_vs_baseline"] == pytest.approx(
        result["ours"] / result["baseline"], rel=0.02, abs=0.01
    )
    assert result["events"] > 0 and result["problems"] == []
    phases = {r["phase"]: r for r in records[1:-1]}
    assert {phases[name]["events"] for name in RATES} == {result["events"]}, "counted alike"
    assert result["orders"] == 4 and result["batch_size"] == 3

    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        left = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s",
            (f"bench_ingest_{process.pid}_%",),
        ).fetchall()
    assert left == [], "scratch databases must be dropped"


def test_it_refuses_sqlite(tmp_path: Path) -> None:
    env = {**os.environ, "LEDGER_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    run = subprocess.run(
        [sys.executable, "-m", "bench.ingest", "--orders", "1"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert run.returncode == 2
    assert "needs PostgreSQL" in run.stderr
