"""A rebuild split between processes: the same tables as one process builds, and a process
that fails or is killed fails the rebuild without touching the live projections."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import pytest

from ledger.application import Ledger, open_ledger
from ledger.clock import ManualClock
from ledger.domain.errors import LedgerError
from ledger.domain.order.events import OrderSubmitted
from projections.base import Projection, topic_of
from projections.batch import Batch
from projections.check import check
from projections.db import META_TABLE
from projections.engine import Runtime, open_runtime
from projections.events import Event
from projections.parallel import ProjectionBuildFailed
from projections.rebuild import rebuild
from projections.registry import PROJECTIONS, select
from tests.workload import run_traffic, traffic

ORDERS = 40


class Refused(LedgerError):
    code = "TEST_REFUSED"


@contextmanager
def written_ledger(url: str, clock: ManualClock) -> Iterator[Ledger]:
    opened = open_ledger(url, clock=clock)
    try:
        run_traffic(opened, traffic(ORDERS, seed=17))
        yield opened
    finally:
        opened.close()


@contextmanager
def runtime(url: str) -> Iterator[Runtime]:
    opened = open_runtime(url)
    try:
        yield opened
    finally:
        opened.close()


def generation(rt: Runtime, projection: str) -> str:
    with rt.db.snapshot() as cur:
        cur.execute(
            rt.db.sql(f"SELECT generation FROM {META_TABLE} WHERE projection = %s"), (projection,)
        )
        return str(cur.fetchone()[0])


def assert_same_as_a_fresh_build(
    rt: Runtime, position: int, projections: Sequence[Projection] = PROJECTIONS
) -> None:
    for result in check(rt, projections):
        assert result.position == position, result.name
        assert result.differences == 0, (result.name, [t.shown for t in result.tables])


def test_rebuild_in_two_processes_equals_a_build_in_one(backend: str, clock: ManualClock) -> None:
    with written_ledger(backend, clock) as ledger, runtime(backend) as rt:
        head = ledger.head_position()
        report = rebuild(rt, PROJECTIONS, batch=97, jobs=2, show_progress=False)
        # PostgreSQL forks; SQLite has one writer, so one process builds everything.
        forked = backend.startswith("postgresql")
        assert report.jobs == (2 if forked else 1)
        assert len(report.worker_peak_rss_mb) == (2 if forked else 0)
        assert report.position == head and report.events >= head
        assert_same_as_a_fresh_build(rt, head)
        one = rebuild(rt, PROJECTIONS, batch=97, jobs=1, show_progress=False)
        assert one.jobs == 1 and one.position == head
        assert_same_as_a_fresh_build(rt, head)


def failing(handler_name: str, handler: object) -> Projection:
    """A projection with no tables whose handler for order submissions does ``handler``."""
    return Projection(
        name=handler_name,
        version=1,
        description="fails on purpose",
        tables=(),
        handlers={topic_of(OrderSubmitted): handler},  # type: ignore[dict-item]
    )


def refuse(event: Event, batch: Batch) -> None:
    raise Refused(f"refused at position {event.position}")


def die(event: Event, batch: Batch) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def first_position(rt: Runtime, topic: str) -> int:
    with rt.db.snapshot() as cur:
        cur.execute(
            rt.db.sql(f"SELECT min({rt.db.id_column}) FROM {rt.db.events_table} WHERE topic = %s"),
            (topic,),
        )
        return int(cur.fetchone()[0])


def test_a_projection_whose_handler_raises_stops_alone_and_the_others_are_swapped_in(
    pg_url: str, clock: ManualClock
) -> None:
    with written_ledger(pg_url, clock) as ledger, runtime(pg_url) as rt:
        rebuild(rt, select(["orders"]), jobs=1, show_progress=False)
        swapped = generation(rt, "orders")
        report = rebuild(
            rt, [*select(["orders"]), failing("boom", refuse)], jobs=2, show_progress=False
        )
        (halt,) = report.stopped.values()
        assert list(report.stopped) == ["boom"]
        assert halt.position == first_position(rt, topic_of(OrderSubmitted))
        assert halt.reason == f"{Refused.__module__}.Refused" and halt.attempts == 1
        assert report.position == ledger.head_position()
        assert generation(rt, "orders") != swapped  # orders was rebuilt and swapped in
        assert_same_as_a_fresh_build(rt, ledger.head_position(), select(["orders"]))


def test_a_build_process_that_dies_leaves_the_live_projections_alone(
    pg_url: str, clock: ManualClock
) -> None:
    with written_ledger(pg_url, clock) as ledger, runtime(pg_url) as rt:
        rebuild(rt, select(["orders"]), jobs=1, show_progress=False)
        swapped = generation(rt, "orders")
        with pytest.raises(ProjectionBuildFailed, match="the process building boom") as caught:
            rebuild(rt, [*select(["orders"]), failing("boom", die)], jobs=2)
        assert "died (exit code -9)" in caught.value.message
        assert caught.value.code == "PROJECTION_BUILD_FAILED"
        # The other process built its orders copy, but nothing was swapped in.
        assert generation(rt, "orders") == swapped
        assert_same_as_a_fresh_build(rt, ledger.head_position(), select(["orders"]))
        # The failed rebuild dropped its copies; the next one succeeds.
        with rt.db.snapshot() as cur:
            assert not rt.db.table_exists(cur, "pj_orders__b")
        assert rebuild(rt, select(["orders"]), jobs=2, show_progress=False).jobs == 1
