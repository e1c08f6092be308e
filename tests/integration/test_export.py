"""Regulator exports on SQLite and PostgreSQL: the scope is exact, personal data leaves only
when the basis requires it, and the bag verifies offline until any byte of it is changed."""

from __future__ import annotations

import hashlib
import json
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
from replay.export import request_export, write_export
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
