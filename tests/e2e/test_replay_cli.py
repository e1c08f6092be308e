"""``ledger replay`` as an auditor runs it (real processes, a real SQLite file): an order as of
a position, and the whole log replayed against the live projections, exit 1 when a projection
row was changed by hand."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.e2e.prepared import copy_into
from tests.e2e.test_cli_newcomer import one_line_error, run


def ledger(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run(cwd, list(args))


@pytest.fixture(scope="module")
def projected_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's events and its projections, current, in the module's own directory."""
    where = tmp_path_factory.mktemp("projected")
    for args in (["demo", "--orders", "40"], ["projections", "run", "--once"]):
        done = ledger(where, *args)
        assert done.returncode == 0, done.stderr
    return where


@pytest.fixture
def projected(projected_template: Path, tmp_path: Path) -> Path:
    """A copy of the module's projected demo ledger, in ``tmp_path``, for this test to change."""
    return copy_into(projected_template, tmp_path)


def test_an_order_as_of_its_first_position_is_just_submitted(projected: Path) -> None:
    with sqlite3.connect(projected / "var" / "ledger.db") as conn:
        (order_no,) = conn.execute("SELECT order_no FROM pj_orders LIMIT 1").fetchone()
    beyond = ledger(projected, "replay", "order", order_no, "--position", "999999999")
    assert beyond.returncode == 2 and beyond.stdout == ""
    said = one_line_error(beyond, "INVALID_COMMAND")
    assert said.startswith("ledger: INVALID_COMMAND: --position: is beyond the log's head, ")
    everything = ledger(projected, "replay", "order", order_no, "--as-of", "2099-01-01T00:00:00Z")
    first = json.loads(everything.stdout)["events"][0]["position"]
    done = ledger(projected, "replay", "order", order_no, "--position", str(first))
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found["version"] == 1 and [e["event"] for e in found["events"]] == ["OrderSubmitted"]
    assert found["state"]["status"] == "awaiting_payment"


def test_replay_check_passes_then_fails_on_a_row_changed_by_hand(projected: Path) -> None:
    assert ledger(projected, "replay", "check").returncode == 0
    with sqlite3.connect(projected / "var" / "ledger.db") as conn:
        conn.execute("UPDATE pj_orders SET total_due_fen = total_due_fen + 1 WHERE rowid = 3")
    done = ledger(projected, "replay", "check", "--json")
    assert done.returncode == 1
    orders = next(r for r in json.loads(done.stdout) if r["name"] == "orders")
    assert orders["differences"] == 1


def test_a_moment_without_an_offset_is_a_usage_error(projected: Path) -> None:
    done = ledger(projected, "replay", "order", "X-1", "--as-of", "2026-11-20T10:00:00")
    assert done.returncode == 2
    assert "--as-of" in one_line_error(done, "INVALID_COMMAND")
