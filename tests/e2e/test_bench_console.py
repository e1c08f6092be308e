"""Smoke test of ``python -m bench.console``: a tiny run, the shape of its JSON lines (not
speed), and no scratch database left behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.bench_run import run_bench, scratch_left

# A bench run is real processes and two imports: checked in the slow run, not the default one.
pytestmark = pytest.mark.slow
PAGES = {"orders_search", "order", "timeline", "integrity", "projections"}


def test_a_tiny_run_prints_every_page_at_both_sizes_then_the_result(
    pg_server_url: str, tmp_path: Path
) -> None:
    tiny = ["--orders", "40", "--steps", "3", "--samples", "3"]
    records = run_bench("bench.console", tiny, pg_server_url, tmp_path)
    pages = [r for r in records if r["bench"] == "console_page"]
    assert {r["page"] for r in pages} == PAGES and len(pages) == 2 * len(PAGES)
    result = records[-1]
    assert result["bench"] == "console"
    assert [s["events"] for s in result["sizes"]] == sorted({r["events"] for r in pages})
    for size in result["sizes"]:
        for figures in size["pages"].values():
            assert 0 < figures["p50_ms"] <= figures["p99_ms"]
    assert scratch_left(pg_server_url, "bench_console_") == 0
