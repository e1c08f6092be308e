"""Smoke test of ``python -m bench.export``: a tiny run, the shape of its JSON lines (not
speed), and no scratch database left behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.bench_run import run_bench, scratch_left

# A bench run is a minute of real processes: checked in the slow run, not the default one.
pytestmark = pytest.mark.slow
REPEAT = 2


def test_a_tiny_run_prints_every_phase_then_the_result_line(
    pg_server_url: str, tmp_path: Path
) -> None:
    args = ["--orders", "30", "--repeat", str(REPEAT)]
    records = run_bench("bench.export", args, pg_server_url, tmp_path)
    assert all(r["bench"] == "export" for r in records)
    assert [r.get("phase") for r in records] == [*(["ours", "limit"] * REPEAT), None]
    result = records[-1]
    assert result["unit"] == "records/s" and result["records"] > 0
    for name in ("ours", "limit", "peak_rss_mb"):
        assert isinstance(result[name], float) and result[name] > 0, name
    assert scratch_left(pg_server_url, "bench_export_") == 0
