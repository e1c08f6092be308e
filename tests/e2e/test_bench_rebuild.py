"""Smoke test of ``python -m bench.rebuild``: a tiny run, the shape of its JSON lines (not
speed), and no scratch database left behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import psycopg
import pytest

from projections.parallel import DEFAULT_JOBS
from projections.registry import PROJECTIONS

TIMEOUT_S = 300
RATES = ("ours", "baseline", "limit")
REPEAT = 2

# A bench run is a minute of real processes: checked in the slow run, not the default one.
pytestmark = pytest.mark.slow


def test_a_tiny_run_prints_every_phase_then_the_result_line(
    pg_server_url: str, tmp_path: Path
) -> None:
    env = {**os.environ, "LEDGER_DATABASE_URL": pg_server_url}
    args = ["--orders", "12", "--baseline-events", "40", "--repeat", str(REPEAT)]
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.rebuild", *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stdout, stderr = process.communicate(timeout=TIMEOUT_S)
    assert process.returncode == 0, stderr

    records = [orjson.loads(line) for line in stdout.splitlines()]
    assert all(r["bench"] == "rebuild" for r in records)
    assert [r.get("phase") for r in records] == [
        "ours",  # the first half of the log
        *(["ours", "ours_one_process", "limit"] * REPEAT),
        "baseline",
        None,
    ]
    result = records[-1]
    for name in RATES:
        assert isinstance(result[name], float) and result[name] > 0, name
    assert result["unit"] == "events/s"
    # Ratios are rounded to 3 decimals.
    ratio = result["ours"] / result["limit"]
    assert result["ours_vs_limit"] == pytest.approx(ratio, rel=0.01, abs=0.0005)
    assert result["ours_vs_baseline"] == pytest.approx(
        result["ours"] / result["baseline"], rel=0.02, abs=0.01
    )
    assert result["events"] > result["events_half_log"] > 0
    assert 0 < result["baseline_events"] <= result["events"]
    assert result["jobs"] == min(DEFAULT_JOBS, len(PROJECTIONS)) and result["repeat"] == REPEAT
    assert all(len(runs) == REPEAT for runs in result["runs"].values())
    assert sorted(result["runs"]["ours"])[0] <= result["ours"] <= max(result["runs"]["ours"])
    assert result["peak_rss_mb"] > 0 and result["orders"] == 12

    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        left = conn.execute(
            "SELECT datname FROM pg_database WHERE datname = %s",
            (f"bench_rebuild_{process.pid}",),
        ).fetchall()
    assert left == [], "the scratch database must be dropped"
