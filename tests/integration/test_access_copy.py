"""The data subject's access copy (issue 11 item 9, PIPL 45) through the library on both
backends: what the copy holds and how it reads (amounts in fen and yuan, China time, CSV with
Chinese and English headers), its manifest, the refusals (a taken directory, an unknown
subject), an erased and a restricted subject, the ``AccessCopyGiven`` record and its step in
the retention trail, and a failure that leaves nothing behind.

The clock starts 2 March 2026 09:00 China time (tests/fix_app.py).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from collections.abc import Iterator
from contextlib import closing
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from ledger.access_copy import access_copy_content, give_access_copy
from ledger.access_files import OutputRefused
from ledger.application import Ledger
from ledger.clock import ManualClock
from ledger.domain.china_time import CHINA
from ledger.domain.context import LOCAL_ACTOR, Actor
from ledger.domain.data_subject import AccessCopyGiven
from ledger.domain.errors import LedgerError, NotFound
from ledger.domain.ids import data_subject_id
from projections.engine import Runtime
from projections.queries import ReadModels
from tests import builders as b
from tests.checks import events_of
from tests.integration.test_projections import catch_up
from tests.integration.test_returns import complete, delivered

ADMIN = Actor("0a1b2c3d4e5f", "admin")
PHONE = b.CONTACT["phone"]
OTHER_PHONE = "13800000000"
CONSENTED_ACCOUNT = "6222 0200 1234 5678"
DATA_FILES = {
    "subject.json",
    "orders.json",
    "orders.csv",
    "items.csv",
    "payments.csv",
    "refunds.csv",
    "deliveries.csv",
    "returns.csv",
    "personal_data.csv",
    "retention.csv",
}


@pytest.fixture
def trail(backend: str) -> Iterator[ReadModels]:
    with closing(ReadModels.open(backend)) as opened:
        yield opened


def history(ledger: Ledger, clock: ManualClock) -> None:
    """acct-1: O-1 paid twice (two methods), a consented partial refund done, shipped and
    delivered; O-2 submitted with two lines and a discount, unpaid. acct-2: O-9."""
    ledger.execute(b.submit("O-1"))
    ledger.execute(b.pay("O-1", amount_fen=300000))
    ledger.execute(b.pay("O-1", amount_fen=99900, method="wechat", payer_account="wx-778"))
    consent = {"consent_id": "c-1", "method": "alipay", "destination_account": CONSENTED_ACCOUNT}
    ledger.execute(b.order_cmd("record_refund_consent", "O-1", **consent))
    refund = {"method": "alipay", "amount_fen": 12345, "purpose": "price_adjustment"}
    done = ledger.execute(b.order_cmd("initiate_refund", "O-1", consent_id="c-1", **refund))
    ledger.execute(b.order_cmd("complete_refund", "O-1", refund_id=done.result["refund_id"]))
    ledger.execute(b.ship("O-1"))
    clock.advance(timedelta(hours=30))
    ledger.execute(b.deliver("O-1"))
    lines = [
        {"sku": "PHONE-14", "quantity": 2, "unit_price_fen": 199950, "discount_fen": 5},
        {"sku": "CASE-14", "quantity": 1, "unit_price_fen": 4900},
    ]
    ledger.execute(b.submit("O-2", lines=lines))
    other = {**b.CONTACT, "recipient_name": "李四", "phone": OTHER_PHONE}
    ledger.execute(b.submit("O-9", account_no="acct-2", contact=other))


def read_csv(path: Path) -> list[list[str]]:
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf"), "UTF-8 with a byte-order mark, for Excel"
    return list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))


def load(out: Path, name: str) -> Any:
    return json.loads((out / name).read_text(encoding="utf-8"))


def test_the_copy_holds_the_subjects_data_and_orders_with_their_amounts(
    ledger_app: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    history(ledger_app, clock)
    out = tmp_path / "copy"

    receipt = give_access_copy(ledger_app, "acct-1", out, LOCAL_ACTOR, reference="REQ-7")

    assert {p.name for p in out.iterdir()} == DATA_FILES | {"manifest.json"}
    orders = {o["order_no"]: o for o in load(out, "orders.json")["orders"]}
    assert set(orders) == {"O-1", "O-2"}, "only the subject's own orders"
    paid = orders["O-1"]
    assert (paid["status"], paid["total_due_fen"], paid["total_due_yuan"]) == (
        "delivered",
        399900 - 12345,
        "3875.55",
    )
    assert (paid["paid_fen"], paid["paid_yuan"], paid["refunded_yuan"]) == (
        399900,
        "3999.00",
        "123.45",
    )
    assert paid["submitted_at"] == "2026-03-02T09:00:00+08:00"
    assert paid["delivered_at"] == "2026-03-03T15:00:00+08:00"
    assert paid["contact"] == b.CONTACT
    assert [(p["method"], p["payer_account"], p["amount_yuan"]) for p in paid["payments"]] == [
        ("alipay", "buyer@example.com", "3000.00"),
        ("wechat", "wx-778", "999.00"),
    ]
    [refund] = paid["refunds"]
    assert (refund["amount_fen"], refund["status"], refund["destination_account"]) == (
        12345,
        "completed",
        CONSENTED_ACCOUNT,
    )
    assert [d["step"] for d in paid["deliveries"]] == ["shipped", "delivered"]
    unpaid = orders["O-2"]
    assert [(i["sku"], i["amount_fen"], i["amount_yuan"]) for i in unpaid["items"]] == [
        ("PHONE-14", 399895, "3998.95"),
        ("CASE-14", 4900, "49.00"),
    ]
    subject = load(out, "subject.json")
    personal = {k: [v["value"] for v in vs] for k, vs in subject["personal_data"].items()}
    assert personal == {
        "address": [b.CONTACT["address"]],
        "ip": [b.CONTACT["ip"]],
        "payer_account": ["buyer@example.com", "wx-778"],
        "phone": [PHONE],
        "recipient_name": [b.CONTACT["recipient_name"]],
        "refund_destination": [CONSENTED_ACCOUNT],
    }
    assert subject["personal_data"]["phone"][0]["orders"] == ["O-1", "O-2"]
    everything = b"".join(p.read_bytes() for p in out.iterdir())
    assert OTHER_PHONE.encode() not in everything and "李四".encode() not in everything
    assert receipt.counts["orders"] == 2 and receipt.counts["payments"] == 2


def test_every_csv_has_the_chinese_header_row_then_the_english_one(
    ledger_app: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    history(ledger_app, clock)
    out = tmp_path / "copy"
    give_access_copy(ledger_app, "acct-1", out, LOCAL_ACTOR)

    orders = read_csv(out / "orders.csv")
    assert orders[0][:2] == ["订单号", "订单状态"]
    assert {"金额（元）"} <= set(read_csv(out / "payments.csv")[0])
    assert {"收货人", "手机号", "地址"} <= set(orders[0])
    assert orders[1][:2] == ["order_no", "status"]
    rows = {row[0]: dict(zip(orders[1], row, strict=True)) for row in orders[2:]}
    assert rows["O-1"]["phone"] == PHONE and rows["O-1"]["total_due_yuan"] == "3875.55"
    for name in DATA_FILES - {"subject.json", "orders.json"}:
        header = read_csv(out / name)
        assert len(header[0]) == len(header[1]) and all(
            any("\u4e00" <= ch <= "\u9fff" for ch in label) for label in header[0]
        ), name
    payments = read_csv(out / "payments.csv")
    assert [row[payments[1].index("amount_yuan")] for row in payments[2:]] == ["3000.00", "999.00"]


def test_a_text_cell_a_spreadsheet_would_run_as_a_formula_is_written_as_text(
    ledger_app: Ledger, tmp_path: Path
) -> None:
    ledger_app.execute(b.submit("O-1", contact={**b.CONTACT, "recipient_name": "=HYPERLINK(1)"}))
    out = tmp_path / "copy"
    give_access_copy(ledger_app, "acct-1", out, LOCAL_ACTOR)

    rows = read_csv(out / "orders.csv")
    assert rows[2][rows[1].index("recipient_name")] == "'=HYPERLINK(1)"
    assert load(out, "orders.json")["orders"][0]["contact"]["recipient_name"] == "=HYPERLINK(1)"


def test_the_manifest_lists_every_file_with_its_digest_size_position_and_time(
    ledger_app: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    history(ledger_app, clock)
    head = ledger_app.head_position()
    out = tmp_path / "copy"

    receipt = give_access_copy(ledger_app, "acct-1", out, LOCAL_ACTOR)

    manifest = load(out, "manifest.json")
    assert {f["name"] for f in manifest["files"]} == DATA_FILES
    for entry in manifest["files"]:
        data = (out / entry["name"]).read_bytes()
        assert (entry["sha256"], entry["bytes"]) == (hashlib.sha256(data).hexdigest(), len(data))
    assert manifest["subject_id"] == "acct-1"
    assert (manifest["position"], receipt.position) == (head, head)
    assert manifest["made_at"] == clock.now().astimezone(CHINA).isoformat()
    assert manifest["ledger_version"] and manifest["counts"]["orders"] == 2
    digest = hashlib.sha256((out / "manifest.json").read_bytes()).hexdigest()
    assert [f.sha256 for f in receipt.files if f.name == "manifest.json"] == [digest]


def test_an_existing_directory_that_is_not_empty_is_refused_and_left_untouched(
    ledger_app: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    history(ledger_app, clock)
    out = tmp_path / "copy"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    head = ledger_app.head_position()

    with pytest.raises(OutputRefused) as refused:
        give_access_copy(ledger_app, "acct-1", out, LOCAL_ACTOR)

    assert refused.value.code == "IO_ERROR" and "not empty" in refused.value.message
    assert [p.name for p in out.iterdir()] == ["mine.txt"]
    assert (out / "mine.txt").read_text() == "keep me"
    assert ledger_app.head_position() == head, "nothing recorded"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    empty = tmp_path / "empty"
    empty.mkdir()
    give_access_copy(ledger_app, "acct-1", empty, LOCAL_ACTOR)  # an empty one is taken
    assert (empty / "manifest.json").exists()


def test_an_unknown_subject_is_not_found_without_repeating_its_id(
    ledger_app: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    history(ledger_app, clock)
    head = ledger_app.head_position()
    with pytest.raises(NotFound) as missing:
        give_access_copy(ledger_app, "ghost-13912345678", tmp_path / "copy", LOCAL_ACTOR)
    assert "subject_id" in missing.value.message
    assert "ghost" not in missing.value.message and PHONE not in missing.value.message
    assert not (tmp_path / "copy").exists() and ledger_app.head_position() == head


def test_an_erased_subject_reads_erased_in_every_personal_field_and_keeps_its_amounts(
    ledger_app: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    history(ledger_app, clock)
    ledger_app.keystore.destroy("acct-1", clock.now())
    out = tmp_path / "copy"

    give_access_copy(ledger_app, "acct-1", out, LOCAL_ACTOR)

    subject = load(out, "subject.json")
    assert subject["erased"] is True
    values = {v["value"] for vs in subject["personal_data"].values() for v in vs}
    assert values == {"[erased]"}
    paid = load(out, "orders.json")["orders"][0]
    assert set(paid["contact"].values()) == {"[erased]"}
    assert {p["payer_account"] for p in paid["payments"]} == {"[erased]"}
    assert paid["total_due_fen"] == 399900 - 12345
    everything = b"".join(p.read_bytes() for p in out.iterdir())
    assert PHONE.encode() not in everything and b"buyer@example.com" not in everything


def test_a_restricted_subject_still_gets_their_copy_which_states_the_restriction(
    ledger_app: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    """PIPL 47 para 2 stops the ledger's processing, not the subject's own access (PIPL 45)."""
    delivered(ledger_app, clock, "O-1")
    clock.advance(timedelta(days=8))
    ledger_app.execute(complete("O-1"))
    ledger_app.execute(b.other("terminate_account", account_no="acct-1", ground="6.1(7)"))
    ledger_app.execute(
        b.other("place_legal_hold", subject_id="acct-1", reference="CASE-1", reason="dispute")
    )
    out = tmp_path / "copy"

    give_access_copy(ledger_app, "acct-1", out, LOCAL_ACTOR)

    subject = load(out, "subject.json")
    assert subject["restriction"]["basis"] == "account_cancelled"
    assert subject["restriction"]["in_force"] is True
    assert subject["account"] == {"restricted_ground": None, "terminated": True}
    assert [h["reference"] for h in subject["legal_holds"]] == ["CASE-1"]
    [kept] = subject["retention"]
    assert kept["order_no"] == "O-1" and kept["retain_until"].startswith("2029-03-")
    assert subject["personal_data"]["phone"][0]["value"] == PHONE
    assert read_csv(out / "retention.csv")[2][0] == "O-1"


def test_the_copy_is_recorded_without_values_and_shows_in_the_retention_trail(
    ledger_app: Ledger, clock: ManualClock, tmp_path: Path, rt: Runtime, trail: ReadModels
) -> None:
    history(ledger_app, clock)
    out = tmp_path / "copy"

    receipt = give_access_copy(ledger_app, "acct-1", out, ADMIN, reference="REQ-7")

    [given] = events_of(ledger_app, data_subject_id("acct-1"), AccessCopyGiven)
    assert (given.reference, given.position, given.actor) == (
        "REQ-7",
        receipt.position,
        ADMIN.as_dict(),
    )
    assert given.files == [entry.as_dict() for entry in receipt.files]
    stored = json.dumps(vars(given), default=str, ensure_ascii=False)
    for value in (PHONE, b.CONTACT["address"], b.CONTACT["recipient_name"], "buyer@example"):
        assert value not in stored
    position = catch_up(rt)
    steps = trail.retention_steps("acct-1", after=position)
    [step] = [s for s in steps if s["step"] == "access_copy"]
    assert (step["basis"], step["reference"], step["actor"]) == (
        "PIPL 45",
        "REQ-7",
        ADMIN.as_dict(),
    )
    assert step["position"] == receipt.recorded_at_position
    assert step["detail"]["position"] == receipt.position
    assert [f["name"] for f in step["detail"]["files"]] == [f.name for f in receipt.files]


def test_a_failure_before_the_rename_leaves_no_directory_and_no_staging(
    ledger_app: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    """The record fails (the clock is behind the subject's stream: TIME_BEFORE_STREAM) after
    every file was written: the target never appears and the staging directory is gone."""
    ledger_app.execute(b.submit("O-1"))
    ledger_app.execute(
        b.other("place_legal_hold", subject_id="acct-1", reference="CASE-1", reason="dispute")
    )
    clock.set(clock.now() - timedelta(hours=1))
    out = tmp_path / "copy"

    with pytest.raises(LedgerError) as failed:
        give_access_copy(ledger_app, "acct-1", out, LOCAL_ACTOR)

    assert failed.value.code == "TIME_BEFORE_STREAM"
    assert not out.exists()
    assert [name for name in os.listdir(tmp_path) if not name.startswith("ledger.db")] == []


def test_a_bad_path_is_refused_before_anything_is_read_or_written(
    ledger_app: Ledger, tmp_path: Path
) -> None:
    ledger_app.execute(b.submit("O-1"))
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    head = ledger_app.head_position()
    for bad in (a_file, a_file / "copy", tmp_path / "missing" / "copy"):
        with pytest.raises(OutputRefused):
            give_access_copy(ledger_app, "acct-1", bad, LOCAL_ACTOR)
    assert a_file.read_text() == "x" and ledger_app.head_position() == head


def test_the_http_content_is_the_same_copy_recorded_the_same_way(
    ledger_app: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    history(ledger_app, clock)

    content = access_copy_content(ledger_app, "acct-1", ADMIN, reference="REQ-8")

    assert {o["order_no"] for o in content["orders"]} == {"O-1", "O-2"}
    assert content["subject"]["personal_data"]["phone"][0]["value"] == PHONE
    assert content["manifest"]["subject_id"] == "acct-1"
    [given] = events_of(ledger_app, data_subject_id("acct-1"), AccessCopyGiven)
    assert given.reference == "REQ-8" and content["recorded_at_position"] > given.position
