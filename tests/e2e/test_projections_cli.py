"""``ledger projections run|status|rebuild|check`` through a real subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ledger.application import Ledger, open_ledger
from ledger.clock import ManualClock
from projections.workload import run_traffic, traffic

ROOT = Path(__file__).resolve().parents[2]
LEDGER = ["-c", "import sys; from ledger.cli import main; sys.exit(main())"]


@pytest.fixture
def written(backend: str, clock: ManualClock) -> Iterator[Ledger]:
    ledger = open_ledger(backend, clock=clock)
    run_traffic(ledger, traffic(40, seed=2))
    try:
        yield ledger
    finally:
        ledger.close()


def env_for(url: str) -> dict[str, str]:
    return {**os.environ, "LEDGER_DATABASE_URL": url, "LEDGER_LOG_LEVEL": "INFO"}


def ledger_cli(url: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *LEDGER, "projections", *args],
        cwd=ROOT,
        env=env_for(url),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def status(url: str) -> dict[str, Any]:
    done = ledger_cli(url, "status", "--json")
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def test_status_run_check_rebuild(backend: str, written: Ledger) -> None:
    head = written.head_position()
    before = status(backend)
    assert before["head"] == head
    assert {p["name"]: p["lag_events"] for p in before["projections"]} == dict.fromkeys(
        ["orders", "entitlements", "limits", "flags", "payments", "retention"], head
    )
    assert all(p["lag_seconds"] > 0 for p in before["projections"])

    done = ledger_cli(backend, "run", "--once")
    assert done.returncode == 0, done.stderr
    after = status(backend)
    assert all(p["position"] == head and p["lag_events"] == 0 for p in after["projections"])
    assert all(p["lag_seconds"] == 0 and p["last_batch_at"] for p in after["projections"])
    table = ledger_cli(backend, "status")
    assert table.returncode == 0 and "lag events" in table.stdout and "orders" in table.stdout

    done = ledger_cli(backend, "check")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count(": same") == 6

    done = ledger_cli(backend, "rebuild", "orders", "payments")
    assert done.returncode == 0, done.stderr
    assert "rebuilt orders, payments" in done.stdout
    assert "ev/s" in done.stderr  # the progress bar: rate and ETA


def test_check_prints_differences_and_exits_1(backend: str, written: Ledger) -> None:
    assert ledger_cli(backend, "run", "--once").returncode == 0
    tamper(backend, "UPDATE pj_entitlements SET status = 'tampered'")
    done = ledger_cli(backend, "check", "entitlements", "--json")
    assert done.returncode == 1, done.stderr
    (result,) = json.loads(done.stdout)
    assert result["name"] == "entitlements" and result["differences"] > 0
    note = result["tables"][0]["shown"][0]
    assert note["problem"] == "differs" and note["columns"]["status"]["live"] == "tampered"

    human = ledger_cli(backend, "check", "entitlements")
    assert human.returncode == 1 and "difference(s)" in human.stdout
    assert ledger_cli(backend, "rebuild", "entitlements", "--no-progress").returncode == 0
    assert ledger_cli(backend, "check", "entitlements").returncode == 0


def tamper(url: str, statement: str) -> None:
    from projections.engine import open_db

    db = open_db(url)
    try:
        with db.write() as cur:
            cur.execute(statement)
    finally:
        db.close()


def test_run_stops_cleanly_on_sigterm(backend: str, written: Ledger) -> None:
    stop_cleanly(backend, signal.SIGTERM)


def test_run_stops_cleanly_on_sigint(tmp_path: Path, clock: ManualClock) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    ledger = open_ledger(url, clock=clock)
    try:
        run_traffic(ledger, traffic(20, seed=4))
    finally:
        ledger.close()
    stop_cleanly(url, signal.SIGINT)


def stop_cleanly(backend: str, stop_with: signal.Signals) -> None:
    worker = subprocess.Popen(
        [sys.executable, *LEDGER, "projections", "run", "--batch-size", "5", "--idle", "30"],
        cwd=ROOT,
        env=env_for(backend),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and status(backend)["projections"][0]["position"] == 0:
        time.sleep(0.05)
    worker.send_signal(stop_with)
    _, err = worker.communicate(timeout=20)
    assert worker.returncode == 0, err
    assert "finishing the current batch" in err and "stopped at position" in err


def test_bad_usage_exits_2(tmp_path: Path) -> None:
    done = ledger_cli(f"sqlite:///{tmp_path / 'ledger.db'}", "rebuild", "no-such-projection")
    assert done.returncode == 2
    assert "unknown projection no-such-projection" in done.stderr


def test_ctrl_c_stops_a_rebuild_and_its_processes_and_swaps_nothing(
    pg_url: str, clock: ManualClock
) -> None:
    from projections.engine import open_runtime

    ledger = open_ledger(pg_url, clock=clock)
    try:
        run_traffic(ledger, traffic(120, seed=6))
    finally:
        ledger.close()
    assert ledger_cli(pg_url, "run", "--once").returncode == 0
    rt = open_runtime(pg_url)
    try:
        before = generations(rt)
        rebuilding = subprocess.Popen(
            [
                sys.executable,
                *LEDGER,
                "projections",
                "rebuild",
                "--no-progress",
                "--batch-size",
                "1",
            ],
            cwd=ROOT,
            env=env_for(pg_url),
            stdin=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its own process group, as a terminal's foreground job
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and build_position(rt, "orders") == 0:
            time.sleep(0.02)
        assert build_position(rt, "orders") > 0, "the building processes never started"
        os.killpg(rebuilding.pid, signal.SIGINT)  # what Ctrl-C sends: the whole group
        _, err = rebuilding.communicate(timeout=30)
        assert rebuilding.returncode == 130, err
        assert "ledger: interrupted" in err and "Traceback" not in err
        assert group_is_gone(rebuilding.pid), "a building process outlived the rebuild"
        assert generations(rt) == before  # nothing was swapped in
    finally:
        rt.close()


def generations(rt: Any) -> list[tuple[str, str]]:
    with rt.db.snapshot() as cur:
        cur.execute("SELECT projection, generation FROM pj_meta ORDER BY projection")
        return [tuple(row) for row in cur.fetchall()]


def build_position(rt: Any, projection: str) -> int:
    name = f"ledger:{projection}__b"
    with rt.db.snapshot() as cur:
        return int(rt.tracking.read(cur, [name]).get(name, 0))


def group_is_gone(pgid: int, timeout_s: float = 10) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_building_processes_stop_when_a_rebuild_is_killed(pg_url: str, clock: ManualClock) -> None:
    from projections.engine import open_runtime

    ledger = open_ledger(pg_url, clock=clock)
    try:
        run_traffic(ledger, traffic(120, seed=7))
    finally:
        ledger.close()
    rt = open_runtime(pg_url)
    try:
        rebuilding = subprocess.Popen(
            [sys.executable, *LEDGER, "projections", "rebuild", "--no-progress"]
            + ["--batch-size", "1"],
            cwd=ROOT,
            env=env_for(pg_url),
            stdin=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and build_position(rt, "orders") == 0:
            time.sleep(0.02)
        assert build_position(rt, "orders") > 0, "the building processes never started"
        rebuilding.kill()  # the parent only, as an OOM killer or kill -9 would
        _, err = rebuilding.communicate(timeout=30)
        assert rebuilding.returncode == -signal.SIGKILL
        assert group_is_gone(rebuilding.pid), "a building process outlived its parent"
        assert "Traceback" not in err
        reached = build_position(rt, "orders")
        assert reached < ledger_head(pg_url), "the orphan went on building"
    finally:
        rt.close()


def ledger_head(url: str) -> int:
    ledger = open_ledger(url)
    try:
        return ledger.head_position()
    finally:
        ledger.close()
