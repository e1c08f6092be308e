"""``ledger projections run|status|rebuild|check`` through a real subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from cli.exits import Exit
from ledger.application import Ledger
from ledger.clock import ManualClock
from tests.fix_app import opened_ledger, opened_runtime
from tests.workload import run_traffic, traffic

ROOT = Path(__file__).resolve().parents[2]
LEDGER = ["-c", "import sys; from cli import main; sys.exit(main())"]


@pytest.fixture
def written(ledger_app: Ledger) -> Ledger:
    run_traffic(ledger_app, traffic(40, seed=2))
    return ledger_app


def write_traffic(url: str, clock: ManualClock, orders: int, seed: int) -> None:
    with opened_ledger(url, clock) as ledger:
        run_traffic(ledger, traffic(orders, seed=seed))


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
    shown = ledger_cli(backend, "status").stdout  # the check's result is kept
    (line,) = [row for row in shown.splitlines() if row.startswith("entitlements")]
    assert f"difference(s) in entitlements at position {written.head_position()})" in line
    assert "(never checked)" in next(r for r in shown.splitlines() if r.startswith("orders"))
    assert ledger_cli(backend, "rebuild", "entitlements", "--no-progress").returncode == 0
    assert ledger_cli(backend, "check", "entitlements").returncode == 0


def test_run_status_check_and_rebuild_leave_nothing_beside_the_sqlite_database(
    tmp_path: Path, clock: ManualClock
) -> None:
    """Their locks live only while held: no ``*.check.lock`` or ``*.rebuild.lock`` stays."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    write_traffic(url, clock, 20, 5)
    database = {"ledger.db", "ledger.db-wal", "ledger.db-shm"}
    for args in (["run", "--once"], ["status"], ["check"], ["rebuild", "--no-progress"]):
        done = ledger_cli(url, *args)
        assert done.returncode == 0, done.stderr
        left = {path.name for path in tmp_path.iterdir()}
        assert "ledger.db" in left and left <= database, (args, left)


def tamper(url: str, statement: str) -> None:
    from projections.engine import open_db

    db = open_db(url)
    try:
        with db.write() as cur:
            cur.execute(statement)
    finally:
        db.close()


def test_run_stops_cleanly_on_sigterm(backend: str, written: Ledger) -> None:
    """SIGTERM is how a service manager stops the worker: a clean stop, exit 0."""
    stop_cleanly(backend, signal.SIGTERM, Exit.OK)


def test_run_stops_cleanly_on_sigint(tmp_path: Path, clock: ManualClock) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    write_traffic(url, clock, 20, 4)
    stop_cleanly(url, signal.SIGINT, Exit.INTERRUPTED)


def stop_cleanly(backend: str, stop_with: signal.Signals, code: Exit) -> None:
    """The worker finishes its batch and reports where it stopped, then exits with ``code``
    (Ctrl-C: 130, as every interrupted command)."""
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
    assert worker.returncode == code, err
    assert "finishing the current batch" in err and "stopped at position" in err
    assert "Traceback" not in err
    if code == Exit.INTERRUPTED:
        assert err.strip().splitlines()[-1] == "ledger: interrupted"


def test_skip_on_a_projection_that_is_not_stopped_is_a_typed_refusal_exit_1(
    backend: str, written: Ledger
) -> None:
    assert ledger_cli(backend, "run", "--once").returncode == 0
    done = ledger_cli(backend, "skip", "orders", "1")
    assert done.returncode == Exit.PROBLEM, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        "ledger: PROJECTION_NOT_STOPPED: projection orders is not stopped: there is no event "
        "to skip"
    )
    assert status(backend)["projections"][0]["skipped"] == []


def test_bad_usage_exits_2(tmp_path: Path) -> None:
    done = ledger_cli(f"sqlite:///{tmp_path / 'ledger.db'}", "rebuild", "no-such-projection")
    assert done.returncode == 2
    assert done.stderr == (
        "ledger: INVALID_COMMAND: argument NAME: must be one of orders, entitlements, limits, "
        "flags, payments, retention (see ledger projections rebuild --help)\n"
    )


def start_rebuild(url: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, *LEDGER, "projections", "rebuild", "--no-progress", "--batch-size", "1"]
        + list(extra),
        cwd=ROOT,
        env=env_for(url),
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )


def wait_for_building(rt: Any) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and build_position(rt, "orders") == 0:
        time.sleep(0.02)
    assert build_position(rt, "orders") > 0, "the building processes never started"


@pytest.mark.parametrize(
    ("how", "code", "said"),
    [("ctrl-c", 130, "ledger: interrupted"), ("sigterm", 143, "ledger: terminated")],
)
def test_an_interrupted_rebuild_stops_its_processes_swaps_nothing_and_leaves_nothing(
    backend: str, clock: ManualClock, how: str, code: int, said: str
) -> None:
    write_traffic(backend, clock, 360, 6)
    assert ledger_cli(backend, "run", "--once").returncode == 0
    with opened_runtime(backend) as rt:
        before = generations(rt)
        rebuilding = start_rebuild(backend)
        wait_for_building(rt)
        # Frozen, it cannot finish and swap before the signal lands: the test is about an
        # interrupted rebuild, whatever the machine's speed.
        os.killpg(rebuilding.pid, signal.SIGSTOP)
        during = status(backend)["projections"]
        assert all(p["rebuilding"] and not p["rebuild_leftovers"] for p in during)
        if how == "ctrl-c":
            os.killpg(rebuilding.pid, signal.SIGINT)  # what Ctrl-C sends: the whole group
        else:
            rebuilding.terminate()  # `kill PID`: the parent only
        os.killpg(rebuilding.pid, signal.SIGCONT)
        _, err = rebuilding.communicate(timeout=30)
        assert rebuilding.returncode == code, err
        assert said in err and "Traceback" not in err
        assert group_is_gone(rebuilding.pid), "a building process outlived the rebuild"
        assert generations(rt) == before  # nothing was swapped in
        assert copies_left(rt) == []  # it dropped its copies before it exited
        after = status(backend)["projections"]
        assert not any(p["rebuilding"] or p["rebuild_leftovers"] for p in after)
        assert "(rebuilding)" not in ledger_cli(backend, "status").stdout


def copies_left(rt: Any) -> list[str]:
    """A rebuild's copies that exist: tables and tracking rows."""
    from projections.registry import PROJECTIONS
    from projections.schema import BUILD

    found = []
    with rt.db.snapshot() as cur:
        for projection in PROJECTIONS:
            name = f"ledger:{projection.name}{BUILD}"
            found += list(rt.tracking.read(cur, [name]))
            found += [
                t.physical(BUILD)
                for t in projection.tables
                if rt.db.table_exists(cur, t.physical(BUILD))
            ]
    return found


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


@pytest.mark.slow  # 5-13 s of real processes each: CI's 20 minutes
def test_a_killed_rebuild_is_not_reported_as_running_and_its_leftovers_are_removed(
    backend: str, clock: ManualClock
) -> None:
    write_traffic(backend, clock, 120, 7)
    with opened_runtime(backend) as rt:
        rebuilding = start_rebuild(backend)
        wait_for_building(rt)
        rebuilding.kill()  # the parent only, as an OOM killer or kill -9 would
        _, err = rebuilding.communicate(timeout=30)
        assert rebuilding.returncode == -signal.SIGKILL
        assert group_is_gone(rebuilding.pid), "a building process outlived its parent"
        assert "Traceback" not in err
        reached = build_position(rt, "orders")
        assert reached < ledger_head(backend), "the orphan went on building"

        # Its copies are left, but nobody holds the rebuild's lock: status says so.
        assert copies_left(rt)
        rows = status(backend)["projections"]
        assert not any(p["rebuilding"] for p in rows)
        assert all(p["rebuild_leftovers"] for p in rows)
        table = ledger_cli(backend, "status").stdout
        assert "(rebuilding)" not in table and "interrupted rebuild" in table

        # The next worker to start removes them.
        done = ledger_cli(backend, "run", "--once")
        assert done.returncode == 0, done.stderr
        assert "left by an interrupted run" in done.stderr
        assert copies_left(rt) == []
        assert not any(p["rebuild_leftovers"] for p in status(backend)["projections"])


def test_a_rebuild_of_one_projection_removes_every_leftover_of_a_killed_one(
    pg_url: str, clock: ManualClock
) -> None:
    write_traffic(pg_url, clock, 120, 8)
    with opened_runtime(pg_url) as rt:
        rebuilding = start_rebuild(pg_url)
        wait_for_building(rt)
        rebuilding.kill()
        rebuilding.communicate(timeout=30)
        assert group_is_gone(rebuilding.pid)
        assert any("payments" in name for name in copies_left(rt))
        done = ledger_cli(pg_url, "rebuild", "orders", "--no-progress")
        assert done.returncode == 0, done.stderr
        assert copies_left(rt) == []


def ledger_head(url: str) -> int:
    with opened_ledger(url) as ledger:
        return ledger.head_position()


@pytest.mark.slow  # 5-13 s of real processes each: CI's 20 minutes
def test_a_nul_in_a_refusal_reason_stops_only_flags_and_status_says_so(
    pg_url: str, clock: ManualClock
) -> None:
    from tests.integration.test_projections_poison import refusal_written_directly

    with opened_ledger(pg_url, clock) as ledger:
        run_traffic(ledger, traffic(20, seed=12))
        poison = refusal_written_directly(ledger, "a\u0000b")  # past command validation
        run_traffic(ledger, traffic(20, seed=13))
        head = ledger.head_position()

    done = ledger_cli(pg_url, "run", "--once")
    assert done.returncode == 3, done.stderr
    assert f"ledger:flags is stopped at position {poison}" in done.stderr
    shown = ledger_cli(pg_url, "status", "--json")
    assert shown.returncode == 3
    report = json.loads(shown.stdout)
    assert report["stopped"] == ["flags"]
    rows = {p["name"]: p for p in report["projections"]}
    assert all(rows[n]["position"] == head for n in rows if n != "flags")
    assert rows["flags"]["position"] == poison - 1
    halt = rows["flags"]["stopped"]
    assert halt["position"] == poison and "SQLSTATE 22021" in halt["reason"]
    assert "\\u0000" not in shown.stdout and "a\\u0000b" not in done.stderr
    table = ledger_cli(pg_url, "status")
    assert table.returncode == 3 and f"STOPPED at position {poison}" in table.stdout

    checked = ledger_cli(pg_url, "check")  # flags is compared where it stopped
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"flags at position {poison - 1}: same" in checked.stdout

    rebuilt = ledger_cli(pg_url, "rebuild", "--no-progress")
    assert rebuilt.returncode == 3, rebuilt.stderr
    assert "rebuilt orders, entitlements, limits, payments, retention" in rebuilt.stdout
    assert f"not rebuilt flags: stopped at position {poison}" in rebuilt.stdout

    wrong = ledger_cli(pg_url, "skip", "flags", str(poison + 1))
    assert wrong.returncode == 2 and f"stopped at position {poison}" in wrong.stderr
    skipped = ledger_cli(pg_url, "skip", "flags", str(poison))
    assert skipped.returncode == 0, skipped.stderr
    assert ledger_cli(pg_url, "run", "--once").returncode == 0
    after = status(pg_url)
    assert after["stopped"] == [] and {p["position"] for p in after["projections"]} == {head}


# Where in a check's run the signal lands, as fractions of how long an uninterrupted check
# took: in the start-up, the building of the copies, the comparison and the end.
CHECK_INTERRUPTS = [
    (0.3, signal.SIGINT),
    (0.5, signal.SIGTERM),
    (0.7, signal.SIGINT),
    (0.8, signal.SIGTERM),
    (0.9, signal.SIGINT),
    (0.97, signal.SIGTERM),
]


@pytest.mark.slow  # 5-13 s of real processes each: CI's 20 minutes
def test_a_check_interrupted_at_any_moment_ends_quietly(backend: str, clock: ManualClock) -> None:
    """Ctrl-C or SIGTERM anywhere in ``projections check``: its exit code and one line
    (after the log's), never "Exception ignored" from a row stream closed after its
    connection; a check that finished first exits 0. (A signal while Python itself starts or
    shuts down, when no handler of ours is set, ends it by the signal's default action.)"""
    write_traffic(backend, clock, 300, 8)
    assert ledger_cli(backend, "run", "--once").returncode == 0
    started = time.monotonic()
    assert ledger_cli(backend, "check").returncode == Exit.OK
    took_s = time.monotonic() - started
    said = {signal.SIGINT: "ledger: interrupted", signal.SIGTERM: "ledger: terminated"}
    for fraction, sent in CHECK_INTERRUPTS:
        checking = subprocess.Popen(
            [sys.executable, *LEDGER, "projections", "check"],
            cwd=ROOT,
            env=env_for(backend),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(took_s * fraction)
        checking.send_signal(sent)
        _, err = checking.communicate(timeout=60)
        assert "Exception ignored" not in err and "Traceback" not in err, (fraction, err)
        if checking.returncode == -sent:  # Python starting or shutting down: the default
            assert err == ""  # action, which a shell reports as 128 + the signal too
        elif checking.returncode != Exit.OK:
            assert checking.returncode == 128 + sent, (fraction, err)
            assert err.strip().splitlines()[-1] == said[sent], (fraction, err)
    assert ledger_cli(backend, "check").returncode == Exit.OK, "and the next check runs"
