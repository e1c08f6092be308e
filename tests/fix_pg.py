"""Pytest plugin: throwaway PostgreSQL databases for tests (DESIGN.md, Tests).

Loaded with ``-p tests.fix_pg`` (pyproject addopts). The server is found through
``LEDGER_TEST_PG_URL`` (an admin URL; default ``postgresql://postgres@127.0.0.1:5432/test``).
Every test that asks for ``pg_url`` gets a database of its own, ``ledger_test_<12 hex>``,
which is dropped afterwards (``WITH (FORCE)``, so connections left open do not block it).

Without a reachable server the PostgreSQL tests skip with the reason; when ``CI=true`` they
fail instead, so a CI run can never pass by quietly skipping them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
URL_ENV_VAR = "LEDGER_TEST_PG_URL"
DATABASE_PREFIX = "ledger_test_"
CONNECT_TIMEOUT_SECONDS = 3

# Fixtures whose use means "this test needs PostgreSQL"; such tests get the marker.
PG_FIXTURES = frozenset({"pg_server_url", "pg_url", "pg_url_module"})


def admin_url() -> str:
    return os.environ.get(URL_ENV_VAR) or DEFAULT_ADMIN_URL


def in_ci() -> bool:
    return os.environ.get("CI") == "true"


def database_url(server_url: str, name: str) -> str:
    """``server_url`` with its database replaced by ``name`` (user, host, port, query kept)."""
    parts = urlsplit(server_url)
    return urlunsplit(parts._replace(path="/" + name))


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def check_server(url: str) -> str | None:
    """None when the server at ``url`` answers, else the reason it does not."""
    try:
        with psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_SECONDS, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:  # OperationalError for refused/timeout/auth, others for oddities
        reason = str(exc).strip().splitlines()
        return f"{type(exc).__name__}: {reason[0] if reason else 'no detail'}"
    return None


def new_database_name() -> str:
    return f"{DATABASE_PREFIX}{uuid.uuid4().hex[:12]}"


def create_database(server_url: str, name: str) -> None:
    with psycopg.connect(
        server_url, connect_timeout=CONNECT_TIMEOUT_SECONDS, autocommit=True
    ) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database(server_url: str, name: str) -> None:
    with psycopg.connect(
        server_url, connect_timeout=CONNECT_TIMEOUT_SECONDS, autocommit=True
    ) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def database_exists(server_url: str, name: str) -> bool:
    with psycopg.connect(
        server_url, connect_timeout=CONNECT_TIMEOUT_SECONDS, autocommit=True
    ) as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    return row is not None


@contextmanager
def temporary_database(server_url: str) -> Iterator[str]:
    """Create a uniquely named database, yield its URL, drop it on the way out."""
    name = new_database_name()
    create_database(server_url, name)
    try:
        yield database_url(server_url, name)
    finally:
        drop_database(server_url, name)


@pytest.fixture(scope="session")
def pg_server_url() -> str:
    """The admin URL, once the server has been seen to answer (checked once per session)."""
    url = admin_url()
    reason = check_server(url)
    if reason is not None:
        message = f"PostgreSQL not reachable at {_redacted(url)}: {reason}"
        if in_ci():
            pytest.fail(f"{message} (CI=true: PostgreSQL tests must run, not skip)")
        pytest.skip(message)
    return url


@pytest.fixture
def pg_url(pg_server_url: str) -> Iterator[str]:
    """A fresh, empty database for one test; dropped when the test ends."""
    with temporary_database(pg_server_url) as url:
        yield url


@pytest.fixture(scope="module")
def pg_url_module(pg_server_url: str) -> Iterator[str]:
    """A fresh database shared by one test module (for expensive suites); dropped after it."""
    with temporary_database(pg_server_url) as url:
        yield url


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "postgres: needs a PostgreSQL server")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        names = getattr(item, "fixturenames", ())
        if PG_FIXTURES.intersection(names):
            item.add_marker(pytest.mark.postgres)
