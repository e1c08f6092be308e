"""Which failures are an event's (stop the projection) and which the moment's (retry), and
what a halt records: the exception's class and database code, never its message."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest
from psycopg import errors

from projections.poison import Undecodable, is_transient, reason_of


@pytest.mark.parametrize(
    "exc",
    [
        errors.CharacterNotInRepertoire("invalid byte sequence: 0x00 in 'a\\x00b'"),
        errors.NumericValueOutOfRange("out of range"),
        errors.UniqueViolation("duplicate key"),
        errors.ProgramLimitExceeded("index row size exceeds maximum"),
        errors.UndefinedColumn("no such column"),
        psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes"),
        sqlite3.IntegrityError("UNIQUE constraint failed"),
        sqlite3.ProgrammingError("Error binding parameter 6: type 'dict' is not supported"),
        OverflowError("Python int too large to convert to SQLite INTEGER"),
        KeyError("reason"),
        Undecodable("orjson.JSONDecodeError"),
    ],
)
def test_an_events_own_failure_is_poison(exc: BaseException) -> None:
    assert not is_transient(exc)


@pytest.mark.parametrize(
    "exc",
    [
        psycopg.OperationalError("the connection is lost"),
        psycopg.InterfaceError("the connection is closed"),
        errors.SerializationFailure("could not serialize access"),
        errors.DeadlockDetected("deadlock detected"),
        errors.LockNotAvailable("could not obtain lock"),
        errors.QueryCanceled("canceling statement due to statement timeout"),
        errors.AdminShutdown("terminating connection"),
        errors.DiskFull("could not extend file"),
        MemoryError(),
    ],
)
def test_a_failure_of_the_moment_is_retried(exc: BaseException) -> None:
    assert is_transient(exc)


def test_a_reason_names_the_class_and_code_and_never_the_value() -> None:
    value = "张三 13800000000 a\x00b"
    pg = errors.CharacterNotInRepertoire(f"invalid byte sequence in {value}")
    assert reason_of(pg) == "psycopg.errors.CharacterNotInRepertoire (SQLSTATE 22021)"
    assert reason_of(KeyError(value)) == "KeyError"
    assert reason_of(psycopg.DataError(value)) == "psycopg.DataError"
    assert reason_of(Undecodable("orjson.JSONDecodeError")) == "undecodable: orjson.JSONDecodeError"


def test_a_real_sqlite_error_carries_its_error_name() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (k text PRIMARY KEY)")
    conn.execute("INSERT INTO t VALUES ('x')")
    with pytest.raises(sqlite3.IntegrityError) as caught:
        conn.execute("INSERT INTO t VALUES ('x')")
    assert reason_of(caught.value) == "sqlite3.IntegrityError (SQLITE_CONSTRAINT_PRIMARYKEY)"
    assert not is_transient(caught.value)
