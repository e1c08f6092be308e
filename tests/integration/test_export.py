"""Regulator exports on SQLite and PostgreSQL: the scope is exact, personal data leaves only
when the basis requires it, and the bag verifies offline until any byte of it is changed."""

from __future__ import annotations

import csv
import hashlib
import json
import re
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from ledger.application import Ledger
from ledger.domain.context import LOCAL_ACTOR
from ledger.domain.export_request import ExportScope
from ledger.domain.ids import order_id
from projections.engine import Runtime
from replay import export_verifier
from replay.export import _to_csv, request_export, write_export
from replay.seal import seal
from replay.signed_note import Signer
from tests.workload import run_traffic, traffic

ORIGIN = "mall-ledger.test/log"


@pytest.fixture
def signer() -> Signer:
    return Signer(ORIGIN, Signer.generate(ORIGIN).private_key)


@pytest.fixture
def sealed(ledger_app: Ledger, rt: Runtime, signer: Signer) -> Ledger:
    run_traffic(ledger_app, list(traffic(60, seed=31)))
    seal(ledger_app, rt, signer, None, LOCAL_ACTOR)
    return ledger_app


def submissions(ledger: Ledger) -> list[dict[str, Any]]:
    """Every order's submission, read from the log (the export's scope is judged on these)."""
    found = []
    for item, _ in traffic(60, seed=31):
        if item["type"] == "submit_order":
            first = next(iter(ledger.app.events.get(order_id(item["order_no"]))), None)
            if first is not None and type(first).__name__ == "OrderSubmitted":
                found.append({**vars(first), "at": first.timestamp})
    return found


def exported(ledger: Ledger, rt: Runtime, signer: Signer, tmp_path: Path, **scope: Any) -> Path:
    personal = scope.pop("personal_data", False)
    request_id = request_export(ledger, LOCAL_ACTOR, "SAMR", "REF-1", "ECL 25",
                                ExportScope(**scope), personal)  # fmt: skip
    tmp_path.mkdir(parents=True, exist_ok=True)  # --out's directory must exist (as access's)
    out = tmp_path / request_id
    write_export(ledger, rt, request_id, out, signer, LOCAL_ACTOR)
    return out


def orders_in(out: Path) -> set[str]:
    lines = (out / "data" / "orders.jsonl").read_text().splitlines()
    return {json.loads(line)["order_no"] for line in lines}


def vkey(signer: Signer) -> str:
    return signer.verifier().text()


def test_each_filter_and_their_combination_take_exactly_their_orders(
    sealed: Ledger, rt: Runtime, signer: Signer, tmp_path: Path
) -> None:
    subs = submissions(sealed)
    first = subs[0]
    middle = sorted(s["at"] for s in subs)[len(subs) // 2]
    cases = [
        ({"seller": first["seller_id"]}, lambda s: s["seller_id"] == first["seller_id"]),
        ({"account": first["account_no"]}, lambda s: s["account_no"] == first["account_no"]),
        ({"region": first["shipping_region"]},
         lambda s: s["shipping_region"] == first["shipping_region"]),
        ({"sku": first["lines"][0]["sku"]},
         lambda s: any(line["sku"] == first["lines"][0]["sku"] for line in s["lines"])),
        ({"since": middle, "until": middle + timedelta(days=1),
          "region": first["shipping_region"]},
         lambda s: middle <= s["at"] < middle + timedelta(days=1)
         and s["shipping_region"] == first["shipping_region"]),
    ]  # fmt: skip
    for number, (scope, wanted) in enumerate(cases):
        out = exported(sealed, rt, signer, tmp_path / str(number), **scope)
        expected = {s["order_no"] for s in subs if wanted(s)}
        assert expected and orders_in(out) == expected, scope
        export_verifier.check_export(out, vkey(signer))


def test_personal_data_leaves_only_when_the_basis_requires_it(
    sealed: Ledger, rt: Runtime, signer: Signer, tmp_path: Path
) -> None:
    first = submissions(sealed)[0]
    plain = exported(sealed, rt, signer, tmp_path / "a", account=first["account_no"])
    clear = exported(sealed, rt, signer, tmp_path / "b", account=first["account_no"],
                     personal_data=True)  # fmt: skip
    contacts = [sealed.contact(o) for o in orders_in(plain)]
    values = {v for c in contacts for v in c.values() if len(v) > 3}
    assert values
    pseudonymised = _all_text(plain)
    assert not [v for v in values if v in pseudonymised]
    assert all(v in _all_text(clear) for v in values)
    manifest = json.loads((plain / "data" / "manifest.json").read_text())
    assert manifest["personal_data"] == "pseudonyms"


def _all_text(out: Path) -> str:
    return "\n".join(p.read_text("utf-8-sig") for p in sorted(out.rglob("*")) if p.is_file())


def test_the_export_is_recorded_on_its_request(
    sealed: Ledger, rt: Runtime, signer: Signer, tmp_path: Path
) -> None:
    out = exported(sealed, rt, signer, tmp_path, region=submissions(sealed)[0]["shipping_region"])
    manifest = json.loads((out / "data" / "manifest.json").read_text())
    from replay.export import load_request

    request = load_request(sealed, manifest["request"]["request_id"])
    assert [e["checkpoint_size"] for e in request.exports] == [manifest["checkpoint"]["size"]]


@pytest.mark.parametrize(
    "target", ["payments.jsonl", "events.jsonl", "manifest.json", "orders.csv"]
)
def test_a_changed_byte_anywhere_fails_verification(
    sealed: Ledger, rt: Runtime, signer: Signer, tmp_path: Path, target: str
) -> None:
    out = exported(sealed, rt, signer, tmp_path, seller=submissions(sealed)[0]["seller_id"])
    export_verifier.check_export(out, vkey(signer))
    path = out / "data" / target
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(export_verifier.Failed, match="not the file the bag lists"):
        export_verifier.check_export(out, vkey(signer))


def test_a_forger_who_rewrites_the_bag_manifests_is_still_caught(
    sealed: Ledger, rt: Runtime, signer: Signer, tmp_path: Path
) -> None:
    """Changing an amount and recomputing every BagIt checksum: the signed manifest (or the
    row's inclusion proof) no longer agrees."""
    out = exported(sealed, rt, signer, tmp_path, seller=submissions(sealed)[0]["seller_id"])
    payments = out / "data" / "payments.jsonl"
    lines = payments.read_text().splitlines()
    record = json.loads(lines[0])
    record["amount_fen"] = record.get("amount_fen", 0) + 100
    payments.write_text("\n".join([json.dumps(record), *lines[1:]]) + "\n")
    _rebag(out)
    with pytest.raises(export_verifier.Failed, match="amount_fen is not what the signed log"):
        export_verifier.check_export(out, vkey(signer))
    with pytest.raises(export_verifier.Failed, match="no signature by the given key"):
        export_verifier.check_export(out, Signer.generate(ORIGIN).verifier().text())


def _rebag(out: Path) -> None:
    def lines(paths: list[Path]) -> str:
        return "".join(
            f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.relative_to(out)}\n" for p in paths
        )

    payload = sorted(p for p in (out / "data").rglob("*") if p.is_file())
    (out / "manifest-sha256.txt").write_text(lines(payload))
    tags = [out / n for n in ("bagit.txt", "bag-info.txt", "manifest-sha256.txt")]
    (out / "tagmanifest-sha256.txt").write_text(lines(tags))


def _first_payment(lines: list[dict[str, Any]]) -> dict[str, Any]:
    return next(r for r in lines if r["event"] == "PaymentReceived")


def _edit_jsonl(name: str, change: Any, csv_too: bool = True) -> Any:
    """An edit of ``data/NAME.jsonl`` (its CSV rewritten to match, as a careful forger would)."""

    def edit(data: Path) -> None:
        path = data / f"{name}.jsonl"
        records = [json.loads(line) for line in path.read_text().splitlines()]
        change(records)
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
        if csv_too:
            _to_csv(path, data / f"{name}.csv")

    return edit


def _paid_changed(records: list[dict[str, Any]]) -> None:
    records[0]["paid_fen"] += 100


def _amount_changed(records: list[dict[str, Any]]) -> None:
    _first_payment(records)["amount_fen"] += 100


def _order_moved(records: list[dict[str, Any]]) -> None:
    payment = _first_payment(records)
    others = [r["order_no"] for r in records if r["order_no"] != payment["order_no"]]
    payment["order_no"] = others[0]


def _relabelled(records: list[dict[str, Any]]) -> None:
    _first_payment(records)["event"] = "RefundCompleted"


def _dropped(records: list[dict[str, Any]]) -> None:
    del records[1]


def _added(records: list[dict[str, Any]]) -> None:
    records.append(dict(records[0]))


def _csv_amount_changed(data: Path) -> None:
    _edit_csv(
        data,
        lambda header, rows: rows[0].__setitem__(
            header.index("amount_fen"), str(int(rows[0][header.index("amount_fen")]) + 100)
        ),
    )


def _csv_cells_swapped(data: Path) -> None:
    def swap(header: list[str], rows: list[list[str]]) -> None:
        a, b = header.index("amount_fen"), header.index("method")
        rows[0][a], rows[0][b] = rows[0][b], rows[0][a]

    _edit_csv(data, swap)


def _edit_csv(data: Path, change: Any) -> None:
    path = data / "payments.csv"
    with path.open(encoding="utf-8-sig", newline="") as handle:
        header, *rows = list(csv.reader(handle))
    change(header, rows)
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        csv.writer(handle).writerows([header, *rows])


TAMPERS: dict[str, tuple[Any, str]] = {
    "paid_fen of an order": (_edit_jsonl("orders", _paid_changed),
                             r"orders\.jsonl record 1 .*paid_fen is not what its rows make"),
    "amount_fen of a payment, JSONL and CSV": (
        _edit_jsonl("payments", _amount_changed),
        r"payments\.jsonl record \d+ \(position \d+\): amount_fen is not what the signed log"),
    "amount_fen in payments.csv alone": (
        _csv_amount_changed, r"payments\.csv record 1, column amount_fen: not what"),
    "a payment moved to another order": (
        _edit_jsonl("payments", _order_moved),
        r"payments\.jsonl record \d+ \(position \d+\): order_no is not the order of its row"),
    "a payment relabelled as a refund": (
        _edit_jsonl("payments", _relabelled),
        r"payments\.jsonl record \d+ \(position \d+\): event is not its row's"),
    "a record dropped": (_edit_jsonl("payments", _dropped),
                         r"payments\.jsonl record 2: not the record the signed manifest lists"),
    "a record added": (_edit_jsonl("payments", _added),
                       r"payments\.jsonl record \d+: not the record the signed manifest lists"),
    "two CSV cells swapped": (_csv_cells_swapped, r"payments\.csv record 1, column amount_fen"),
}  # fmt: skip


def test_every_forged_record_fails_both_verifiers_naming_its_file_and_record(
    sealed: Ledger, rt: Runtime, signer: Signer, tmp_path: Path
) -> None:
    """Each edit with the bag's checksums recomputed: ``ledger verify-export``'s check and the
    bag's own script both refuse it, naming the file and the record."""
    out = exported(sealed, rt, signer, tmp_path / "bag")
    (tmp_path / "vkey").write_text(vkey(signer))
    for label, (tamper, message) in TAMPERS.items():
        copy = tmp_path / label.replace(" ", "-")
        shutil.copytree(out, copy)
        tamper(copy / "data")
        _rebag(copy)
        with pytest.raises(export_verifier.Failed, match=message):
            export_verifier.check_export(copy, vkey(signer))
        bundled = subprocess.run(
            [sys.executable, str(copy / "data" / "verify_export.py"), str(copy),
             "--public-key", str(tmp_path / "vkey")],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert bundled.returncode == 1, label
        assert re.search(message, bundled.stdout), (label, bundled.stdout)


def test_a_record_rewritten_so_every_check_of_its_facts_holds_fails_the_signed_digests(
    sealed: Ledger, rt: Runtime, signer: Signer, tmp_path: Path
) -> None:
    """The same facts written otherwise (keys reordered): only the signed file digests see it."""
    out = exported(sealed, rt, signer, tmp_path)
    _edit_jsonl("payments", lambda records: records.reverse() or records.reverse(),
                csv_too=False)(out / "data")  # fmt: skip
    path = out / "data" / "payments.jsonl"
    path.write_text(path.read_text().replace('", "', '",  "', 1))
    _rebag(out)
    with pytest.raises(export_verifier.Failed, match="payments.jsonl is not the file the signed"):
        export_verifier.check_export(out, vkey(signer))
