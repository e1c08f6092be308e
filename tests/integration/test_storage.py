"""Storage chosen by one setting, and its failures as one typed error (DESIGN.md, Errors)."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from ledger import pg_pool
from ledger.application import open_ledger
from ledger.domain.errors import StorageUnavailable
from ledger.storage_url import StorageUrl
from tests import builders as b
from tests.fix_app import master_key_env

CLOSED_PORT_URL = "postgresql://postgres:secret-pw@127.0.0.1:1/ledger"
PROCESSES_AT_ONCE = 6


def test_an_unreachable_database_is_a_typed_error_without_the_password() -> None:
    with pytest.raises(StorageUnavailable) as caught:
        open_ledger(CLOSED_PORT_URL)
    assert caught.value.code == "STORAGE_UNAVAILABLE"
    assert "secret-pw" not in caught.value.message
    assert "127.0.0.1" in caught.value.message


def test_the_cli_reports_an_unreachable_database_in_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "cli", "demo", "--orders", "40"],
        cwd=tmp_path,
        env={"LEDGER_DATABASE_URL": CLOSED_PORT_URL, "PATH": "/usr/bin:/bin", **master_key_env()},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert "ledger: STORAGE_UNAVAILABLE:" in done.stderr
    assert "Traceback" not in done.stderr and "secret-pw" not in done.stderr


def test_unset_url_means_a_sqlite_file_in_var(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    ledger = open_ledger(None)
    try:
        assert ledger.head_position() == 0
    finally:
        ledger.close()
    assert (tmp_path / "var" / "ledger.db").is_file()


def test_processes_starting_together_on_a_fresh_database_all_open_it(backend: str) -> None:
    """Workers and CLIs often start at once: table creation must not race (a lost race
    surfaced as an IntegrityError on the library's migration row, or on pg_type)."""
    # ``run`` is a writer: it makes the fresh database (``status`` would refuse a missing one).
    code = "import sys; from cli import main; sys.exit(main(['projections', 'run', '--once']))"
    env = {"LEDGER_DATABASE_URL": backend, "PATH": "/usr/bin:/bin", **master_key_env()}
    starts = [
        subprocess.Popen(
            [sys.executable, "-c", code],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCESSES_AT_ONCE)
    ]
    failures = []
    for started in starts:
        _, stderr = started.communicate(timeout=120)
        if started.returncode != 0:
            failures.append(stderr[-400:])
    assert failures == []


# -- one bounded pool per process (LEDGER_POOL_SIZE) --------------------------------------------
SERVICE_PROCESSES = 20
SERVICE_POOL_SIZE = 3
SERVICE = """
import sys
from ledger.application import open_ledger
ledger = open_ledger(sys.argv[1])
ledger.execute({"type": "restrict_account", "command_id": "r-" + sys.argv[2],
                "account_no": "acct-" + sys.argv[2], "ground": "6.1(7)"})
print("started", flush=True)
sys.stdin.read()  # stay up, connections held, until the test lets go
ledger.close()
"""


def connections_to(server_url: str, database_url: str) -> int:
    """Sessions on the database of ``database_url``, counted from the admin database."""
    name = urlsplit(database_url).path.lstrip("/")
    with psycopg.connect(server_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (name,)
        ).fetchone()
    assert row is not None
    return int(row[0])


def connections_gone(server_url: str, database_url: str, attempts: int = 50) -> bool:
    """Whether the database's sessions reach zero: a backend leaves pg_stat_activity a moment
    after its client closes the socket, so a count taken at once can still see it."""
    for _ in range(attempts):
        if connections_to(server_url, database_url) == 0:
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("size", [2, 4])
def test_a_busy_ledger_holds_no_more_connections_than_the_pool_size(
    pg_url: str, pg_server_url: str, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    monkeypatch.setenv("LEDGER_POOL_SIZE", str(size))
    ledger = open_ledger(pg_url)
    try:
        # Eight threads at once ask for more connections than the pool has: they queue.
        with ThreadPoolExecutor(max_workers=8) as pool:
            done = list(pool.map(lambda n: ledger.execute(b.submit(f"P{n}")), range(24)))
        ledger.execute_batch(
            [(b.submit(f"B{n}", account_no=f"acct-b{n}"), None) for n in range(40)]
        )
        assert len(done) == 24
        assert connections_to(pg_server_url, pg_url) <= size
    finally:
        ledger.close()
    assert connections_gone(pg_server_url, pg_url)  # closing the last user closes the pool


@pytest.mark.slow  # twenty processes: nine seconds
def test_twenty_service_processes_all_start_on_one_server(pg_url: str, pg_server_url: str) -> None:
    env = {"LEDGER_POOL_SIZE": str(SERVICE_POOL_SIZE), "PATH": "/usr/bin:/bin", **master_key_env()}
    started = [
        subprocess.Popen(
            [sys.executable, "-c", SERVICE, pg_url, str(n)],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(SERVICE_PROCESSES)
    ]
    try:
        lines = [p.stdout.readline() if p.stdout else "" for p in started]
        at_once = connections_to(pg_server_url, pg_url)
    finally:
        outcomes = [p.communicate(input="", timeout=120) for p in started]
    failed = [err[-400:] for p, (_, err) in zip(started, outcomes, strict=True) if p.returncode]
    assert failed == [] and lines == ["started\n"] * SERVICE_PROCESSES
    assert at_once <= SERVICE_PROCESSES * SERVICE_POOL_SIZE


def test_an_exhausted_pool_names_its_size_and_the_setting(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEDGER_POOL_SIZE", "2")
    monkeypatch.setattr(pg_pool, "POOL_WAIT_S", 0.5)
    ledger = open_ledger(pg_url)
    try:
        with (
            pg_pool.lease_for(StorageUrl.parse(pg_url)) as held,
            held.connection(),
            held.connection(),
            pytest.raises(StorageUnavailable) as caught,
        ):
            ledger.execute(b.submit("E1"))
        assert caught.value.code == "STORAGE_UNAVAILABLE"
        assert "pool of 2 connections exhausted after 0.5 s (LEDGER_POOL_SIZE)" in str(
            caught.value.message
        )
        assert ledger.execute(b.submit("E1")).events[0] == "order/Submitted"  # free again
    finally:
        ledger.close()


@pytest.fixture
def limited_role(pg_url: str, pg_server_url: str) -> Iterator[Callable[[int], str]]:
    """``limited(n)``: the URL of ``pg_url`` for a new role that owns the database and may
    hold at most ``n`` connections (the server refuses more: "too many connections")."""
    role = f"ledger_limited_{uuid.uuid4().hex[:8]}"
    database = urlsplit(pg_url).path.lstrip("/")
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        conn.execute(
            sql.SQL("ALTER DATABASE {} OWNER TO {}").format(
                sql.Identifier(database), sql.Identifier(role)
            )
        )

    def limited(n: int) -> str:
        with psycopg.connect(pg_server_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("ALTER ROLE {} CONNECTION LIMIT {}").format(
                    sql.Identifier(role), sql.Literal(n)
                )
            )
        return urlunsplit(urlsplit(pg_url)._replace(netloc=f"{role}@127.0.0.1:5432"))

    try:
        yield limited
    finally:
        with psycopg.connect(pg_server_url, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                (role,),
            )
            conn.execute(
                sql.SQL("ALTER DATABASE {} OWNER TO postgres").format(sql.Identifier(database))
            )
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_a_server_refusing_the_first_connection_says_too_many_connections(
    limited_role: Callable[[int], str],
) -> None:
    with pytest.raises(StorageUnavailable) as caught:
        open_ledger(limited_role(0))
    message = caught.value.message
    assert message.startswith("the server refused: too many connections"), message
    assert "LEDGER_POOL_SIZE" in message


def test_a_server_refusing_more_connections_names_max_connections(
    limited_role: Callable[[int], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """One connection is allowed: the set-up lock holds it, the tables need a second."""
    monkeypatch.setattr(pg_pool, "POOL_WAIT_S", 1.0)
    with pytest.raises(StorageUnavailable) as caught:
        open_ledger(limited_role(1))
    message = caught.value.message
    assert re.match(r"the server refused: too many connections \(max_connections=\d+;", message)
    assert "too many connections for role" in message and "LEDGER_POOL_SIZE" in message
