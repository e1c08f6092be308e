"""The library's PostgreSQL factory with its datastore on the process's shared pool
(ledger/pg_pool.py): relies on the datastore's ``pool`` attribute and its pool's ``kwargs``."""

from __future__ import annotations

from eventsourcing.postgres import PostgresFactory
from eventsourcing.utils import Environment, EnvType

from ledger.library.settings import POOL_SIZE_KEY
from ledger.pg_pool import lease
from ledger.storage_url import DEFAULT_POOL_SIZE


class SharedPoolPostgresFactory(PostgresFactory):
    """The library's PostgreSQL factory, its datastore on the process's shared pool."""

    def __init__(self, env: Environment | EnvType | None) -> None:
        super().__init__(env)
        own = self.datastore.pool.kwargs  # its pool is made but never opened: no connection
        assert isinstance(own, dict)
        target = {k: str(own[k]) for k in ("dbname", "host", "port", "user", "password")}
        size = int(self.env.get(POOL_SIZE_KEY) or DEFAULT_POOL_SIZE)
        self.datastore.pool = lease(target, size)  # type: ignore[assignment]  # duck-typed pool
