"""The read side fails like the write side (issue 9, item 1): a query whose database went away
or lost a table, and read models opened on no database, give ``STORAGE_UNAVAILABLE`` with the
driver's first line, never a raw psycopg or sqlite3 exception."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest

from ledger.domain.errors import StorageUnavailable
from projections.queries import ORDERS_BY_STATUS, ReadModels
from projections.registry import PROJECTIONS
from projections.schema import LIVE
from tests.fix_pg import database_url

AT = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
QUERIES: dict[str, Callable[[ReadModels], Any]] = {
    "order (one row)": lambda rm: rm.order("A-1"),
    "refusals_in_window (a scalar)": lambda rm: rm.refusals_in_window("ACC-1", AT, 30),
    "linked_accounts (its own SQL)": lambda rm: rm.linked_accounts("ACC-1"),
    "campaign_counts (its own SQL)": lambda rm: rm.campaign_counts("spring"),
    "wait_for (the positions)": lambda rm: rm.wait_for(1, timeout_s=0.1),
    "page (a keyset page after a cursor)": lambda rm: rm.page(
        ORDERS_BY_STATUS, ("paid", AT, AT), page_size=2, cursor=(AT, "A-1")
    ),
    "exists (an owner's row)": lambda rm: rm.exists("flags", "flag_orders", "order_no", "A-1"),
}


@pytest.fixture
def read_models(backend: str) -> Iterator[ReadModels]:
    opened = ReadModels.open(backend, create=True)  # a reader makes nothing; the test does
    try:
        yield opened
    finally:
        opened.close()


def drop_every_live_table(rm: ReadModels) -> None:
    """What an operator's stray DROP, or a restore of another schema, leaves behind."""
    with rm.db.write() as cur:
        for projection in PROJECTIONS:
            for table in projection.tables:
                cur.execute(f'DROP TABLE "{table.physical(LIVE)}"')
        cur.execute(f"DROP TABLE {rm.rt.tracking.table}")


def assert_storage_unavailable(caught: pytest.ExceptionInfo[StorageUnavailable]) -> None:
    error = caught.value
    assert error.code == "STORAGE_UNAVAILABLE"
    assert error.as_dict()["code"] == "STORAGE_UNAVAILABLE"
    assert error.message.startswith("database unavailable or failing: ")
    assert "\n" not in error.message  # the driver's first line only
    assert error.__cause__ is None and error.__suppress_context__


@pytest.mark.parametrize("query", QUERIES.values(), ids=QUERIES.keys())
def test_a_query_on_a_dropped_table_is_storage_unavailable(
    read_models: ReadModels, query: Callable[[ReadModels], Any]
) -> None:
    drop_every_live_table(read_models)
    with pytest.raises(StorageUnavailable) as caught:
        query(read_models)
    assert_storage_unavailable(caught)


@pytest.mark.postgres
@pytest.mark.parametrize("query", QUERIES.values(), ids=QUERIES.keys())
def test_a_query_after_the_server_dropped_the_session_is_storage_unavailable(
    pg_url: str, pg_server_url: str, query: Callable[[ReadModels], Any]
) -> None:
    rm = ReadModels.open(pg_url, create=True)  # a reader makes nothing; the test does
    try:
        with psycopg.connect(pg_server_url, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (urlsplit(pg_url).path.lstrip("/"),),
            )
        with pytest.raises(StorageUnavailable) as caught:
            query(rm)
        assert_storage_unavailable(caught)
    finally:
        rm.close()


def test_read_models_on_a_file_that_is_not_a_database_are_storage_unavailable(
    tmp_path: Path,
) -> None:
    text = tmp_path / "notes.db"
    text.write_text("these are notes, not a database\n" * 100, encoding="utf-8")
    before = text.read_bytes()
    with pytest.raises(StorageUnavailable) as caught:
        ReadModels.open(f"sqlite:///{text}")
    # Found when opening, before any driver error: the message says what the file is.
    assert caught.value.code == "STORAGE_UNAVAILABLE"
    assert caught.value.message == f"{text} is not a SQLite database"
    assert text.read_bytes() == before


@pytest.mark.postgres
def test_read_models_on_a_database_that_does_not_exist_are_storage_unavailable(
    pg_server_url: str,
) -> None:
    missing = database_url(pg_server_url, "ledger_no_such_database_i9")
    with pytest.raises(StorageUnavailable) as caught:
        ReadModels.open(missing)
    assert_storage_unavailable(caught)
    assert "ledger_no_such_database_i9" in caught.value.message
