"""``ledger import`` against other writers, as real processes, on SQLite and PostgreSQL.

An import keeps the streams its batches read (an order's account) in its cache for the next
batch. Another process that restricts the account meanwhile must be seen: a later order of
that account is refused ``ACCOUNT_RESTRICTED``, never accepted on the cached, stale account.
The first test makes the interleaving certain by feeding the import through a FIFO: a line,
then (once it is committed) a restriction by another process, then the next line. The second
runs two imports of one file at once, whatever their interleaving.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from ledger.application import Ledger, open_ledger
from ledger.domain.errors import NotFound
from tests import builders as b

LEDGER = Path(sys.executable).with_name("ledger")
TIMEOUT_S = 120
WAIT_S = 30
FILLER_ORDERS = 60


def env_for(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    env["LEDGER_DATABASE_URL"] = url
    return env


def start_import(cwd: Path, url: str, path: Path, batch_size: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            str(LEDGER),
            "import",
            str(path),
            "--json",
            "--no-progress",
            "--batch-size",
            str(batch_size),
        ],
        cwd=cwd,
        env=env_for(url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def report_of(started: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = started.communicate(timeout=TIMEOUT_S)
    assert started.returncode in (0, 1), err
    found: dict[str, Any] = orjson.loads(out)
    return found


def line(command: dict[str, Any]) -> bytes:
    return orjson.dumps(command) + b"\n"


def restrict(account_no: str) -> dict[str, Any]:
    return b.other("restrict_account", account_no=account_no, ground="6.1(7)")


def account_on_record(url: str, account_no: str) -> None:
    """The account gets a stream of its own (a non-quality refusal), so an import caches it."""
    ledger = open_ledger(url)
    try:
        ledger.execute(b.submit("H-1", account_no=account_no))
        ledger.execute(b.pay("H-1"))
        ledger.execute(b.ship("H-1"))
        ledger.execute(b.order_cmd("refuse_delivery", "H-1", quality_reason=False))
    finally:
        ledger.close()


def order_exists(ledger: Ledger, order_no: str) -> bool:
    try:
        ledger.order(order_no)
    except NotFound:
        return False
    return True


def wait_for_order(url: str, order_no: str) -> None:
    ledger = open_ledger(url)
    try:
        deadline = time.monotonic() + WAIT_S
        while not order_exists(ledger, order_no):
            assert time.monotonic() < deadline, f"{order_no} was never imported"
            time.sleep(0.05)
    finally:
        ledger.close()


def test_an_import_sees_a_restriction_made_by_another_process_after_it_cached_the_account(
    backend: str, tmp_path: Path
) -> None:
    account_on_record(backend, "acct-9")
    fifo = tmp_path / "orders.jsonl"
    os.mkfifo(fifo)
    # Read-write, so opening never blocks and the import sees EOF only when this closes it.
    feed = os.open(fifo, os.O_RDWR)
    importing = start_import(tmp_path, backend, fifo, batch_size=1)
    try:
        os.write(feed, line(b.submit("A-1", account_no="acct-9")))
        wait_for_order(backend, "A-1")  # committed: the import now holds the account cached
        restricting = tmp_path / "restrict.jsonl"
        restricting.write_bytes(line(restrict("acct-9")))
        other = start_import(tmp_path, backend, restricting, batch_size=1)
        assert report_of(other)["imported"] == 1
        os.write(feed, line(b.submit("A-2", account_no="acct-9")))
    finally:
        os.close(feed)
    report = report_of(importing)

    assert (report["imported"], report["rejected"]) == (1, 1), report
    assert report["rejected_by_code"] == {"ACCOUNT_RESTRICTED": 1}
    ledger = open_ledger(backend)
    try:
        assert order_exists(ledger, "A-1") and not order_exists(ledger, "A-2")
    finally:
        ledger.close()


def restriction_file(path: Path) -> tuple[list[str], list[str]]:
    """Orders of acct-9 before and after its restriction, among orders of other accounts."""
    before, after, lines = [], [], []
    for n in range(FILLER_ORDERS):
        if n == FILLER_ORDERS // 2:
            lines.append(line(restrict("acct-9")))
        if n % 6 == 0:
            order_no = f"X-{n}"
            (after if n >= FILLER_ORDERS // 2 else before).append(order_no)
            lines.append(line(b.submit(order_no, account_no="acct-9")))
        lines.append(line(b.submit(f"F-{n}", account_no=f"acct-f{n}")))
    path.write_bytes(b"".join(lines))
    return before, after


@pytest.mark.parametrize("batch_size", [1, 4])
def test_two_imports_of_one_file_at_once_never_accept_an_order_of_a_restricted_account(
    backend: str, tmp_path: Path, batch_size: int
) -> None:
    account_on_record(backend, "acct-9")
    path = tmp_path / "orders.jsonl"
    before, after = restriction_file(path)
    runs = [start_import(tmp_path, backend, path, batch_size) for _ in range(2)]
    reports = [report_of(run) for run in runs]

    for report in reports:
        assert set(report["rejected_by_code"]) <= {"ACCOUNT_RESTRICTED"}, report
    ledger = open_ledger(backend)
    try:
        assert [o for o in after if order_exists(ledger, o)] == []
        assert all(order_exists(ledger, o) for o in before)
        assert all(order_exists(ledger, f"F-{n}") for n in range(FILLER_ORDERS))
    finally:
        ledger.close()
