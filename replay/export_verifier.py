"""Verify a mall-ledger export with nothing but Python 3.11+ and ``cryptography``.

    python verify_export.py EXPORT_DIR --public-key FILE

This file is copied into every export (``data/verify_export.py``) and is what ``ledger
verify-export`` runs, so the regulator's check and ours are one code. It imports nothing of
the ledger on purpose: it repeats, in its own words, the few rules it checks, which makes it
also an independent implementation of them. It checks, and names what fails:

1. the bag (RFC 8493): every payload file listed in ``manifest-sha256.txt`` with its digest,
   none missing, none extra; the tag files against ``tagmanifest-sha256.txt``;
2. ``data/manifest.json`` (format ``mall-ledger/export/v2``): ``data/manifest.sig`` is a
   C2SP signed note by the given key over its SHA-256;
3. ``data/checkpoint``: a C2SP ``tlog-checkpoint`` signed by the same key (its origin is the
   key's name), the one the manifest names;
4. every stored event row of ``data/events.jsonl``: its RFC 9162 leaf (``mall-ledger/row/v1``
   bytes) is in the checkpoint's tree by its inclusion proof; each row is of an order in the
   export, and every row of a payment, logistics or return event has its record;
5. every record of ``orders``, ``payments``, ``logistics``, ``returns`` ``.jsonl`` against
   the rows the manifest names for it: an event record's ``order_no`` (the order of its row's
   stream), ``event`` (its row's topic), ``at`` (its row's time), ``position`` and every fact
   (field for field, no field added or left out); an order's record its submission's fields
   and time, its positions (every row of its stream, in order) and what those rows make of it
   (``status``, ``total_due_fen``, ``paid_fen``, ``refunded_fen``, ``completed_at``,
   ``retain_until``, ``closed_ground``). A personal field is sealed in the log: the check is
   that the row holds a sealed value there and the record a pseudonym (``p-`` and 16
   base64url characters, or ``[erased]``) when the manifest says ``pseudonyms``, or a text
   when it says ``clear`` (the clear value itself cannot be checked without the subject's
   key, which the bag does not carry); a linkage digest's record is a pseudonym per key;
6. each ``.csv`` holds, cell for cell, what the ``.jsonl`` beside it holds;
7. every file of ``data/`` (but the manifest and its signature) has the SHA-256 the signed
   manifest gives it, and no other file is there: a record rewritten with the bag's
   checksums recomputed fails here even where checks 5 and 6 cannot see it.
"""

from __future__ import annotations

import argparse
import base64
import csv
import errno
import hashlib
import json
import os
import re
import struct
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

MANIFEST_NOTE_HEADER = "mall-ledger/export-manifest/v1"
MANIFEST_FORMAT = "mall-ledger/export/v2"  # v2: the manifest lists every data file's SHA-256
UNLISTED = frozenset({"manifest.json", "manifest.sig"})  # the two files the others hang on
ROW_FORMAT_LINE = b"mall-ledger/row/v1\n"
RECORD_FILES = ("orders", "payments", "logistics", "returns")
ORDER_TOPIC = "mall-ledger/order"  # an order event's topic: this, a slash, its name
SUBMITTED = f"{ORDER_TOPIC}/Submitted"
# The record file of each event that has one (payments, logistics, returns and after-sales).
KINDS: dict[str, str] = {
    **{f"{ORDER_TOPIC}/{e}": "payments" for e in ("PaymentReceived", "RefundConsentRecorded",
                                                  "RefundInitiated", "RefundCompleted",
                                                  "GiftPriceCharged")},
    **{f"{ORDER_TOPIC}/{e}": "logistics" for e in ("Shipped", "DeliveryAttemptFailed",
                                                   "ContactCallAttempted", "DeliveryRefused",
                                                   "Delivered")},
    **{f"{ORDER_TOPIC}/{e}": "returns" for e in ("ReturnRequested", "ReturnReceived",
                                                 "ReturnInspected", "TransactionReopened",
                                                 "StockShortageDeclared", "StockShortageResolved",
                                                 "PriceErrorDetected", "PriceErrorResolved",
                                                 "MutualTerminationRequested",
                                                 "MutualTerminationAccepted",
                                                 "MutualTerminationDeclined")},
}  # fmt: skip
# An event record's own fields, the rest being its row's facts; a row's fields no record shows.
RECORD_HEADER = frozenset({"order_no", "event", "at", "position"})
ROW_HEADER = frozenset({"originator_id", "originator_version", "originator_topic", "timestamp",
                        "command_id", "class_version"})  # fmt: skip
# An order's record: what its submission said, then what its events made of it.
SUBMISSION_FIELDS = ("order_no", "account_no", "seller_id", "seller_kind", "purchase_type",
                     "shipping_region", "lines", "contact")  # fmt: skip
ORDER_FIELDS = ("status", "total_due_fen", "paid_fen", "refunded_fen", "completed_at",
                "retain_until", "closed_ground")  # fmt: skip
ORDER_HEADER = frozenset({"submitted_at", "version", "positions"})
# The status each of these events leaves an order in (the others leave it as it was).
STATUS_AFTER = {"Submitted": "awaiting_payment", "ContractFormed": "paid", "Shipped": "shipped",
                "DeliveryRefused": "delivery_refused", "Delivered": "delivered",
                "ReturnRequested": "return_requested", "ReturnInspected": "returned",
                "Closed": "closed"}  # fmt: skip
LOWERS_DUE = frozenset({"price_adjustment", "shortage", "return"})  # refund purposes
PSEUDONYM_RE = re.compile(r"p-[A-Za-z0-9_-]{16}")
SEALED_PREFIXES = ("s2:", "s1:")
ERASED = "[erased]"


def manifest_note_text(request_id: str, digest_hex: str) -> str:
    """The text the manifest's signature covers."""
    return f"{MANIFEST_NOTE_HEADER}\n{request_id}\n{digest_hex}\n"


class Failed(Exception):
    """One check that does not hold (its message says which and where)."""


# -- keys and notes (C2SP signed-note, Ed25519) ------------------------------------------------


def parse_vkey(text: str) -> tuple[str, bytes, Ed25519PublicKey]:
    """``name+hexid+base64(0x01 || key)`` → (name, key id, key)."""
    parts = text.strip().split("+", 2)
    if len(parts) != 3:
        raise Failed("the public key is not a C2SP verifier key (name+id+key)")
    raw = base64.b64decode(parts[2])
    if len(raw) != 33 or raw[0] != 1:
        raise Failed("the public key is not an Ed25519 verifier key")
    key_id = hashlib.sha256(parts[0].encode() + b"\n" + raw).digest()[:4]
    if key_id.hex() != parts[1]:
        raise Failed("the public key's id does not match its name and key")
    return parts[0], key_id, Ed25519PublicKey.from_public_bytes(raw[1:])


def open_note(note: str, vkey: tuple[str, bytes, Ed25519PublicKey]) -> str:
    """The note's text once the key's signature on it verifies."""
    name, key_id, key = vkey
    split = note.rfind("\n\n")
    if split < 0 or not note.endswith("\n"):
        raise Failed("not a signed note")
    text, verified = note[: split + 1], False
    for line in note[split + 2 : -1].split("\n"):
        found = re.fullmatch(r"\u2014 (\S+) ([A-Za-z0-9+/=]+)", line)
        if found is None:
            raise Failed("a malformed signature line")
        blob = base64.b64decode(found.group(2))
        if found.group(1) != name or blob[:4] != key_id:
            continue
        try:
            key.verify(blob[4:], text.encode())
        except InvalidSignature:
            raise Failed(f"the signature of {name} does not verify") from None
        verified = True
    if not verified:
        raise Failed("no signature by the given key")
    return text


# -- the tree (RFC 9162) ------------------------------------------------------------------------


def row_leaf(row: dict[str, Any]) -> bytes:
    """SHA-256(0x00 || row bytes) of an ``events.jsonl`` line."""
    topic = row["topic"].encode()
    head = struct.pack(
        ">Q16sQH",
        row["position"],
        bytes.fromhex(row["stream"].replace("-", "")),
        row["version"],
        len(topic),
    )
    data = ROW_FORMAT_LINE + head + topic + base64.b64decode(row["state"])
    return hashlib.sha256(b"\x00" + data).digest()


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: list[bytes]) -> bytes:
    """RFC 9162 section 2.1.3.2."""
    if not 0 <= index < size:
        raise Failed(f"leaf {index} is not in a tree of {size}")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise Failed(f"leaf {index}: the proof is too long")
        if fn & 1 or fn == sn:
            r = hashlib.sha256(b"\x01" + p + r).digest()
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = hashlib.sha256(b"\x01" + r + p).digest()
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise Failed(f"leaf {index}: the proof is too short")
    return r


# -- the checks --------------------------------------------------------------------------------


def check_bag(root: Path) -> None:
    """The payload and tag manifests (RFC 8493 sections 3 and 2.2.1): every file, no other."""
    for manifest, where in (("manifest-sha256.txt", "data"), ("tagmanifest-sha256.txt", None)):
        listed = {}
        for line in (root / manifest).read_text(encoding="utf-8").splitlines():
            digest, _, name = line.partition(" ")
            listed[name.strip()] = digest
        for name, digest in listed.items():
            path = root / name
            if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != digest:
                raise Failed(f"{name} is not the file the bag lists (changed or missing)")
        if where is not None:
            present = {str(p.relative_to(root)) for p in (root / where).rglob("*") if p.is_file()}
            extra = sorted(present - set(listed))
            if extra:
                raise Failed(f"{extra[0]} is in the bag but not in its manifest")


def check_export(root: Path, vkey_text: str) -> dict[str, Any]:
    """All seven checks of the module docstring; the manifest. Raises ``Failed``."""
    check_bag(root)
    vkey = parse_vkey(vkey_text)
    data = root / "data"
    body = (data / "manifest.json").read_bytes()
    manifest: dict[str, Any] = json.loads(body)
    signed = open_note((data / "manifest.sig").read_text(encoding="utf-8"), vkey)
    if manifest.get("format") != MANIFEST_FORMAT:
        raise Failed(f"manifest.json is not of the format {MANIFEST_FORMAT}")
    request_id = manifest["request"]["request_id"]
    if signed != manifest_note_text(request_id, hashlib.sha256(body).hexdigest()):
        raise Failed("the manifest's signature covers another manifest")
    origin, size, root_hash = open_note((data / "checkpoint").read_text("utf-8"), vkey).split("\n")[
        :3
    ]
    if origin != vkey[0] or manifest["checkpoint"] != {
        "origin": origin,
        "size": int(size),
        "root_hash": root_hash,
    }:
        raise Failed("the checkpoint is not the one the manifest names")
    rows = check_rows(data / "events.jsonl", int(size), base64.b64decode(root_hash))
    check_records(data, manifest, rows)
    for name in RECORD_FILES:
        check_csv(data, name)
    check_files(data, manifest["files"])
    return manifest


def data_files(data: Path) -> dict[str, str]:
    """Every file of ``data/`` but the manifest and its signature: name → SHA-256 (hex)."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(data.iterdir())
        if p.name not in UNLISTED
    }


def check_files(data: Path, listed: dict[str, str]) -> None:
    """Each file of ``data/`` is the one the signed manifest lists, and there is no other."""
    found = data_files(data)
    for name in sorted(set(found) | set(listed)):
        if name not in listed:
            raise Failed(f"{name} is in data/ but not in the signed manifest")
        if found.get(name) != listed[name]:
            raise Failed(f"{name} is not the file the signed manifest lists (changed or missing)")


def jsonl(path: Path) -> list[dict[str, Any]]:
    """The records of a JSON Lines file; ``Failed`` naming the file and line of a bad one."""
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            record = json.loads(line)
        except ValueError:
            raise Failed(f"{path.name} record {number}: not a JSON object") from None
        if not isinstance(record, dict):
            raise Failed(f"{path.name} record {number}: not a JSON object")
        records.append(record)
    return records


def check_rows(path: Path, size: int, root_hash: bytes) -> dict[int, dict[str, Any]]:
    """Every row's inclusion in the checkpoint; the rows by position, each with its stored
    state decoded (``state``) and its topic's last part (``event``)."""
    rows = {}
    for row in jsonl(path):
        proof = [base64.b64decode(h) for h in row["proof"]]
        if root_from_inclusion(row["leaf"], size, row_leaf(row), proof) != root_hash:
            where = f"events.jsonl: position {row['position']}"
            raise Failed(f"{where} is not in the checkpoint's tree")
        rows[row["position"]] = {**row, "facts": json.loads(base64.b64decode(row["state"])),
                                 "event": row["topic"].rsplit("/", 1)[-1]}  # fmt: skip
    return rows


def check_records(data: Path, manifest: dict[str, Any], rows: dict[int, dict[str, Any]]) -> None:
    """Counts, positions, and each record against its rows (check 5)."""
    if manifest["counts"]["events"] != len(rows):
        raise Failed("events.jsonl does not hold the manifest's count of rows")
    clear = manifest["personal_data"] == "clear"
    orders = _streams(rows)
    covered: set[int] = set()
    for name in RECORD_FILES:
        records = jsonl(data / f"{name}.jsonl")
        listed = manifest["positions"][name]
        for number, record in enumerate(records, 1):
            where = f"{name}.jsonl record {number}"
            said = record.get("positions") if name == "orders" else [record.get("position")]
            if number > len(listed) or said != listed[number - 1][: len(said or [])]:
                raise Failed(f"{where}: not the record the signed manifest lists there "
                             "(a record added, dropped or moved)")  # fmt: skip
            positions = listed[number - 1]
            missing = [p for p in positions if p not in rows]
            if missing:
                raise Failed(f"{where}: position {missing[0]} is not in events.jsonl")
            if name == "orders":
                check_order(where, record, [rows[p] for p in positions], orders, clear)
            else:
                check_event_record(where, name, record, rows[positions[0]], orders, clear)
                covered.add(positions[0])
        if len(records) != len(listed) or len(records) != manifest["counts"][name]:
            raise Failed(f"{name}.jsonl record {len(records) + 1}: missing (the signed manifest "
                         f"lists {len(listed)} records)")  # fmt: skip
    for position, row in sorted(rows.items()):
        kind = KINDS.get(row["topic"])
        if kind is not None and position not in covered:
            raise Failed(f"{kind}.jsonl: no record of position {position} ({row['event']})")


def _streams(rows: dict[int, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each stream of the bag: its order number (from its submission) and its positions."""
    streams: dict[str, dict[str, Any]] = {}
    for position, row in sorted(rows.items()):
        found = streams.setdefault(row["stream"], {"order_no": None, "positions": []})
        if not found["positions"]:
            if row["topic"] != SUBMITTED:
                raise Failed(f"events.jsonl: position {position} is of an order whose "
                             "submission is not in the bag")  # fmt: skip
            found["order_no"] = row["facts"].get("order_no")
        found["positions"].append(position)
    return streams


def check_event_record(
    where: str,
    name: str,
    record: dict[str, Any],
    row: dict[str, Any],
    orders: dict[str, dict[str, Any]],
    clear: bool,
) -> None:
    """A payment, logistics or return record says what its row says (check 5)."""
    where = f"{where} (position {row['position']})"
    if KINDS.get(row["topic"]) != name or record.get("event") != row["event"]:
        raise Failed(f"{where}: event is not its row's ({row['event']})")
    if record.get("order_no") != orders[row["stream"]]["order_no"]:
        raise Failed(f"{where}: order_no is not the order of its row")
    if not same_moment(record.get("at"), row["facts"].get("timestamp")):
        raise Failed(f"{where}: at is not the time the signed log holds")
    facts = {k: v for k, v in record.items() if k not in RECORD_HEADER}
    check_facts(where, facts, _own_facts(row["facts"]), clear)


def _own_facts(state: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in state.items() if k not in ROW_HEADER}


def check_facts(where: str, facts: dict[str, Any], stored: dict[str, Any], clear: bool) -> None:
    """Field for field: the same names, each value the stored one (personal: see check 5)."""
    for key in sorted(set(facts) | set(stored)):
        if key not in stored:
            raise Failed(f"{where}: {key} is not a field of its row")
        if key not in facts:
            raise Failed(f"{where}: {key} of its row is missing")
        if not same_value(key, facts[key], stored[key], clear):
            raise Failed(f"{where}: {key} is not what the signed log holds")


def same_value(key: str, out: Any, stored: Any, clear: bool) -> bool:
    """Whether an exported value is the stored one: equal, the same moment, or (a sealed
    personal value, a linkage digest) a pseudonym / a clear text as the manifest says."""
    if key == "linkage" and isinstance(stored, dict):
        return (
            isinstance(out, dict)
            and set(out) == set(stored)
            and all(PSEUDONYM_RE.fullmatch(str(v)) for v in out.values())
        )
    if isinstance(stored, dict) and "_type_" in stored:
        if stored["_type_"] == "datetime_iso":
            return same_moment(out, stored)
        return bool(out == stored.get("_data_"))
    if isinstance(stored, dict):
        return (
            isinstance(out, dict)
            and set(out) == set(stored)
            and all(same_value(k, out[k], v, clear) for k, v in stored.items())
        )
    if isinstance(stored, list):
        return (
            isinstance(out, list)
            and len(out) == len(stored)
            and all(same_value(key, o, v, clear) for o, v in zip(out, stored, strict=True))
        )
    if isinstance(stored, str) and stored.startswith(SEALED_PREFIXES):
        if out == ERASED:
            return True
        return isinstance(out, str) and (clear or PSEUDONYM_RE.fullmatch(out) is not None)
    return bool(out == stored and type(out) is type(stored))


def same_moment(out: Any, stored: Any) -> bool:
    """An exported RFC 3339 time and a stored one (``{"_type_": "datetime_iso", …}``)."""
    text = stored.get("_data_") if isinstance(stored, dict) else stored
    if out is None or text is None:
        return out is None and text is None
    try:
        return _moment(out) == _moment(text)
    except (TypeError, ValueError):
        return False


def check_order(
    where: str,
    record: dict[str, Any],
    rows: list[dict[str, Any]],
    orders: dict[str, dict[str, Any]],
    clear: bool,
) -> None:
    """An order's record: its submission, its positions, what its rows make of it."""
    first = rows[0]
    where = f"{where} (order {record.get('order_no')}, position {first['position']})"
    stream = orders.get(first["stream"])
    if first["topic"] != SUBMITTED or stream is None:
        raise Failed(f"{where}: its first position is not an order's submission")
    if record.get("positions") != stream["positions"] or record.get("version") != len(rows):
        raise Failed(f"{where}: positions are not every row of its order in the bag")
    submitted = {k: record.get(k) for k in SUBMISSION_FIELDS}
    check_facts(where, submitted, {k: first["facts"].get(k) for k in SUBMISSION_FIELDS}, clear)
    if not same_moment(record.get("submitted_at"), first["facts"].get("timestamp")):
        raise Failed(f"{where}: submitted_at is not the time the signed log holds")
    folded = fold_order(rows)
    for key in ORDER_FIELDS:
        if not same_value(key, record.get(key), folded[key], clear):
            raise Failed(f"{where}: {key} is not what its rows make of it")
    extra = set(record) - set(SUBMISSION_FIELDS) - set(ORDER_FIELDS) - ORDER_HEADER
    if extra:
        raise Failed(f"{where}: {sorted(extra)[0]} is not a field of an order's record")


def fold_order(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """What an order's events make of it, in this file's own words (the ledger's order
    aggregate keeps the same rules): the status the last status-setting event gave; the
    price due (the submission's, less refunds that lower it, reset by a price-error
    resolution's adjusted total); paid and refunded in sum; completion and retention from
    the last completion or reopening; the ground of its closing."""
    order: dict[str, Any] = {"status": None, "total_due_fen": 0, "paid_fen": 0,
                             "refunded_fen": 0, "completed_at": None, "retain_until": None,
                             "closed_ground": None}  # fmt: skip
    for row in rows:
        facts, event = row["facts"], row["event"]
        order["status"] = STATUS_AFTER.get(event, order["status"])
        if event == "Submitted":
            order["total_due_fen"] = facts["total_due_fen"]
        elif event == "PaymentReceived":
            order["paid_fen"] += facts["amount_fen"]
        elif event == "RefundCompleted":
            order["refunded_fen"] += facts["amount_fen"]
        elif event == "RefundInitiated" and facts.get("purpose") in LOWERS_DUE:
            order["total_due_fen"] -= facts["amount_fen"]
        elif event == "PriceErrorResolved" and facts.get("adjusted_total_fen") is not None:
            order["total_due_fen"] = facts["adjusted_total_fen"]
        elif event in ("TransactionCompleted", "TransactionReopened"):
            order["completed_at"] = facts.get("completed_at")
            order["retain_until"] = facts.get("retain_until")
        elif event == "Closed":
            order["closed_ground"] = facts.get("ground")
    return order


def check_csv(data: Path, name: str) -> None:
    """``NAME.csv`` says what ``NAME.jsonl`` says: the same columns (the union of the records'
    keys, sorted), then per record each cell (empty for none, JSON for a list or object)."""
    records = jsonl(data / f"{name}.jsonl")
    with (data / f"{name}.csv").open(encoding="utf-8-sig", newline="") as handle:
        table = list(csv.reader(handle))
    columns = sorted({k for r in records for k in r})
    if not table or table[0] != columns:
        raise Failed(f"{name}.csv: its columns are not the fields of {name}.jsonl")
    if len(table) - 1 != len(records):
        raise Failed(f"{name}.csv record {min(len(table), len(records) + 1)}: "
                     f"not a record of {name}.jsonl (a record added or dropped)")  # fmt: skip
    for number, (cells, record) in enumerate(zip(table[1:], records, strict=True), 1):
        for column, cell in zip(columns, cells, strict=False):
            if len(cells) != len(columns) or not _same_cell(cell, record.get(column)):
                raise Failed(f"{name}.csv record {number}, column {column}: not what "
                             f"{name}.jsonl record {number} holds")  # fmt: skip


def _same_cell(cell: str, value: Any) -> bool:
    if value is None:
        return cell == ""
    if isinstance(value, dict | list):
        try:
            return bool(json.loads(cell) == value)
        except ValueError:
            return False
    return cell == str(value)


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(str(text).replace(" ", "T"))


def read_inputs(export_dir: Path, public_key: Path) -> str:
    """The verifier key's text, once the export's directory is found. Raises ``OSError``
    naming the path as given (a file the command line names that cannot be read: the
    caller's to report, not a verdict on the export)."""
    text = public_key.read_text(encoding="utf-8", errors="replace")
    if not export_dir.is_dir():
        number = errno.ENOTDIR if export_dir.exists() else errno.ENOENT
        raise OSError(number, os.strerror(number), str(export_dir))
    return text


def verify(export_dir: Path, vkey_text: str) -> tuple[int, str]:
    """``(exit code, the line to print)``: 0 and ``verified: …``, or 1 and ``NOT VERIFIED:``
    with what does not hold (a file of the bag missing, unreadable or malformed included)."""
    try:
        manifest = check_export(export_dir, vkey_text)
    except Failed as exc:
        return 1, f"NOT VERIFIED: {exc}"
    except OSError as exc:
        name = Path(exc.filename).name if exc.filename else "a file of the export"
        return 1, f"NOT VERIFIED: {name} cannot be read ({exc.strerror or 'unreadable'})"
    except (ValueError, KeyError, TypeError, IndexError, AttributeError):
        return 1, "NOT VERIFIED: a file of the export is malformed (not what an export holds)"
    counts = ", ".join(f"{k} {v}" for k, v in manifest["counts"].items())
    return 0, f"verified: {counts}; checkpoint of {manifest['checkpoint']['size']} events"


def main(argv: list[str] | None = None) -> int:
    """Exit 0 verified, 1 not verified, 2 a path given that cannot be read."""
    parser = argparse.ArgumentParser(description="Verify a mall-ledger export offline.")
    parser.add_argument("export_dir", type=Path, help="the export's directory (the bag)")
    parser.add_argument("--public-key", type=Path, required=True, help="the ledger's verifier key")
    args = parser.parse_args(argv)
    try:
        vkey_text = read_inputs(args.export_dir, args.public_key)
    except OSError as exc:
        print(f"verify_export.py: cannot read {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2
    code, line = verify(args.export_dir, vkey_text)
    print(line)
    return code


if __name__ == "__main__":
    sys.exit(main())
