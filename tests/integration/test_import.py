"""Bulk import (ledger.importer) on both backends: good lines kept, bad lines rejected with
their line numbers and codes, re-runs are no-ops."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from ledger import importer
from ledger.application import Ledger, open_ledger
from ledger.clock import ManualClock
from ledger.domain.errors import InvalidCommand
from ledger.importer import (
    MAX_BATCH_SIZE,
    MAX_LINE_BYTES,
    ImportReport,
    default_rejects_path,
    import_file,
)
from tests import builders as b

T0 = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)


@pytest.fixture
def ledger(backend: str, clock: ManualClock) -> Iterator[Ledger]:
    opened = open_ledger(backend, clock=clock)
    try:
        yield opened
    finally:
        opened.close()


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
    assert report.events_written + 2 == ledger.head_position()


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

    def counted(items: list[Any]) -> list[Any]:
        sizes.append(len(items))
        return execute_batch(items)

    monkeypatch.setattr(ledger, "execute_batch", counted)
    source = write(tmp_path / "b.jsonl", [b.submit("IMP-C1"), b.pay("IMP-C1"), b.ship("IMP-C1")])
    assert import_file(ledger, source, batch_size=500).imported == 3
    assert sizes == [1, 1, 1]
