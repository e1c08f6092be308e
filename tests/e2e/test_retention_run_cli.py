"""``ledger retention run`` as an operator runs it (real processes, both backends): killed with
SIGKILL half-way through many deferred erasures, then run again, every step is done exactly
once; a third run does nothing. The data is dated 2021, so at today's clock every retention
(three years from completion) has ended."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from datetime import datetime, timedelta
from typing import Any

import pytest

from ledger.application import Ledger
from ledger.clock import ManualClock
from ledger.domain import data_subject as ds
from ledger.domain.china_time import CHINA
from tests import builders as b
from tests.e2e.test_cli_newcomer import ledger_argv
from tests.fix_app import opened_ledger

SUBJECTS = 300
KILL_AFTER_ERASED = 10
WAIT_S = 120.0


def subject(index: int) -> str:
    return f"acct-{index:04d}"


def deferred_erasures(ledger: Ledger, clock: ManualClock) -> None:
    """SUBJECTS subjects, each with an order closed and completed in March 2021 and an
    erasure request deferred to its retention's end (March 2024)."""
    for start in range(0, SUBJECTS, 100):
        batch: list[tuple[Any, datetime | None]] = []
        for i in range(start, min(start + 100, SUBJECTS)):
            order_no = f"O-{i}"
            batch += [
                (b.submit(order_no, account_no=subject(i)), None),
                (b.order_cmd("cancel_order", order_no), None),
                (b.order_cmd("complete_transaction", order_no), None),
            ]
        assert all(not isinstance(r, Exception) for r in ledger.execute_batch(batch))
    clock.advance(timedelta(hours=1))
    erasures = [(b.other("request_erasure", subject_id=subject(i)), None) for i in range(SUBJECTS)]
    outcomes = ledger.execute_batch(erasures)
    assert {getattr(o, "code", None) for o in outcomes} == {"RETENTION_REQUIRED"}


def erased_count(ledger: Ledger) -> int:
    topic = ds.SubjectErased.TOPIC  # type: ignore[attr-defined]
    return len(ledger.app.recorder.select_notifications(1, 10 * SUBJECTS, topics=[topic]))


def retention_run(url: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ledger_argv("retention", "run", "--json", "--no-progress"),
        env={**os.environ, "LEDGER_DATABASE_URL": url},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def kill_half_way(ledger: Ledger, url: str) -> int:
    """Start a run, SIGKILL it once it has erased KILL_AFTER_ERASED subjects; the count then."""
    process = retention_run(url)
    deadline = time.monotonic() + WAIT_S
    while erased_count(ledger) < KILL_AFTER_ERASED:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the run erased nothing in time"
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    assert process.returncode == -signal.SIGKILL
    return erased_count(ledger)


def finish(url: str) -> dict[str, Any]:
    process = retention_run(url)
    out, err = process.communicate(timeout=WAIT_S)
    assert process.returncode == 0, err
    found: dict[str, Any] = json.loads(out)
    return found


@pytest.mark.slow
def test_a_run_killed_half_way_is_finished_by_the_next_and_each_step_is_done_once(
    backend: str,
) -> None:
    clock = ManualClock(datetime(2021, 3, 1, 10, 0, tzinfo=CHINA))
    with opened_ledger(backend, clock) as ledger:
        deferred_erasures(ledger, clock)
        erased_before = kill_half_way(ledger, backend)
        assert 0 < erased_before < SUBJECTS, "killed half-way"

        second = finish(backend)

        steps = second["steps"]
        assert steps["erased"] == SUBJECTS - erased_before
        assert steps["keys"] <= 1  # the one the kill may have cut between save and destroy
        assert erased_count(ledger) == SUBJECTS
        ledger.keystore.forget_cache()
        for i in range(SUBJECTS):
            assert ledger.keystore.is_destroyed(subject(i)), subject(i)
        third = finish(backend)
        assert set(third["steps"].values()) == {0}
        assert erased_count(ledger) == SUBJECTS
