"""Shared by the benchmarks: scratch PostgreSQL databases, JSON-lines output, the workload.

Output convention (DESIGN.md, Benchmarks): progress lines go to stderr, one JSON object per line
goes to stdout, the last lines being the results.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson
import psycopg
from psycopg import sql

from ledger.demo.traffic import generate_traffic
from ledger.domain.errors import LedgerError
from ledger.storage_url import URL_SETTING, StorageUrl

DEFAULT_SERVER_URL = "postgresql://postgres@127.0.0.1:5432/test"
CONNECT_TIMEOUT_S = 5

Traffic = Iterable[tuple[dict[str, Any], datetime]]


# Output -------------------------------------------------------------------------------------


def emit(record: dict[str, Any]) -> None:
    sys.stdout.write(orjson.dumps(record).decode() + "\n")
    sys.stdout.flush()


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# Databases ----------------------------------------------------------------------------------


def database_url(server_url: str, name: str) -> str:
    """``server_url`` with its database replaced by ``name``."""
    return urlunsplit(urlsplit(server_url)._replace(path="/" + name))


def redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(parts.password, "***", 1)))


def server_problem(server_url: str) -> str | None:
    """None when the server answers, else why not."""
    try:
        with psycopg.connect(server_url, connect_timeout=CONNECT_TIMEOUT_S) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError as exc:
        lines = str(exc).strip().splitlines()
        return lines[0] if lines else type(exc).__name__
    return None


def _admin(server_url: str, statement: sql.Composed) -> None:
    with psycopg.connect(server_url, connect_timeout=CONNECT_TIMEOUT_S, autocommit=True) as conn:
        conn.execute(statement)


@contextmanager
def scratch_database(server_url: str, name: str) -> Iterator[str]:
    """Create database ``name`` (dropping a leftover of the same name first), yield its URL,
    drop it on the way out whatever happened."""
    ident = sql.Identifier(name)
    _admin(server_url, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
    _admin(server_url, sql.SQL("CREATE DATABASE {}").format(ident))
    try:
        yield database_url(server_url, name)
    finally:
        _admin(server_url, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))


def count_rows(url: str, table: str) -> int:
    with psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_S) as conn:
        row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
        found = row.fetchone()
    return int(found[0]) if found else 0


# Workload -----------------------------------------------------------------------------------


def traffic(orders: int, seed: int) -> tuple[Traffic, str]:
    """The demo's traffic (every path of the agreement), and its name for the result line."""
    return generate_traffic(orders, seed), "ledger.demo.traffic.generate_traffic"


def write_jsonl(path: Path, commands: Traffic) -> tuple[int, int]:
    """Write ``{...command, "at": ISO time}`` lines; return (lines, bytes)."""
    lines = 0
    with path.open("wb") as out:
        for command, at in commands:
            out.write(orjson.dumps({**command, "at": at.isoformat()}) + b"\n")
            lines += 1
        size = out.tell()
    return lines, size


def checked_server() -> str | None:
    """The PostgreSQL server a bench runs on (``LEDGER_DATABASE_URL`` as written, checked, or
    the default server); None, after saying why on stderr, if it is malformed, not
    PostgreSQL, or not answering (the bench then exits 2)."""
    text = os.environ.get(URL_SETTING) or None
    try:
        where = StorageUrl.parse(text)
    except LedgerError as exc:
        log(f"bench: {exc.message}")
        return None
    if not where.is_postgres and text is not None:
        log("bench: needs PostgreSQL (LEDGER_DATABASE_URL=postgresql://...)")
        return None
    server = text or DEFAULT_SERVER_URL
    problem = server_problem(server)
    if problem is not None:
        log(f"bench: PostgreSQL not reachable at {redacted(server)}: {problem}")
        return None
    return server


# Child processes and the log -----------------------------------------------------------------

EVENTS_TABLE = "ledger_events"


def run_child(module: str, phase: str, *args: str, timeout_s: float) -> dict[str, Any]:
    """``python -m module --child phase args…`` in a process of its own (so its peak memory
    is its own); its last stdout line, a JSON object. ``RuntimeError`` if it failed."""
    done = subprocess.run(
        [sys.executable, "-m", module, "--child", phase, *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
        env={**os.environ, "LEDGER_LOG_LEVEL": "WARNING"},
    )
    if done.returncode != 0:
        raise RuntimeError(f"{phase} failed ({done.returncode}): {done.stderr[-2000:]}")
    result: dict[str, Any] = orjson.loads(done.stdout.strip().splitlines()[-1])
    return result


def split_workload(orders: int, seed: int, tmp: Path) -> tuple[Path, Path, str]:
    """The workload as two JSON-lines files, its first and second half (streamed: the
    workload is never all in memory)."""
    commands, source = traffic(orders, seed)
    whole = tmp / "workload.jsonl"
    lines, _ = write_jsonl(whole, commands)
    first, second = tmp / "first.jsonl", tmp / "second.jsonl"
    with whole.open("rb") as src, first.open("wb") as one, second.open("wb") as two:
        for number, line in enumerate(src):
            (one if number < lines // 2 else two).write(line)
    whole.unlink()
    return first, second, source


def traffic_parts(orders: int, seed: int, tmp: Path, parts: int) -> tuple[list[Path], str]:
    """``orders`` as ``parts`` JSON-lines files, each the demo's traffic of its share of the
    orders under seed ``seed + n`` (so its own order numbers, accounts and codes: the traffic
    keys every business id by its run). One traffic of 60,000 orders would spread over four
    years from March 2026 (40 orders a day) and run past today, and the import refuses a
    command dated in the future; each part spans its share of the days."""
    paths = []
    for number in range(parts):
        share = orders // parts + (1 if number < orders % parts else 0)
        commands, source = traffic(max(share, 1), seed + number)
        paths.append(tmp / f"part{number + 1}.jsonl")
        write_jsonl(paths[-1], commands)
    return paths, f"{source} x {parts} seeds"


def write_log(url: str, path: Path, tmp: Path) -> int:
    """Import ``path`` into the ledger at ``url``; the events table's rows after it."""
    from ledger.application import open_ledger
    from ledger.importer import import_file

    ledger = open_ledger(url)
    try:
        # Each file its own rejects file: a rejects file is never overwritten.
        rejects = tmp / f"{path.stem}.rejects.jsonl"
        report = import_file(ledger, path, batch_size=1000, rejects_path=rejects)
    finally:
        ledger.close()
    log(f"imported {path.name}: {report.elapsed_s:.1f}s")
    return count_rows(url, EVENTS_TABLE)


def rate(events: int, seconds: float) -> float:
    """Events per second, to one decimal (0 for no time)."""
    return round(events / seconds, 1) if seconds > 0 else 0.0


# The command line every log-building bench shares ---------------------------------------------


def bench_parser(
    prog: str, doc: str | None, default_orders: int, default_repeat: int, max_repeat: int
) -> argparse.ArgumentParser:
    """``--orders``, ``--seed``, ``--repeat`` and the hidden ``--child PHASE URL ARG``."""
    parser = argparse.ArgumentParser(prog=prog, description=doc)
    parser.add_argument(
        "--orders",
        type=int,
        default=default_orders,
        help=f"orders in the log, ~13 events each (default {default_orders})",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--repeat",
        type=int,
        default=default_repeat,
        help=f"runs of ours and the limit; the median counts (1..{max_repeat})",
    )
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    return parser


def checked_args(
    parser: argparse.ArgumentParser, argv: list[str] | None, max_orders: int, max_repeat: int
) -> argparse.Namespace:
    """The arguments, ``--orders`` and ``--repeat`` in range (else the parser's usage error)."""
    args = parser.parse_args(argv)
    if not args.child and not 1 <= args.orders <= max_orders:
        parser.error(f"--orders must be between 1 and {max_orders}")
    if not 1 <= args.repeat <= max_repeat:
        parser.error(f"--repeat must be between 1 and {max_repeat}")
    return args


def bench_main(
    args: argparse.Namespace,
    phases: Mapping[str, Callable[[str, str], dict[str, Any]]],
    measure: Callable[[argparse.Namespace, str, Path], dict[str, Any]],
    name: str,
) -> int:
    """A child runs its phase and prints its figures; the parent measures on a checked
    server in a temporary directory and emits the result (exit 2 without a server)."""
    if args.child:
        phase, url, arg = args.child
        print(orjson.dumps(phases[phase](url, arg)).decode())
        return 0
    server = checked_server()
    if server is None:
        return 2
    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
        emit(measure(args, server, Path(tmp)))
    return 0
