"""One bounded PostgreSQL connection pool per process and database, shared by every store.

The library's datastore (events, and the projections' tracking recorder), the key store and
the set-up lock each used to open connections of their own: seven per ledger, so twenty
service processes exhausted a stock server (``max_connections = 100``). Now each takes a
``PoolLease`` on one pool of at most ``LEDGER_POOL_SIZE`` connections (ledger/storage_url.py)
for its database, made on first use and closed when its last lease is closed.

When no connection comes within ``POOL_WAIT_S`` the error names the limit: the server refused
connections (too many clients: its ``max_connections``, or a role's or database's connection
limit), or this process's pool was exhausted (``LEDGER_POOL_SIZE``). Either is
``STORAGE_UNAVAILABLE``, raised as such so the library's retries do not multiply the wait.

A forked child never uses its parent's pool (the registry is keyed by process id); psycopg
does not close a connection in a process other than the one that opened it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import Connection
from psycopg.conninfo import make_conninfo
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from ledger.domain.errors import StorageUnavailable
from ledger.storage_url import StorageUrl

POOL_WAIT_S = 30.0  # a caller waits this long for a free connection
CONNECT_TIMEOUT_S = 10  # one connection attempt
IDLE_IN_TRANSACTION_TIMEOUT_S = 30
_TOO_MANY = ("too many clients", "too many connections")

Target = dict[str, str]


def refusal(exc: BaseException) -> str | None:
    """The server's words when it refused a connection for too many of them, else None."""
    text = str(exc)
    if getattr(exc, "sqlstate", None) != "53300" and not any(t in text for t in _TOO_MANY):
        return None
    said = text.rsplit("FATAL:", 1)[-1].strip().splitlines()
    return said[0] if said else "too many connections"


class _Pool(ConnectionPool[Connection[DictRow]]):
    """Remembers why the last connection attempt failed, if the server refused it."""

    refused: str | None = None

    def _connect(self, timeout: float | None = None) -> Connection[DictRow]:
        try:
            conn = super()._connect(timeout)
        except psycopg.OperationalError as exc:
            self.refused = refusal(exc)
            raise
        self.refused = None
        return conn


def _configure(conn: Connection[Any]) -> None:
    """What the library's datastore does to each new connection."""
    conn.autocommit = True
    conn.execute(f"SET idle_in_transaction_session_timeout = '{IDLE_IN_TRANSACTION_TIMEOUT_S}s'")


class SharedPool:
    def __init__(self, target: Target, size: int) -> None:
        self.target = target
        self.size = size
        self.users = 0
        self.max_connections = self._probe(target)
        self.pool = _Pool(
            kwargs={**target, "row_factory": dict_row, "connect_timeout": CONNECT_TIMEOUT_S},
            connection_class=Connection[DictRow],
            min_size=1,
            max_size=size,
            open=False,
            configure=_configure,
            timeout=POOL_WAIT_S,
            name="ledger",
        )
        self.pool.open(wait=False)

    def _probe(self, target: Target) -> int | None:
        """Connect once now, so an unreachable or full server fails at once with its reason
        (the pool would retry in the background until the wait ran out)."""
        try:
            conninfo = make_conninfo(**target)
            with psycopg.connect(conninfo, connect_timeout=CONNECT_TIMEOUT_S) as conn:
                row = conn.execute("SHOW max_connections").fetchone()
        except psycopg.OperationalError as exc:
            said = refusal(exc)
            if said is None:
                raise
            raise StorageUnavailable(self.refused_message(said, None)) from None
        return int(row[0]) if row else None

    def refused_message(self, said: str, max_connections: int | None) -> str:
        limit = f"max_connections={max_connections}" if max_connections else "max_connections"
        return (
            f"the server refused: too many connections ({limit}; the server said: {said}); "
            f"this process uses at most {self.size} (LEDGER_POOL_SIZE)"
        )

    def refused_now(self) -> str | None:
        """Whether the server refuses a new connection right now, in its words: the pool's
        own attempts may not have failed yet when the wait runs out (it grows and retries in
        the background), so the error path asks once itself."""
        try:
            conninfo = make_conninfo(**self.target)
            psycopg.connect(conninfo, connect_timeout=CONNECT_TIMEOUT_S).close()
        except psycopg.OperationalError as exc:
            return refusal(exc)
        return None

    def unavailable(self) -> StorageUnavailable:
        """Why no connection came within the wait: refused by the server, or all in use."""
        said = self.pool.refused or self.refused_now()
        if said is not None:
            return StorageUnavailable(self.refused_message(said, self.max_connections))
        return StorageUnavailable(
            f"connection pool of {self.size} connections exhausted after {POOL_WAIT_S:g} s "
            "(LEDGER_POOL_SIZE): more work in this process waits on the database than the "
            "pool allows"
        )


class PoolLease:
    """One store's hold on its process's shared pool; closing it twice releases it once.
    Offers what the library's datastore asks of its pool (``open``, ``connection``,
    ``close``)."""

    def __init__(self, key: tuple[Any, ...], shared: SharedPool) -> None:
        self._key = key
        self._shared: SharedPool | None = shared

    @property
    def size(self) -> int:
        assert self._shared is not None, "lease closed"
        return self._shared.size

    def open(self, wait: bool = False, timeout: float = POOL_WAIT_S) -> None:
        """The shared pool is open while any lease is."""

    @contextmanager
    def connection(self, timeout: float | None = None) -> Iterator[Connection[DictRow]]:
        shared = self._shared
        if shared is None:
            raise StorageUnavailable("the ledger's database connections were closed")
        try:
            conn = shared.pool.getconn(timeout)
        except PoolTimeout:
            raise shared.unavailable() from None
        try:
            with conn:  # as the pool's own connection(): ends a transaction left open
                yield conn
        finally:
            shared.pool.putconn(conn)

    def close(self) -> None:
        if self._shared is not None:
            _release(self._key, self._shared)
            self._shared = None

    def __enter__(self) -> PoolLease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_registry_lock = threading.Lock()
_registry: dict[tuple[Any, ...], SharedPool] = {}


def lease(target: Target, size: int) -> PoolLease:
    """A lease on this process's pool for ``target``, made (and connected once) if new, of at
    most ``size`` connections."""
    key = (os.getpid(), *sorted(target.items()))
    with _registry_lock:
        shared = _registry.get(key)
        if shared is None:
            shared = _registry[key] = SharedPool(target, size)
        shared.users += 1
    return PoolLease(key, shared)


def lease_for(url: StorageUrl) -> PoolLease:
    """A lease on the pool of a PostgreSQL ``url``."""
    assert url.pg is not None, "a PostgreSQL URL"
    return lease(url.pg.as_dict(), url.pool_size)


def _release(key: tuple[Any, ...], shared: SharedPool) -> None:
    with _registry_lock:
        shared.users -= 1
        if shared.users > 0 or _registry.get(key) is not shared:
            return
        del _registry[key]
    shared.pool.close()
