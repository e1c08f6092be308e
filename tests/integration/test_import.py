"""Bulk import (ledger.importer) on both backends: good lines kept, bad lines rejected with
their line numbers and codes, re-runs are no-ops."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from psycopg.rows import tuple_row

from ledger import commands as c
from ledger import importer
from ledger.application import Ledger
from ledger.clock import ManualClock
from ledger.domain.errors import InvalidCommand
from ledger.domain.ids import order_id
from ledger.domain.order.events import Shipped
from ledger.handlers import HANDLERS
from ledger.importer import (
    MAX_BATCH_SIZE,
    MAX_LINE_BYTES,
    ImportReport,
    default_rejects_path,
    import_file,
)
from ledger.keystore import LINKAGE_PREFIX, PostgresKeyStore, SqliteKeyStore
from ledger.keystore import TABLE as KEY_TABLE
from tests import builders as b

T0 = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)


def at(minutes: int) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat()


def write(path: Path, lines: list[Any]) -> Path:
    """Objects become JSON lines; bytes and str are written as they are."""
    with path.open("wb") as out:
        for line in lines:
            if isinstance(line, bytes):
                out.write(line)
            elif isinstance(line, str):
                out.write(line.encode())
            else:
                out.write(orjson.dumps(line))
            out.write(b"\n")
    return path


@pytest.fixture(autouse=True)
def in_tmp_path(tmp_path: Path) -> Iterator[None]:
    """Each test runs in its own directory, where a rejects file goes by default (not
    ``monkeypatch.chdir``: a test's ``monkeypatch.undo()`` would undo it)."""
    with contextlib.chdir(tmp_path):
        yield


def rejects_of(report: ImportReport) -> list[dict[str, Any]]:
    assert report.rejects_path is not None
    return [orjson.loads(line) for line in Path(report.rejects_path).read_bytes().splitlines()]


def test_good_lines_are_kept_and_bad_ones_rejected_with_line_and_code(
    ledger: Ledger, tmp_path: Path
) -> None:
    bad_submit = {**b.submit("IMP-2", shipping_region="CN-HK"), "at": at(1)}
    source = write(
        tmp_path / "orders.jsonl",
        [
            {**b.submit("IMP-1"), "at": at(0)},  # 1
            "{not json",  # 2
            bad_submit,  # 3: OUTSIDE_MAINLAND (a rule)
            "",  # 4: blank
            {**b.pay("IMP-1"), "at": at(5)},  # 5
            {**b.ship("IMP-404"), "at": at(6)},  # 6: NOT_FOUND
            {"type": "ship_order", "command_id": "c-1"},  # 7: invalid command
            {**b.ship("IMP-1"), "at": "yesterday"},  # 8: bad "at"
            [1, 2],  # 9: not an object
            {**b.ship("IMP-1"), "at": at(60)},  # 10
        ],
    )
    report = import_file(ledger, source, batch_size=500)

    assert (report.lines_read, report.blank_lines) == (10, 1)
    assert (report.imported, report.already_imported, report.rejected) == (3, 0, 6)
    assert report.rejected_by_code == {
        "INVALID_JSON": 1,
        "OUTSIDE_MAINLAND": 1,
        "NOT_FOUND": 1,
        "INVALID_COMMAND": 3,
    }
    rejected = rejects_of(report)
    assert [(r["line"], r["code"]) for r in rejected] == [
        (2, "INVALID_JSON"),
        (3, "OUTSIDE_MAINLAND"),
        (6, "NOT_FOUND"),
        (7, "INVALID_COMMAND"),
        (8, "INVALID_COMMAND"),
        (9, "INVALID_COMMAND"),
    ]
    assert rejected[1]["clause"] == "3.3.3"
    assert rejected[1]["command"] == bad_submit, "the original object, to fix and re-run"
    assert rejected[0]["command"] is None and rejected[0]["raw"] == "{not json"
    assert "at" in rejected[4]["message"]
    assert Path(report.rejects_path or "") == default_rejects_path(source)
    assert stat.S_IMODE(Path(report.rejects_path or "").stat().st_mode) == 0o600

    order = ledger.order("IMP-1")
    assert order.shipped and order.contract_formed
    assert order.created_on == T0, "the line's time, not the clock's"
    # A fresh database: positions 1..N are the rows written, the imported lines' events and
    # one command record for each refusal by a rule (OUTSIDE_MAINLAND, NOT_FOUND), kept so a
    # re-run refuses them again (issue 8, case 9); input errors leave nothing.
    assert report.events_written == ledger.head_position()


def test_times_with_an_offset_are_stored_in_utc(ledger: Ledger, tmp_path: Path) -> None:
    source = write(
        tmp_path / "tz.jsonl", [{**b.submit("IMP-TZ"), "at": "2026-01-05T10:00:00+08:00"}]
    )
    assert import_file(ledger, source).imported == 1
    created = ledger.order("IMP-TZ").created_on
    assert created == T0 and created.utcoffset() == timedelta(0)


def test_messages_never_carry_the_lines_personal_data(ledger: Ledger, tmp_path: Path) -> None:
    bad = b.submit("IMP-PD", shipping_region="CN-HK")
    bad["contact"]["phone"] = "not-a-phone-13912345678"
    source = write(tmp_path / "pd.jsonl", [bad, {**b.submit("IMP-PD2"), "lines": "x"}])
    report = import_file(ledger, source)
    assert report.rejected == 2
    shown = orjson.dumps(report.as_dict()).decode()
    for secret in ("王小明", "13912345678", "上海市", "101.226.33.7"):
        assert secret not in shown


def test_a_rerun_is_a_no_op(ledger: Ledger, tmp_path: Path) -> None:
    source = write(
        tmp_path / "again.jsonl",
        [
            {**b.submit("IMP-R1"), "at": at(0)},
            {**b.pay("IMP-R1"), "at": at(1)},
            {**b.pay("IMP-R1"), "at": at(2)},  # ALREADY_PAID
            {**b.submit("IMP-R2"), "at": at(3)},
        ],
    )
    first = import_file(ledger, source, batch_size=2)
    head = ledger.head_position()
    assert (first.imported, first.rejected) == (3, 1)
    assert first.events_written > 0

    second = import_file(ledger, source, batch_size=2)
    assert ledger.head_position() == head, "a re-run wrote events"
    assert (second.imported, second.already_imported) == (0, 3)
    assert second.events_written == 0
    assert second.rejected_by_code == {"ALREADY_PAID": 1}


def test_a_refusal_in_the_middle_of_a_batch_loses_none_of_the_others(
    ledger: Ledger, tmp_path: Path
) -> None:
    source = write(
        tmp_path / "middle.jsonl",
        [
            {**b.submit("IMP-M1"), "at": at(0)},
            {**b.submit("IMP-M2"), "at": at(1)},
            {**b.ship("IMP-M1"), "at": at(2)},  # NOT_PAID: refused mid-batch
            {**b.pay("IMP-M1"), "at": at(3)},  # depends on line 1, same batch
            {**b.pay("IMP-M2"), "at": at(4)},
            {**b.ship("IMP-M1"), "at": at(5)},  # now it may ship
        ],
    )
    report = import_file(ledger, source, batch_size=100)
    assert (report.imported, report.rejected) == (5, 1)
    assert [(r["line"], r["code"]) for r in rejects_of(report)] == [(3, "NOT_PAID")]
    assert ledger.order("IMP-M1").shipped
    assert ledger.order("IMP-M2").contract_formed


def test_a_command_id_reused_in_the_file_with_another_payload_is_rejected(
    ledger: Ledger, tmp_path: Path
) -> None:
    first = {**b.submit("IMP-D1", command_id="dup-1"), "at": at(0)}
    same = dict(first)
    other = {**b.submit("IMP-D2", command_id="dup-1"), "at": at(1)}
    later = {**b.submit("IMP-D3", command_id="dup-1"), "at": at(2)}
    source = write(tmp_path / "dups.jsonl", [first, same, other, {**b.submit("IMP-D4")}, later])
    report = import_file(ledger, source, batch_size=3)  # "later" is in the next batch
    assert (report.imported, report.already_imported) == (2, 1)
    assert [(r["line"], r["code"]) for r in rejects_of(report)] == [
        (3, "COMMAND_ID_REUSED"),
        (5, "COMMAND_ID_REUSED"),
    ]


def test_lines_without_at_happen_at_the_clocks_now(
    ledger: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    source = write(tmp_path / "now.jsonl", [b.submit("IMP-N1")])
    report = import_file(ledger, source)
    assert report.imported == 1 and report.rejects_path is None
    assert ledger.order("IMP-N1").created_on == clock.now()
    assert not default_rejects_path(source).exists(), "no rejects, no rejects file"


def test_an_overlong_line_is_rejected_without_reading_it_whole(
    ledger: Ledger, tmp_path: Path
) -> None:
    huge = b'{"type": "submit_order", "pad": "' + b"x" * (MAX_LINE_BYTES + 10) + b'"}'
    source = write(tmp_path / "long.jsonl", [huge, {**b.submit("IMP-L1"), "at": at(0)}])
    report = import_file(ledger, source)
    assert report.imported == 1
    assert [(r["line"], r["code"], r.get("raw")) for r in rejects_of(report)] == [
        (1, "LINE_TOO_LONG", None)
    ]


@pytest.mark.parametrize("size", [0, MAX_BATCH_SIZE + 1])
def test_batch_size_is_bounded(ledger: Ledger, tmp_path: Path, size: int) -> None:
    source = write(tmp_path / "x.jsonl", [b.submit("IMP-B1")])
    with pytest.raises(InvalidCommand):
        import_file(ledger, source, batch_size=size)


def test_the_rejects_file_cannot_be_the_input(ledger: Ledger, tmp_path: Path) -> None:
    source = write(tmp_path / "x.jsonl", [b.submit("IMP-S1")])
    with pytest.raises(InvalidCommand):
        import_file(ledger, source, rejects_path=source)
    assert source.read_bytes().startswith(b"{"), "the input is untouched"


def test_a_batch_is_cut_short_at_the_byte_budget(
    ledger: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importer, "MAX_BATCH_BYTES", 1)  # every line makes its own batch
    sizes: list[int] = []
    execute_batch = ledger.execute_batch

    def counted(items: list[Any], **options: Any) -> list[Any]:
        sizes.append(len(items))
        return execute_batch(items, **options)

    monkeypatch.setattr(ledger, "execute_batch", counted)
    source = write(tmp_path / "b.jsonl", [b.submit("IMP-C1"), b.pay("IMP-C1"), b.ship("IMP-C1")])
    assert import_file(ledger, source, batch_size=500).imported == 3
    assert sizes == [1, 1, 1]


# -- issue 8, case 6: time runs forward; "at" in a sane range -------------------------------


def test_a_delivery_line_dated_before_the_shipment_is_refused(
    ledger: Ledger, tmp_path: Path
) -> None:
    source = write(
        tmp_path / "late.jsonl",
        [
            {**b.submit("IMP-T1"), "at": at(0)},
            {**b.pay("IMP-T1"), "at": at(5)},
            {**b.ship("IMP-T1"), "at": at(3 * 24 * 60)},
            {**b.deliver("IMP-T1"), "at": at(24 * 60)},  # two days before the shipment
            {**b.submit("IMP-T2"), "at": at(10)},
            {**b.pay("IMP-T2"), "at": at(9)},  # before the submission
        ],
    )
    report = import_file(ledger, source)
    assert [(r["line"], r["code"]) for r in rejects_of(report)] == [
        (4, "TIME_BEFORE_STREAM"),
        (6, "TIME_BEFORE_STREAM"),
    ]
    assert at(3 * 24 * 60) in rejects_of(report)[0]["message"], "names the stream's last time"
    assert ledger.order("IMP-T1").delivered_at is None
    assert ledger.order("IMP-T2").paid_total_fen == 0


# -- issue 8, case 7: one bad line never loses the batch ---------------------------------------


def test_a_line_dated_in_year_1_is_rejected_and_its_batch_kept(
    ledger: Ledger, tmp_path: Path
) -> None:
    source = write(
        tmp_path / "year1.jsonl",
        [
            {**b.submit("IMP-Y1"), "at": at(0)},
            {**b.pay("IMP-Y1"), "at": "0001-01-01T00:00:00+08:00"},
            {**b.submit("IMP-Y2"), "at": at(1)},
        ],
    )
    report = import_file(ledger, source, batch_size=500)
    assert (report.imported, report.rejected) == (2, 1)
    (rejected,) = rejects_of(report)
    assert (rejected["line"], rejected["code"], rejected["field"]) == (2, "INVALID_COMMAND", "at")
    assert "2000-01-01" in rejected["message"], "says what range is allowed"
    assert ledger.order("IMP-Y1").created_on == T0
    assert ledger.order("IMP-Y2").status


SECRET = "王小明-13912345678"


def failing_after(real: Any, order_no: str) -> Any:
    """A handler with a bug for one order: it runs the real handler, so the failure comes
    after the order was changed in the batch's unit of work, then raises with personal
    data in its text (the worst case for the error message and the log)."""

    def handler(cmd: Any, uow: Any) -> None:
        real(cmd, uow)
        if cmd.order_no == order_no:
            raise ValueError(f"unexpected {SECRET}")

    return handler


def test_an_unexpected_failure_rejects_that_line_only_as_command_failed(
    ledger: Ledger,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setitem(HANDLERS, c.ShipOrder, failing_after(HANDLERS[c.ShipOrder], "IMP-F2"))
    lines: list[Any] = []
    for n, order_no in enumerate(["IMP-F1", "IMP-F2", "IMP-F3"]):
        lines += [
            {**b.submit(order_no), "at": at(n)},
            {**b.pay(order_no), "at": at(10 + n)},
            {**b.ship(order_no), "at": at(20 + n)},
        ]
    source = write(tmp_path / "bug.jsonl", lines)
    with caplog.at_level(logging.DEBUG, logger="ledger.application"):
        report = import_file(ledger, source, batch_size=500)
    assert (report.imported, report.rejected) == (8, 1)
    (rejected,) = rejects_of(report)
    assert (rejected["line"], rejected["code"]) == (6, "COMMAND_FAILED")
    assert "ValueError" in rejected["message"]
    assert ledger.order("IMP-F1").shipped and ledger.order("IMP-F3").shipped
    assert not ledger.order("IMP-F2").shipped, "nothing of the failed command was written"
    shown = orjson.dumps(report.as_dict()).decode() + caplog.text
    assert "Traceback" not in rejected["message"] and "ValueError" in caplog.text
    assert "13912345678" not in shown and "王小明" not in shown


# -- issue 8, case 9: re-running a file gives the ledger one run gave -------------------------


@pytest.mark.parametrize("with_at", [True, False], ids=["with-at", "without-at"])
def test_a_rerun_refuses_a_shipment_that_came_before_its_payment_again(
    ledger: Ledger, tmp_path: Path, with_at: bool
) -> None:
    lines = [b.submit("IMP-S1"), b.ship("IMP-S1"), b.pay("IMP-S1")]
    if with_at:  # the issue's file: Shipped at 00:01 after Paid at 00:05 on the second run
        lines = [{**line, "at": at(m)} for line, m in zip(lines, (0, 1, 5), strict=True)]
    source = write(tmp_path / "early-ship.jsonl", lines)
    first = import_file(ledger, source)
    head = ledger.head_position()
    second = import_file(ledger, source)
    assert first.rejected_by_code == second.rejected_by_code == {"NOT_PAID": 1}
    assert (second.imported, second.already_imported) == (0, 2)
    assert ledger.head_position() == head, "a re-run wrote events"
    assert not ledger.order("IMP-S1").shipped


def test_a_rerun_after_an_interrupted_run_gives_the_ledger_of_one_run(
    ledger: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = write(
        tmp_path / "cut.jsonl",
        [
            {**b.submit("IMP-I1"), "at": at(0)},
            {**b.ship("IMP-I1"), "at": at(1)},  # NOT_PAID
            {**b.pay("IMP-I1"), "at": at(5)},
            {**b.ship("IMP-I1"), "at": at(6)},  # the run is interrupted before this line
        ],
    )
    execute_batch = ledger.execute_batch
    batches = 0

    def interrupted(items: list[Any], **options: Any) -> list[Any]:
        nonlocal batches
        batches += 1
        if batches == 4:
            raise KeyboardInterrupt
        return execute_batch(items, **options)

    monkeypatch.setattr(ledger, "execute_batch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        import_file(ledger, source, batch_size=1)  # lines 1-3 committed, then Ctrl-C
    monkeypatch.undo()
    report = import_file(ledger, source, batch_size=1)
    assert (report.imported, report.already_imported) == (1, 2)
    # Its refusal was recorded: not re-judged against the paid order (nor by its time).
    assert [(r["line"], r["code"]) for r in rejects_of(report)] == [(2, "NOT_PAID")]
    shipped = [e for e in ledger.app.events.get(order_id("IMP-I1")) if isinstance(e, Shipped)]
    assert [e.timestamp for e in shipped] == [T0 + timedelta(minutes=6)]


def test_a_rerun_never_overwrites_the_first_runs_rejects_file(
    ledger: Ledger, tmp_path: Path
) -> None:
    source = write(tmp_path / "r.jsonl", [{**b.ship("IMP-NONE"), "at": at(0)}])
    first = import_file(ledger, source)
    kept = Path(first.rejects_path or "").read_bytes()
    second = import_file(ledger, source)
    assert Path(first.rejects_path or "") == default_rejects_path(source)
    assert Path(second.rejects_path or "") == Path("r.rejects.2.jsonl")
    assert Path(first.rejects_path or "").read_bytes() == kept
    assert rejects_of(second)[0]["code"] == "NOT_FOUND"


# -- issue 8, case 15: no key row without an event that needs it -----------------------------


def test_invalid_and_refused_submissions_leave_no_key_rows(ledger: Ledger, tmp_path: Path) -> None:
    refused = [  # each on its own account, so each would have made a key row before
        {**b.submit("IMP-K1", account_no="acct-k1", shipping_region="CN-HK"), "at": at(1)},
        {**b.submit("IMP-K2", account_no="acct-k2", lines="x"), "at": at(2)},
        {**b.submit("IMP-K3", account_no="acct-k3", coupons=["K-CPN"]), "at": at(3)},
        {**b.submit("IMP-K4", account_no="acct-k4"), "at": "0001-01-01T00:00:00+08:00"},
        {**b.submit("IMP-K5", account_no="acct-k5"), "at": at(5)},
    ]
    later_coupon = {**b.issue("K-CPN"), "at": at(4)}  # the coupon's stream is after line 3
    many = [
        {**b.submit(f"IMP-KX{n}", account_no=f"acct-x{n}", shipping_region="CN-HK"), "at": at(9)}
        for n in range(200)
    ]
    source = write(tmp_path / "keys.jsonl", [later_coupon, *refused, *many])
    report = import_file(ledger, source, batch_size=50)
    assert report.imported == 1 + 1 and report.rejected == 4 + 200
    assert rejects_of(report)[2]["code"] == "TIME_BEFORE_STREAM"
    store = ledger.keystore
    store.forget_cache()
    assert store.existing_key("acct-k5") is not None, "the accepted order's account has a key"
    for account in [
        "acct-k1",
        "acct-k2",
        "acct-k3",
        "acct-k4",
        *(f"acct-x{n}" for n in range(200)),
    ]:
        assert store.existing_key(account) is None, f"{account} got a key row"
    # The accepted order also made its year's linkage key and the year before's (its digests
    # are under both, ledger/keystore.py): the key store's own rows, beside its application key.
    assert key_rows(ledger) == 2 + 3, "acct-k5's two keys and the store's three, nothing else"
    assert key_rows(ledger, f"{LINKAGE_PREFIX}%") == 3


def key_rows(ledger: Ledger, name_like: str = "%") -> int:
    """Rows in the key store's table whose name is ``LIKE name_like``, asked of the
    database itself."""
    store = ledger.keystore
    query = f"SELECT count(*) FROM {KEY_TABLE} WHERE name LIKE "
    if isinstance(store, SqliteKeyStore):
        with sqlite3.connect(store.path) as conn:
            return int(conn.execute(query + "?", (name_like,)).fetchone()[0])
    assert isinstance(store, PostgresKeyStore)
    with store._pool.connection() as conn:  # the shared pool reads rows as dicts
        row = conn.cursor(row_factory=tuple_row).execute(query + "%s", (name_like,)).fetchone()
    assert row is not None
    return int(row[0])
