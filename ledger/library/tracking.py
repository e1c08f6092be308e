"""The library's tracking recorder, as the projections use it (projections/tracking.py): made
by the library's factory (which creates its table), its table's name and schema, and its
private ``_insert_tracking``, called on our own cursor so a batch's view rows and its position
share one transaction."""

from __future__ import annotations

from typing import Any

from eventsourcing.persistence import InfrastructureFactory, Tracking, TrackingRecorder
from eventsourcing.utils import Environment

from ledger.library.settings import library_env
from ledger.storage_url import StorageUrl

TRACKING_ENV_NAME = "projections"


def open_tracking_recorder(url: StorageUrl) -> tuple[TrackingRecorder, str]:
    """The library's tracking recorder (its table created if missing) and the table's name as
    our SQL must write it."""
    env = Environment(TRACKING_ENV_NAME, library_env(url))
    factory: InfrastructureFactory[Any] = InfrastructureFactory.construct(env)
    try:
        recorder = factory.tracking_recorder()
    finally:
        factory.close()
    table = getattr(recorder, "tracking_table_name", "tracking")
    if url.is_postgres:
        schema = recorder.datastore.schema  # the library's PostgreSQL datastore
        table = f'"{schema}"."{table}"'
    return recorder, table


def insert_tracking(recorder: TrackingRecorder, cur: Any, name: str, position: int) -> None:
    """The library's own tracking write (an upsert that refuses to go backwards), in the
    transaction of ``cur``."""
    recorder._insert_tracking(cur, Tracking(name, position))  # type: ignore[attr-defined]  # private API, fenced here
