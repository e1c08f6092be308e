"""Poison events (issue 8, case 3(b)): an event one projection cannot apply stops that
projection alone, at that position, recorded with a reason that quotes no value; the others
reach the head and keep up; it resumes by a retry after a fix, or by an operator's skip.

The poison events are written straight through the eventsourcing library (the aggregate's
``trigger_event`` and the application's ``save``, or the recorder), bypassing command
validation, as an older release, an import or a bug could have written them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.persistence import StoredEvent

from ledger.application import Ledger
from ledger.domain.entitlement import EntitlementRestored
from ledger.domain.order import events as ev
from ledger.domain.order.events import OrderSubmitted
from projections.base import Projection, topic_of
from projections.batch import Batch
from projections.check import check
from projections.engine import Runtime
from projections.events import Event
from projections.freshness import ProjectionStopped
from projections.poison import read_halts
from projections.queries import ReadModels
from projections.rebuild import rebuild
from projections.registry import BY_NAME, PROJECTIONS, select
from projections.skip import skip
from projections.status import status
from projections.worker import Worker
from tests import builders as b
from tests.workload import run_traffic, traffic

OTHERS = [p.name for p in PROJECTIONS if p.name != "flags"]


def refusal_written_directly(ledger: Ledger, reason: Any) -> int:
    """A DeliveryRefused with ``reason`` on a fresh order, saved through the library; its
    position."""
    order_no = f"P-{uuid4().hex[:8]}"
    ledger.execute(b.submit(order_no))
    order = ledger.order(order_no)
    order.trigger_event(
        ev.DeliveryRefused,
        timestamp=ledger.clock.now(),
        command_id=f"poison-{order_no}",
        quality_reason=False,
        reason=reason,
    )
    (recording,) = ledger.app.save(order)
    return int(recording.notification.id)


def undecodable_written_directly(ledger: Ledger, topic: str) -> int:
    """An event of ``topic`` whose stored state is not JSON, inserted by the recorder."""
    event = StoredEvent(originator_id=uuid4(), originator_version=1, topic=topic, state=b"\xff{")
    ledger.app.recorder.insert_events([event])
    return ledger.head_position()


def run_worker(rt: Runtime, projections: Sequence[Projection] = PROJECTIONS) -> None:
    """A worker's start and run until caught up (each start retries stopped projections)."""
    Worker(rt, projections, batch=1000).run(threading.Event(), until_caught_up=True)


def positions(rt: Runtime) -> dict[str, int]:
    return {row["name"]: row["position"] for row in status(rt)["projections"]}


def assert_same_as_rebuild(rt: Runtime) -> None:
    at = positions(rt)
    for result in check(rt, PROJECTIONS):
        assert result.stopped is None, result.name
        assert result.position == at[result.name]
        assert result.differences == 0, (result.name, [t.shown for t in result.tables])


def assert_readers_are_told(url: str, head: int, poison: int) -> None:
    """A reader of flags who asks to see the head hears at once that flags is stopped; a
    reader of orders is served."""
    read = ReadModels.open(url)
    try:
        started = time.monotonic()
        with pytest.raises(ProjectionStopped) as caught:
            read.flags("any", after=head, timeout_s=30)
        assert time.monotonic() - started < 5
        assert caught.value.code == "PROJECTION_STOPPED" and caught.value.stopped == {
            "flags": poison
        }
        assert read.order("none", after=head) is None
    finally:
        read.close()


def test_a_poison_event_stops_only_its_projection_and_the_others_keep_up(
    ledger: Ledger, rt: Runtime, backend: str
) -> None:
    run_traffic(ledger, traffic(15, seed=3))
    # A reason that is not text: pj_refusals.reason cannot hold it (flags alone stores it).
    poison = refusal_written_directly(ledger, {"not": "text"})
    run_traffic(ledger, traffic(15, seed=4))
    head = ledger.head_position()
    assert head > poison + 10  # one batch holds events before and after the poison

    run_worker(rt)
    report = status(rt)
    assert report["stopped"] == ["flags"]
    rows = {row["name"]: row for row in report["projections"]}
    assert all(rows[name]["position"] == head for name in OTHERS)
    flags = rows["flags"]
    assert flags["position"] == poison - 1  # everything before the poison applied
    halt = flags["stopped"]
    assert halt["position"] == poison and halt["topic"] == topic_of(ev.DeliveryRefused)
    assert halt["attempts"] == 1 and "not" not in halt["reason"] and "text" not in halt["reason"]
    assert all(rows[name]["stopped"] is None for name in OTHERS)
    assert_readers_are_told(backend, head, poison)

    # More arrives: the others stay current; a new start retries flags once, in vain.
    run_traffic(ledger, traffic(10, seed=5))
    run_worker(rt)
    report = status(rt)
    rows = {row["name"]: row for row in report["projections"]}
    assert all(rows[name]["position"] == ledger.head_position() for name in OTHERS)
    assert rows["flags"]["position"] == poison - 1
    assert rows["flags"]["stopped"]["attempts"] == 2

    # The check compares flags where it stopped and the others at the head.
    assert_same_as_rebuild(rt)

    # A rebuild stops its flags copy at the same event, and swaps in the others.
    rebuilt = rebuild(rt, PROJECTIONS, batch=50, show_progress=False)
    assert list(rebuilt.stopped) == ["flags"] and rebuilt.stopped["flags"].position == poison
    assert status(rt)["stopped"] == ["flags"] and positions(rt)["flags"] == poison - 1

    # The operator leaves the event out of flags: it carries on, and so do check and rebuild.
    skip(rt, BY_NAME["flags"], poison)
    run_worker(rt)
    report = status(rt)
    assert report["stopped"] == []
    assert set(positions(rt).values()) == {ledger.head_position()}
    assert {row["name"]: row["skipped"] for row in report["projections"]}["flags"] == [poison]
    assert_same_as_rebuild(rt)
    assert not rebuild(rt, select(["flags"]), show_progress=False).stopped


def test_an_event_that_does_not_decode_stops_only_the_projections_of_its_topic(
    ledger: Ledger, rt: Runtime
) -> None:
    run_traffic(ledger, traffic(10, seed=6))
    poison = undecodable_written_directly(ledger, topic_of(EntitlementRestored))
    run_traffic(ledger, traffic(10, seed=7))
    run_worker(rt)
    report = status(rt)
    assert report["stopped"] == ["entitlements"]  # the only projection of that topic
    (row,) = [r for r in report["projections"] if r["name"] == "entitlements"]
    assert row["position"] == poison - 1
    assert row["stopped"]["reason"].startswith("undecodable: ")
    others = [r for r in report["projections"] if r["name"] != "entitlements"]
    assert all(r["position"] == ledger.head_position() for r in others)


class Switch:
    """A handler that fails while ``broken`` (a bug that a later release fixes)."""

    def __init__(self) -> None:
        self.broken = True

    def __call__(self, event: Event, batch: Batch) -> None:
        if self.broken:
            raise KeyError("a field this release does not know")


def fragile_projection(handler: Switch) -> Projection:
    return Projection(
        name="fragile",
        version=1,
        description="fails on submissions until fixed",
        tables=(),
        handlers={topic_of(OrderSubmitted): handler},
    )


def fragile_halt(rt: Runtime) -> Any:
    with rt.db.snapshot() as cur:
        return read_halts(rt.db, cur).get("ledger:fragile")


def fragile_position(rt: Runtime) -> int:
    with rt.db.snapshot() as cur:
        return rt.tracking.read(cur, ["ledger:fragile"])["ledger:fragile"]


def test_a_stopped_projection_resumes_when_a_worker_starts_after_the_fix(
    ledger: Ledger, rt: Runtime
) -> None:
    handler = Switch()
    fragile = fragile_projection(handler)
    run_traffic(ledger, traffic(8, seed=9))
    run_worker(rt, [fragile, *select(["orders"])])
    halt = fragile_halt(rt)
    assert halt.reason == "KeyError" and halt.attempts == 1
    assert positions(rt)["orders"] == ledger.head_position()

    handler.broken = False  # the fix
    run_worker(rt, [fragile])
    assert fragile_halt(rt) is None
    assert fragile_position(rt) == ledger.head_position()

    # A check whose copy stops on the event names it, and compares the others.
    handler.broken = True
    results = {r.name: r for r in check(rt, [fragile, *select(["orders"])])}
    stopped = results["fragile"].stopped
    assert stopped is not None and stopped.position == halt.position
    assert results["orders"].stopped is None and results["orders"].differences == 0
    assert results["orders"].position == ledger.head_position()


def test_a_rebuild_by_fixed_code_clears_the_stop(ledger: Ledger, rt: Runtime) -> None:
    handler = Switch()
    fragile = fragile_projection(handler)
    run_traffic(ledger, traffic(8, seed=10))
    run_worker(rt, [fragile])
    assert fragile_halt(rt) is not None

    handler.broken = False  # the fix, with a rebuild
    report = rebuild(rt, [fragile], show_progress=False)
    assert not report.stopped and report.position == ledger.head_position()
    assert fragile_halt(rt) is None and fragile_position(rt) == ledger.head_position()
