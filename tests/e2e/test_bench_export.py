"""Smoke test of ``python -m bench.export``: a tiny run, the shape of its JSON lines (not
speed), and no scratch database left behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import psycopg
import pytest

TIMEOUT_S = 300
REPEAT = 2

# A bench run is a minute of real processes: checked in the slow run, not the default one.
pytestmark = pytest.mark.slow


def test_a_tiny_run_prints_every_phase_then_the_result_line(
    pg_server_url: str, tmp_path: Path
) -> None:
    env = {**os.environ, "LEDGER_DATABASE_URL": pg_server_url}
    done = subprocess.run(
        [sys.executable, "-m", "bench.export", "--orders", "30", "--repeat", str(REPEAT)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr

    records = [orjson.loads(line) for line in done.stdout.splitlines()]
    assert all(r["bench"] == "export" for r in records)
    assert [r.get("phase") for r in records] == [*(["ours", "limit"] * REPEAT), None]
    result = records[-1]
    assert result["unit"] == "records/s" and result["records"] > 0
    for name in ("ours", "limit", "peak_rss_mb"):
        assert isinstance(result[name], float) and result[name] > 0, name
    with psycopg.connect(pg_server_url) as conn:
        left = conn.execute(
            "SELECT count(*) FROM pg_database WHERE datname LIKE 'bench_export_%'"
        ).fetchone()
    assert left == (0,)
