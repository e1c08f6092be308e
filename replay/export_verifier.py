"""Verify a mall-ledger export with nothing but Python 3.11+ and ``cryptography``.

    python verify_export.py EXPORT_DIR --public-key FILE

This file is copied into every export (``data/verify_export.py``) and is what ``ledger
verify-export`` runs, so the regulator's check and ours are one code. It imports nothing of
the ledger on purpose: it repeats, in its own words, the few rules it checks, which makes it
also an independent implementation of them. It checks, and names what fails:

1. the bag (RFC 8493): every payload file listed in ``manifest-sha256.txt`` with its digest,
   none missing, none extra; the tag files against ``tagmanifest-sha256.txt``;
2. ``data/manifest.sig``: a C2SP signed note by the given key over the SHA-256 of
   ``data/manifest.json``;
3. ``data/checkpoint``: a C2SP ``tlog-checkpoint`` signed by the same key (its origin is the
   key's name), the one the manifest names;
4. every stored event row of ``data/events.jsonl``: its RFC 9162 leaf (``mall-ledger/row/v1``
   bytes) is in the checkpoint's tree by its inclusion proof;
5. every record: the positions the manifest gives it are rows of ``events.jsonl``, and an
   event record's amounts, times and ids are those of its row; the counts are the manifest's.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import re
import struct
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

MANIFEST_NOTE_HEADER = "mall-ledger/export-manifest/v1"
ROW_FORMAT_LINE = b"mall-ledger/row/v1\n"
RECORD_FILES = ("orders", "payments", "logistics", "returns")
MAX_PROBLEMS = 50
# Facts an event record copies from its row: compared one for one.
COMPARED = ("amount_fen", "method", "payment_id", "refund_id", "carrier", "tracking_no", "sku")


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
    """All five checks of the module docstring; the manifest. Raises ``Failed``."""
    check_bag(root)
    vkey = parse_vkey(vkey_text)
    data = root / "data"
    body = (data / "manifest.json").read_bytes()
    manifest: dict[str, Any] = json.loads(body)
    signed = open_note((data / "manifest.sig").read_text(encoding="utf-8"), vkey)
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
    return manifest


def check_rows(path: Path, size: int, root_hash: bytes) -> dict[int, dict[str, Any]]:
    """Every row's inclusion in the checkpoint; the rows by position."""
    rows = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        proof = [base64.b64decode(h) for h in row["proof"]]
        if root_from_inclusion(row["leaf"], size, row_leaf(row), proof) != root_hash:
            raise Failed(f"position {row['position']} is not in the checkpoint's tree")
        rows[row["position"]] = row
    return rows


def check_records(data: Path, manifest: dict[str, Any], rows: dict[int, dict[str, Any]]) -> None:
    """Counts, positions, and each event record's facts against its row."""
    if manifest["counts"]["events"] != len(rows):
        raise Failed("events.jsonl does not hold the manifest's count of rows")
    for name in RECORD_FILES:
        records = [json.loads(x) for x in (data / f"{name}.jsonl").read_text("utf-8").splitlines()]
        if len(records) != manifest["counts"][name] or len(manifest["positions"][name]) != len(
            records
        ):
            raise Failed(f"{name}.jsonl does not hold the manifest's count of records")
        for number, (record, positions) in enumerate(
            zip(records, manifest["positions"][name], strict=True)
        ):
            missing = [p for p in positions if p not in rows]
            if missing:
                raise Failed(
                    f"{name}.jsonl record {number + 1}: position {missing[0]} not in the bag"
                )
            if name != "orders":
                check_facts(name, number, record, rows[positions[0]])


def check_facts(name: str, number: int, record: dict[str, Any], row: dict[str, Any]) -> None:
    """An event record says what its stored row says (amounts, ids, time)."""
    state = json.loads(base64.b64decode(row["state"]))
    where = f"{name}.jsonl record {number + 1} (position {row['position']})"
    if record["position"] != row["position"]:
        raise Failed(f"{where}: its position is not its row's")
    for key in COMPARED:
        if key in record and record[key] != state.get(key):
            raise Failed(f"{where}: {key} is not what the signed log holds")
    stamp = state.get("timestamp", {})
    stored_at = stamp.get("_data_") if isinstance(stamp, dict) else stamp
    if stored_at is None or _moment(record["at"]) != _moment(stored_at):
        raise Failed(f"{where}: its time is not what the signed log holds")


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(str(text).replace(" ", "T"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Verify a mall-ledger export offline.")
    parser.add_argument("export_dir", type=Path, help="the export's directory (the bag)")
    parser.add_argument("--public-key", type=Path, required=True, help="the ledger's verifier key")
    args = parser.parse_args(argv)
    try:
        manifest = check_export(args.export_dir, args.public_key.read_text(encoding="utf-8"))
    except Failed as exc:
        print(f"NOT VERIFIED: {exc}")
        return 1
    except (OSError, ValueError, KeyError) as exc:
        print(f"NOT VERIFIED: the export is incomplete or malformed ({type(exc).__name__})")
        return 1
    counts = ", ".join(f"{k} {v}" for k, v in manifest["counts"].items())
    print(f"verified: {counts}; checkpoint of {manifest['checkpoint']['size']} events")
    return 0


if __name__ == "__main__":
    sys.exit(main())
