"""The database URL, parsed once (DESIGN.md, Settings): ``LEDGER_DATABASE_URL`` or
``--database-url`` becomes a ``StorageUrl`` that every store is opened with, so no other module
reads a scheme again.

- unset → the SQLite file ``var/ledger.db``;
- ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db`` → that SQLite file;
- ``postgresql://user:password@host:port/dbname`` (or ``postgres://``) → PostgreSQL.

A URL breaking these rules is ``InvalidCommand`` naming the setting and the rule, the URL shown
with its password replaced (``redacted``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from urllib.parse import unquote, urlsplit

from ledger.domain.errors import InvalidCommand
from ledger.setting_values import read_whole_number

URL_SETTING = "LEDGER_DATABASE_URL"
DEFAULT_SQLITE_PATH = Path("var/ledger.db")
SQLITE_PREFIX = "sqlite:///"
POSTGRES_SCHEMES = ("postgresql", "postgres")
# PostgreSQL connections per process, all stores together (ledger/pg_pool.py). At least two:
# one may hold the set-up lock while another creates the tables.
DEFAULT_POOL_SIZE = 4
MIN_POOL_SIZE, MAX_POOL_SIZE = 2, 100


class StorageKind(StrEnum):
    SQLITE = "sqlite"
    POSTGRES = "postgres"


def read_pool_size(environ: Mapping[str, str] | None = None) -> int:
    """``LEDGER_POOL_SIZE``: a whole number from MIN_POOL_SIZE to MAX_POOL_SIZE."""
    env = os.environ if environ is None else environ
    return read_whole_number(
        env, "LEDGER_POOL_SIZE", DEFAULT_POOL_SIZE, MIN_POOL_SIZE, MAX_POOL_SIZE
    )


def redact(text: str) -> str:
    """A URL with the password of its user part replaced by ``***``. The user part ends at the
    last ``@``, so a password with an unescaped ``@`` or ``/`` is hidden whole."""
    scheme, sep, rest = text.partition("://")
    userinfo, at, tail = rest.rpartition("@")
    if not sep or not at or ":" not in userinfo:
        return text
    return f"{scheme}://{userinfo.split(':', 1)[0]}:***@{tail}"


def strip_password(text: str) -> tuple[str, bool]:
    """``text`` (a database URL) with the password of its user part left out, and whether
    there was one: what may be printed for a user to run again (libpq then reads the password
    from ``PGPASSWORD`` or ``~/.pgpass``)."""
    scheme, sep, rest = text.partition("://")
    userinfo, at, tail = rest.rpartition("@")
    if not sep or not at or ":" not in userinfo:
        return text, False
    return f"{scheme}://{userinfo.split(':', 1)[0]}@{tail}", True


@dataclass(frozen=True)
class PgTarget:
    """Connection parameters, as psycopg and the library's settings take them."""

    dbname: str
    host: str
    port: int
    user: str
    password: str = field(repr=False)

    def as_dict(self) -> dict[str, str]:
        return {
            "dbname": self.dbname,
            "host": self.host,
            "port": str(self.port),
            "user": self.user,
            "password": self.password,
        }


@dataclass(frozen=True)
class StorageUrl:
    """Where the ledger lives: a SQLite file (``sqlite_path``) or a PostgreSQL database
    (``pg``), with the pool size its PostgreSQL stores share. ``redacted`` is the form for
    messages and logs."""

    kind: StorageKind
    redacted: str
    sqlite_path: Path | None = None
    pg: PgTarget | None = None
    pool_size: int = DEFAULT_POOL_SIZE

    @property
    def is_postgres(self) -> bool:
        return self.kind is StorageKind.POSTGRES

    @property
    def where(self) -> str:
        """The database named for a person, without user or password."""
        if self.pg is not None:
            return f"PostgreSQL {self.pg.host}:{self.pg.port}/{self.pg.dbname}"
        return f"SQLite {self.sqlite_path}"

    @property
    def without_password(self) -> str:
        """A URL that opens this database again with the password left out (PostgreSQL then
        takes it from ``PGPASSWORD`` or ``~/.pgpass``); a SQLite file by its absolute path.
        What a master keyring records of the databases using it."""
        if self.pg is not None:
            return f"postgresql://{self.pg.user}@{self.pg.host}:{self.pg.port}/{self.pg.dbname}"
        assert self.sqlite_path is not None
        return f"{SQLITE_PREFIX}{self.sqlite_path.resolve()}"

    @classmethod
    def sqlite(cls, path: Path, *, pool_size: int | None = None) -> StorageUrl:
        return cls(
            StorageKind.SQLITE,
            f"{SQLITE_PREFIX}{path}",
            sqlite_path=path,
            pool_size=read_pool_size() if pool_size is None else pool_size,
        )

    @classmethod
    def parse(
        cls,
        text: str | None,
        *,
        setting: str = URL_SETTING,
        environ: Mapping[str, str] | None = None,
    ) -> StorageUrl:
        """``text`` (unset or empty: the default SQLite file) checked and parsed.

        Raises InvalidCommand(setting, rule) for an unknown scheme, a ``sqlite://`` URL
        without a path, or a PostgreSQL URL with a port that is not a number from 1 to 65535.
        """
        pool_size = read_pool_size(environ)
        if not text:
            return cls.sqlite(DEFAULT_SQLITE_PATH, pool_size=pool_size)
        shown = redact(text)
        scheme = text.split(":", 1)[0].lower() if ":" in text else ""
        if scheme == "sqlite":
            path = text.removeprefix(SQLITE_PREFIX) if text.startswith(SQLITE_PREFIX) else ""
            if not path or path.endswith("/"):
                raise InvalidCommand(
                    setting, f"a sqlite URL is sqlite:///PATH naming a file (got {shown})"
                )
            return cls.sqlite(Path(path), pool_size=pool_size)
        if scheme in POSTGRES_SCHEMES and text.lower().startswith(f"{scheme}://"):
            return cls(
                StorageKind.POSTGRES,
                shown,
                pg=_pg_target(text, setting, shown),
                pool_size=pool_size,
            )
        raise InvalidCommand(
            setting,
            "must start with postgresql:// or sqlite:/// (postgres:// is taken as postgresql://;"
            f" or be unset) (got {shown})",
        )

    @classmethod
    def of(cls, url: StorageUrl | str | None) -> StorageUrl:
        """A parsed URL as is; a string or None parsed as ``LEDGER_DATABASE_URL``."""
        return url if isinstance(url, StorageUrl) else cls.parse(url)


def _pg_target(text: str, setting: str, shown: str) -> PgTarget:
    try:
        parts = urlsplit(text)
    except ValueError:  # a malformed host, such as an IPv6 address missing its "]"
        raise InvalidCommand(
            setting, f"the host is not a valid name or address (got {shown})"
        ) from None
    if parts.query or parts.fragment:
        # The library's PostgreSQL settings take host, port, database, user and password only:
        # a parameter such as sslmode would be dropped, and a connection made without it.
        raise InvalidCommand(
            setting,
            "takes no ?parameters (sslmode and the like are not supported: set them with "
            f"PGSSLMODE and the other libpq variables) (got {shown})",
        )
    try:
        port = 5432 if parts.port is None else parts.port
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise InvalidCommand(setting, f"the port must be a number from 1 to 65535 (got {shown})")
    return PgTarget(
        dbname=unquote(parts.path.lstrip("/")) or "postgres",
        host=parts.hostname or "127.0.0.1",
        port=port,
        user=unquote(parts.username or "postgres"),
        password=unquote(parts.password or ""),
    )
