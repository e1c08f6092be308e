"""The worker as a real process: killed with SIGKILL mid-stream, run twice at once, stopped
with SIGTERM. Each time the projections end equal to a rebuild from zero: no event applied
twice (a counter would be off, or an append-only row would collide) and none skipped."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ledger.application import Ledger
from projections.check import check
from projections.engine import Runtime
from projections.freshness import Freshness
from projections.registry import BY_NAME, PROJECTIONS
from projections.worker import Worker
from tests.workload import run_traffic, traffic

ROOT = Path(__file__).resolve().parents[2]
KILLS = 5
PROGRESS_TIMEOUT_S = 30

# Workers killed at random points, two at once: real processes for seconds each, the slow run.
pytestmark = pytest.mark.slow


def start_worker(url: str, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "LEDGER_DATABASE_URL": url, "LEDGER_LOG_LEVEL": "INFO"}
    return subprocess.Popen(
        [sys.executable, "-m", "cli.projections", "run", "--idle", "0.2", *extra],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=log.open("ab"),
    )


def lowest(fresh: Freshness) -> int:
    return min(fresh.positions(list(BY_NAME)).values())


def wait_until(condition: object, timeout_s: float = PROGRESS_TIMEOUT_S) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.01)
    return False


def assert_same_as_rebuild(rt: Runtime, head: int) -> None:
    for result in check(rt, PROJECTIONS):
        assert result.position == head, result.name
        assert result.differences == 0, (result.name, [t.shown for t in result.tables])


def test_a_worker_killed_at_random_points_resumes_exactly(
    ledger: Ledger, rt: Runtime, backend: str, tmp_path: Path
) -> None:
    items = list(traffic(90, seed=21))
    size = len(items) // KILLS + 1
    rng = random.Random(4321)
    fresh = Freshness(rt.db, rt.tracking)
    log = tmp_path / "worker.log"
    killed_mid_stream = 0
    for start in range(0, len(items), size):
        run_traffic(ledger, items[start : start + size], chunk=60)
        before = lowest(fresh)
        worker = start_worker(backend, log, "--batch-size", "3")
        try:
            assert wait_until(lambda: lowest(fresh) > before), log.read_text()  # noqa: B023
            time.sleep(rng.uniform(0.0, 0.2))
        finally:
            worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=10)
        assert worker.returncode == -signal.SIGKILL
        killed_mid_stream += lowest(fresh) < ledger.head_position()
    assert killed_mid_stream >= 2, "most kills should land before the worker caught up"
    Worker(rt, PROJECTIONS).run(threading.Event(), until_caught_up=True)
    fresh.close()
    assert_same_as_rebuild(rt, ledger.head_position())


def test_two_workers_at_once_do_not_corrupt_the_projections(
    ledger: Ledger, rt: Runtime, backend: str, tmp_path: Path
) -> None:
    items = list(traffic(80, seed=8))
    half = len(items) // 2
    run_traffic(ledger, items[:half])
    logs = [tmp_path / "one.log", tmp_path / "two.log"]
    workers = [start_worker(backend, log, "--batch-size", "7") for log in logs]
    fresh = Freshness(rt.db, rt.tracking)
    try:
        for log in logs:  # both running before more arrives, so they do overlap
            assert wait_until(lambda log=log: "running" in log.read_text(), 60), log.read_text()
        run_traffic(ledger, items[half:], chunk=25)  # more arrives while both run
        head = ledger.head_position()
        assert wait_until(lambda: lowest(fresh) >= head, 60), logs[0].read_text()
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)  # finish the batch, then exit cleanly
        codes = [worker.wait(timeout=20) for worker in workers]
        fresh.close()
    assert codes == [0, 0], [log.read_text() for log in logs]
    for log in logs:
        text = log.read_text()
        assert "Traceback" not in text and "stopped at position" in text, text
    assert_same_as_rebuild(rt, ledger.head_position())
