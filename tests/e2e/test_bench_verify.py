"""Smoke test of ``python -m bench.verify``: a tiny run, the shape of its JSON lines (not
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
    args = ["--orders", "60", "--extra-orders", "5", "--steps", "3", "--repeat", str(REPEAT)]
    records = run_bench("bench.verify", args, pg_server_url, tmp_path)
    assert all(r["bench"] == "verify" for r in records)
    phases = [r.get("phase") for r in records]
    assert phases == ["ours", "ours", *(["ours", "limit"] * REPEAT), None]
    result = records[-1]
    assert result["unit"] == "events/s"
    for name in ("ours", "limit", "peak_rss_mb"):
        assert isinstance(result[name], float) and result[name] > 0, name
    rows = [size["events"] for size in result["sizes"]]
    assert 0 < rows[0] < rows[1] < rows[2] == result["events"]
    assert all(size["peak_rss_mb"] > 0 for size in result["sizes"])
    for seal in (result["seal_at_first_size"], result["seal_at_full_log"]):
        assert seal["appended"] > 0 and seal["seal_s"] > 0
    assert scratch_left(pg_server_url, "bench_verify_") == 0
