"""No plaintext personal data in the database after a demo run, on PostgreSQL and SQLite.

The demo sends realistic names, phones, addresses, IPs and payer accounts (ledger/demo/
people.py lists every one of them for a seed). After a run, every cell of every table is
read and searched for each of those strings: as UTF-8 bytes, as the ``\\uXXXX`` escapes of
JSON, and inside whatever a byte cell decompresses to (zlib, gzip or raw deflate), so data
that is merely compressed counts as leaked. The SQLite file is also searched byte for byte.
Each scanner is first shown to find strings planted in plaintext, compressed and escaped.
"""

from __future__ import annotations

import gzip
import json
import sqlite3
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
from psycopg import sql

from ledger.demo import DemoOptions, demo_sqlite_path, run_demo
from ledger.demo.traffic import personal_strings

SEED, ORDERS = 11, 40
MAX_INFLATED_BYTES = 50_000_000
SEALED_TOKEN = b"s2:"  # ledger/sealing.py: what a sealed personal field looks like


def escaped_forms(text: str) -> list[bytes]:
    """``text`` as JSON writes it with ensure_ascii, in lower- and upper-case hex."""
    if text.isascii():
        return []
    lower = json.dumps(text)[1:-1]
    upper = "".join(f"\\u{ord(ch):04X}" if ord(ch) > 127 else ch for ch in text)
    return [lower.encode(), upper.encode()]


def expansions(data: bytes) -> Iterator[bytes]:
    """The bytes, and what they inflate to as zlib/gzip (auto-detected) or raw deflate."""
    yield data
    for wbits in (47, -15):
        inflater = zlib.decompressobj(wbits)
        try:
            inflated = inflater.decompress(data, MAX_INFLATED_BYTES)
        except zlib.error:
            continue
        if inflated:
            yield inflated


def cell_bytes(value: Any) -> Iterator[bytes]:
    if value is None:
        return
    if isinstance(value, memoryview):
        value = value.tobytes()
    if isinstance(value, bytes):
        yield from expansions(value)
    elif isinstance(value, str):
        yield value.encode("utf-8")
    elif isinstance(value, dict | list):
        yield orjson.dumps(value, default=str)
    else:
        yield str(value).encode("utf-8")


@dataclass
class Scan:
    """Everything read, as one haystack; which needles it holds."""

    chunks: list[bytes] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)

    def add_cells(self, table: str, rows: Iterable[Iterable[Any]]) -> None:
        count = 0
        for row in rows:
            count += 1
            for value in row:
                self.chunks.extend(cell_bytes(value))
        self.rows[table] = count

    def haystack(self) -> bytes:
        return b"\x00".join(self.chunks)

    def leaks(self, needles: Iterable[str]) -> set[str]:
        haystack = self.haystack()
        found = set()
        for needle in needles:
            forms = [needle.encode("utf-8"), *escaped_forms(needle)]
            if any(form in haystack for form in forms):
                found.add(needle)
        return found


def scan_postgres(url: str) -> Scan:
    scan = Scan()
    with psycopg.connect(url) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = 'public' ORDER BY table_name"
            )
        ]
        for table in tables:
            query = sql.SQL("SELECT * FROM {}").format(sql.Identifier("public", table))
            scan.add_cells(table, conn.execute(query))
    return scan


def scan_sqlite(path: Path) -> Scan:
    """Every cell of every table, then the raw bytes of the file and its WAL, if any."""
    scan = Scan()
    with sqlite3.connect(path) as conn:
        tables = [
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        ]
        for table in tables:
            quoted = '"' + table.replace('"', '""') + '"'
            scan.add_cells(table, conn.execute(f"SELECT * FROM {quoted}"))
    conn.close()
    for file in (path, path.with_name(path.name + "-wal")):
        if file.exists():
            scan.chunks.append(file.read_bytes())
    return scan


@pytest.fixture(scope="module")
def needles() -> set[str]:
    found = personal_strings(SEED, ORDERS)
    assert len(found) > 100, "the generator should produce plenty of personal data"
    return found


def planted(needles: set[str]) -> dict[str, tuple[str, Any]]:
    """Four needles in four disguises: plain text, zlib bytes, gzip'd JSON, JSON escapes."""
    cjk = sorted(n for n in needles if not n.isascii())
    phone = sorted(n for n in needles if n.isdigit())[0]
    name, address, other = cjk[0], cjk[-1], cjk[1]
    return {
        "plain": (name, name),
        "zlib": (phone, zlib.compress(phone.encode())),
        "gzip_json": (address, gzip.compress(json.dumps({"a": address}).encode())),
        "escaped": (other, json.dumps({"recipient_name": other})),
    }


def check_scanner_finds_planted(scan_of: Any, plant: Any, needles: set[str]) -> None:
    """The scanner is real: each disguise of a planted needle is found."""
    samples = planted(needles)
    assert "\\u" in samples["escaped"][1] and samples["escaped"][0] not in samples["escaped"][1]
    plant(samples)
    found = scan_of().leaks(needles)
    assert {text for text, _ in samples.values()} <= found


def test_postgres_holds_no_plaintext_personal_data(pg_url: str, needles: set[str]) -> None:
    def plant(samples: dict[str, tuple[str, Any]]) -> None:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute("CREATE TABLE privacy_probe (t text, b bytea)")
            for key in ("plain", "escaped"):
                conn.execute("INSERT INTO privacy_probe (t) VALUES (%s)", (samples[key][1],))
            for key in ("zlib", "gzip_json"):
                conn.execute("INSERT INTO privacy_probe (b) VALUES (%s)", (samples[key][1],))

    check_scanner_finds_planted(lambda: scan_postgres(pg_url), plant, needles)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DROP TABLE privacy_probe")

    report = run_demo(DemoOptions(orders=ORDERS, seed=SEED, database_url=pg_url, progress=False))
    assert report.unexpected == []
    scan = scan_postgres(pg_url)
    assert "privacy_probe" not in scan.rows
    assert "ledger_keys" in scan.rows
    assert max(n for table, n in scan.rows.items() if "event" in table) > 500
    assert scan.haystack().count(SEALED_TOKEN) > ORDERS, "personal fields arrive sealed"
    leaked = scan.leaks(needles)
    assert not leaked, f"{len(leaked)} personal strings stored in plaintext"


def test_sqlite_file_holds_no_plaintext_personal_data(tmp_path: Path, needles: set[str]) -> None:
    probe = tmp_path / "probe.db"

    def plant(samples: dict[str, tuple[str, Any]]) -> None:
        with sqlite3.connect(probe) as conn:
            conn.execute("CREATE TABLE privacy_probe (t text, b blob)")
            for key in ("plain", "escaped"):
                conn.execute("INSERT INTO privacy_probe (t) VALUES (?)", (samples[key][1],))
            for key in ("zlib", "gzip_json"):
                conn.execute("INSERT INTO privacy_probe (b) VALUES (?)", (samples[key][1],))
        conn.close()

    check_scanner_finds_planted(lambda: scan_sqlite(probe), plant, needles)

    options = DemoOptions(orders=ORDERS, seed=SEED, var_dir=tmp_path / "var", progress=False)
    report = run_demo(options)
    assert report.unexpected == []
    scan = scan_sqlite(demo_sqlite_path(options))
    assert "ledger_keys" in scan.rows
    assert scan.haystack().count(SEALED_TOKEN) > ORDERS, "personal fields arrive sealed"
    leaked = scan.leaks(needles)
    assert not leaked, f"{len(leaked)} personal strings stored in plaintext"
