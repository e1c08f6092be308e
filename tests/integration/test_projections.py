"""Projections on both backends: equal to a rebuild, read-your-writes, the queries, rebuild.

Each test writes a small stretch of mall traffic (the demo's ``generate_traffic`` when present)
and runs the worker in-process; ``check`` (a rebuild from zero in scratch tables, compared row
by row) is the oracle for "equal to a fold of the log".
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ledger.application import Ledger
from projections.check import check
from projections.engine import Runtime, Target, ensure_live, open_runtime
from projections.freshness import ProjectionBehind
from projections.queries import ReadModels
from projections.rebuild import rebuild
from projections.registry import PROJECTIONS, select
from projections.schema import CHECK
from projections.worker import Worker
from tests import builders as b
from tests.fix_app import opened_ledger, opened_runtime
from tests.workload import run_traffic, traffic

ORDERS = 60


@pytest.fixture
def written(ledger: Ledger) -> Ledger:
    """The ledger after a stretch of traffic (every projection gets rows)."""
    counts = run_traffic(ledger, traffic(ORDERS, seed=11))
    assert counts["accepted"] > ORDERS
    return ledger


def catch_up(rt: Runtime, batch: int = 1000) -> int:
    stats = Worker(rt, PROJECTIONS, batch=batch).run(threading.Event(), until_caught_up=True)
    return stats.position


def assert_same_as_rebuild(rt: Runtime, position: int) -> None:
    results = check(rt, PROJECTIONS)
    assert [r.name for r in results] == [p.name for p in PROJECTIONS]
    for result in results:
        assert result.position == position, result.name
        assert result.differences == 0, (result.name, [t.shown for t in result.tables])


@pytest.fixture
def worker_thread(rt: Runtime) -> Iterator[Callable[[], None]]:
    """A live worker in a thread until the test ends (idle re-check long: it must be woken).
    Yields what stops it and waits for it to end: a test that goes on using ``rt`` must call
    it first, as a runtime (one SQLite connection) is one thread's alone."""
    stop = threading.Event()
    worker = Worker(rt, PROJECTIONS, batch=200, idle_s=30.0)
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()

    def stopped() -> None:
        stop.set()
        thread.join(timeout=10)
        assert not thread.is_alive()

    yield stopped
    stopped()


def test_live_projections_in_small_batches_equal_a_rebuild(written: Ledger, rt: Runtime) -> None:
    position = catch_up(rt, batch=37)  # batch edges fall everywhere
    assert position == written.head_position()
    assert_same_as_rebuild(rt, position)


def test_check_of_projections_never_run_compares_them_empty_at_position_zero(
    written: Ledger, rt: Runtime
) -> None:
    results = check(rt, PROJECTIONS)

    assert [(r.name, r.position, r.differences) for r in results] == [
        (p.name, 0, 0) for p in PROJECTIONS
    ]


def test_check_finds_a_tampered_row(written: Ledger, rt: Runtime) -> None:
    catch_up(rt)
    with rt.db.write() as cur:
        cur.execute(
            rt.db.sql("UPDATE pj_payments SET paid_fen = paid_fen + 1 WHERE method = %s"),
            ("alipay",),
        )
        cur.execute("DELETE FROM pj_refusals")
    results = {r.name: r for r in check(rt, select(["payments", "flags", "orders"]))}
    assert results["payments"].differences > 0
    shown = results["payments"].tables[1].shown[0]
    assert shown["problem"] == "differs" and set(shown["columns"]) == {"paid_fen"}
    refusals = next(t for t in results["flags"].tables if t.table == "refusals")
    assert refusals.differences == refusals.rows_rebuilt > 0 and refusals.rows_live == 0
    assert results["orders"].differences == 0


def test_interleaved_writes_and_batches_equal_a_rebuild(ledger: Ledger, rt: Runtime) -> None:
    items = list(traffic(ORDERS, seed=5))
    for start in range(0, len(items), len(items) // 4 + 1):
        run_traffic(ledger, items[start : start + len(items) // 4 + 1], chunk=50)
        catch_up(rt, batch=64)
    assert_same_as_rebuild(rt, ledger.head_position())


def test_rebuild_swaps_in_tables_equal_to_the_live_ones(written: Ledger, rt: Runtime) -> None:
    catch_up(rt)
    before = {r.name: r for r in check(rt, PROJECTIONS)}
    report = rebuild(rt, PROJECTIONS, batch=100, show_progress=False)
    assert report.position == written.head_position()
    assert report.events >= written.head_position()
    assert all(r.differences == 0 for r in before.values())
    assert_same_as_rebuild(rt, written.head_position())
    # The worker goes on from the swapped-in position.
    written.execute(b.submit("AFTER-REBUILD", account_no="acct-after"))
    assert catch_up(rt) == written.head_position()
    assert_same_as_rebuild(rt, written.head_position())


def test_copies_whose_caches_overflow_equal_the_live_projections(
    written: Ledger, rt: Runtime
) -> None:
    head = catch_up(rt)  # live tables built by the worker, without any cache
    rt.engine.cache_ceiling = 3  # rows leave the caches every batch and are read back
    assert_same_as_rebuild(rt, head)  # check's copies, built with the tiny caches
    report = rebuild(rt, PROJECTIONS, batch=40, show_progress=False)
    assert report.position == head
    rt.engine.cache_ceiling = None
    assert_same_as_rebuild(rt, head)  # the rebuilt live tables against roomy caches


def test_rebuild_while_the_worker_and_writers_run(
    ledger: Ledger, rt: Runtime, backend: str, worker_thread: Callable[[], None]
) -> None:
    items = list(traffic(ORDERS, seed=3))
    half = len(items) // 2
    run_traffic(ledger, items[:half])
    writer = threading.Thread(target=run_traffic, args=(ledger, items[half:], 20))
    other = open_runtime(backend)
    try:
        writer.start()
        rebuild(other, select(["orders", "limits"]), batch=50, show_progress=False)
        writer.join()
    finally:
        other.close()
    rm = ReadModels.open(backend)
    try:
        rm.wait_for(ledger.head_position(), timeout_s=20)
    finally:
        rm.close()
    worker_thread()  # stopped and joined: the check below uses rt
    assert_same_as_rebuild(rt, ledger.head_position())


def test_read_your_writes(
    ledger: Ledger, read_models: ReadModels, worker_thread: Callable[[], None]
) -> None:
    submitted = ledger.execute(b.submit("RYW-1", account_no="acct-ryw"))
    assert submitted.position is not None
    started = time.monotonic()
    row = read_models.order("RYW-1", after=submitted.position)
    assert row is not None and row["status"] == "awaiting_payment"
    paid = ledger.execute(b.pay("RYW-1"))
    row = read_models.order("RYW-1", after=paid.position)
    assert row is not None and row["status"] == "paid" and row["contract_formed"] is True
    assert row["paid_by_method"] == {"alipay": 399900}
    # Woken by the worker's commit, not its 30-second idle re-check.
    assert time.monotonic() - started < 5


def test_a_projection_behind_is_a_typed_error(ledger: Ledger, read_models: ReadModels) -> None:
    result = ledger.execute(b.submit("BEHIND-1", account_no="acct-behind"))
    assert result.position is not None
    with pytest.raises(ProjectionBehind) as caught:
        read_models.order("BEHIND-1", after=result.position, timeout_s=0.3)
    error = caught.value
    assert error.code == "PROJECTION_BEHIND"
    assert error.asked == result.position and error.behind == {"orders": 0}
    assert error.position == 0  # where the projection is
    assert "did not reach position" in error.message


def test_order_and_payment_queries(
    ledger: Ledger, read_models: ReadModels, worker_thread: Callable[[], None]
) -> None:
    ledger.execute(b.submit("Q-1", account_no="acct-q", seller_id="seller-q"))
    ledger.execute(b.pay("Q-1", amount_fen=100000, method="alipay"))
    last = ledger.execute(b.pay("Q-1", amount_fen=299900, method="card"))
    read_models.wait_for(last.position)
    assert [r["order_no"] for r in read_models.orders_by_account("acct-q")] == ["Q-1"]
    assert [r["order_no"] for r in read_models.orders_by_seller("seller-q")] == ["Q-1"]
    now = ledger.clock.now()
    paid = read_models.orders_by_status("paid", now - timedelta(hours=1), now + timedelta(hours=1))
    assert [r["order_no"] for r in paid] == ["Q-1"]
    by_method = {r["method"]: r for r in read_models.payments("Q-1")}
    assert (
        by_method["card"]["paid_fen"] == 299900 and by_method["alipay"]["outstanding_fen"] == 100000
    )
    row = read_models.order("Q-1")
    assert row is not None and row["contact"]["phone"].startswith("s2:d:acct-q:")  # sealed
    assert ledger.reveal(row["contact"]["phone"], "phone", "Q-1") == b.CONTACT["phone"]
    assert read_models.reconciliation() == []


def test_linked_accounts_are_transitive_and_limits_count_the_group(
    ledger: Ledger, read_models: ReadModels, worker_thread: Callable[[], None]
) -> None:
    at = ledger.clock.now()
    ledger.execute(
        b.other(
            "define_purchase_limit",
            sku="PHONE-14",
            limit_qty=5,
            period_days=30,
            valid_from=(at - timedelta(days=1)).isoformat(),
        )
    )

    contact = b.own_contact
    ledger.execute(b.submit("L-A", account_no="acct-a", contact=contact(1)))
    ledger.execute(
        b.submit(
            "L-B", account_no="acct-b", contact=contact(2, address="北京市海淀区中关村大街1号")
        )
    )
    ledger.execute(b.submit("L-C", account_no="acct-c", contact=contact(3, phone="13800000002")))
    last = ledger.execute(b.submit("L-D", account_no="acct-d", contact=contact(4)))
    read_models.wait_for(last.position)
    assert read_models.linked_accounts("acct-a") == ["acct-a", "acct-b", "acct-c"]
    assert read_models.linked_accounts("acct-d") == ["acct-d"]
    group = read_models.group_quantity("PHONE-14", "acct-c", at)
    assert group is not None
    assert (group["quantity"], group["remaining"], group["limit_qty"]) == (3, 2, 5)
    assert read_models.group_quantity("PHONE-14", "acct-d", at)["quantity"] == 1  # type: ignore[index]
    assert read_models.group_quantity("NO-RULE", "acct-a", at) is None

    # An order cancelled before payment bought nothing: it leaves the group's count, as the
    # core's own limit counters release it. One closed after payment still counts.
    released = ledger.execute(b.order_cmd("cancel_order", "L-B"))
    read_models.wait_for(released.position)
    group = read_models.group_quantity("PHONE-14", "acct-c", at)
    assert group is not None and (group["quantity"], group["remaining"]) == (2, 3)
    ledger.execute(b.pay("L-D"))
    ledger.execute(b.order_cmd("request_mutual_termination", "L-D", requested_by="user"))
    terminated = ledger.execute(b.order_cmd("accept_mutual_termination", "L-D"))
    read_models.wait_for(terminated.position)
    assert read_models.group_quantity("PHONE-14", "acct-d", at)["quantity"] == 1  # type: ignore[index]


def test_entitlements_flags_refusals_and_retention(
    ledger: Ledger, read_models: ReadModels, worker_thread: Callable[[], None]
) -> None:
    ledger.execute(b.issue("CPN-X", campaign="spring"))
    ledger.execute(b.submit("E-1", account_no="acct-e", coupons=["CPN-X"]))
    ledger.execute(b.order_cmd("cancel_order", "E-1", reason="changed mind"))
    ledger.execute(b.submit("E-2", account_no="acct-e"))
    ledger.execute(b.pay("E-2"))
    ledger.execute(b.ship("E-2"))
    ledger.execute(b.order_cmd("refuse_delivery", "E-2", quality_reason=False, reason="no"))
    last = ledger.execute(
        b.order_cmd(
            "raise_flag",
            "E-2",
            flag_id="F-1",
            criterion=4,
            automated=True,
            evidence={"orders": ["E-2"], "signals": ["refusals"]},
        )
    )
    read_models.wait_for(last.position)
    code = read_models.entitlement("CPN-X")
    assert code is not None and code["status"] == "forfeited"
    assert (code["forfeited_order"], code["forfeited_ground"]) == ("E-1", "user_cancel")
    assert read_models.campaign_counts("spring") == {"coupon/forfeited": 1}
    steps = [h["step"] for h in read_models.entitlement_history("CPN-X")]
    assert steps == ["issued", "consumed", "forfeited"]
    assert [e["code"] for e in read_models.entitlements_by_account("acct-e")] == ["CPN-X"]
    (flag,) = read_models.flags("E-2")
    assert (flag["criterion"], flag["automated"], flag["outcome"]) == (4, True, None)
    assert flag["evidence_orders"] == ["E-2"]
    assert read_models.refusals_in_window("acct-e", ledger.clock.now(), 90) == 1
    assert [f["flag_id"] for f in read_models.unreviewed_flags()] == ["F-1"]
    reviewed = ledger.execute(
        b.order_cmd("review_flag", "E-2", flag_id="F-1", reviewer_id="rev-1", outcome="dismissed")
    )
    assert read_models.unreviewed_flags(after=reviewed.position) == []
    assert (
        read_models.refusals_in_window("acct-e", ledger.clock.now() + timedelta(days=91), 90) == 0
    )
    retention = read_models.retention("E-1")
    assert retention is not None and retention["closed_at"] is not None
    assert retention["retain_until"] is None  # completion is its own command


def test_retention_schedule_is_an_audit_step(
    written: Ledger, read_models: ReadModels, rt: Runtime
) -> None:
    catch_up(rt)
    due = read_models.retention_due(datetime(2100, 1, 1, tzinfo=UTC), limit=1000)
    assert due, "the traffic completes some transactions"
    first = due[0]
    assert first["retain_until"].year == first["completed_at"].year + 3
    steps = read_models.retention_steps(first["subject_id"])
    scheduled = [s for s in steps if s["order_no"] == first["order_no"]]
    assert [s["step"] for s in scheduled] == ["scheduled"]
    assert scheduled[0]["detail"]["retain_until"] == first["retain_until"].isoformat()


def test_a_new_code_version_marks_the_projection_for_rebuild(written: Ledger, rt: Runtime) -> None:
    catch_up(rt)
    with rt.db.write() as cur:
        cur.execute(rt.db.sql("UPDATE pj_meta SET version = 0 WHERE projection = %s"), ("flags",))
    assert ensure_live(rt.db, rt.tracking, PROJECTIONS) == ["flags"]
    worker = Worker(rt, PROJECTIONS)
    assert [t.projection.name for t in worker.targets()] == [
        p.name for p in PROJECTIONS if p.name != "flags"
    ]
    rebuild(rt, select(["flags"]), show_progress=False)
    assert ensure_live(rt.db, rt.tracking, PROJECTIONS) == []


def test_two_targets_at_different_positions_share_one_read(written: Ledger, rt: Runtime) -> None:
    ensure_live(rt.db, rt.tracking, PROJECTIONS)
    orders, payments = select(["orders"])[0], select(["payments"])[0]
    rt.engine.step([Target(orders)], 100)  # orders ahead of payments
    result = rt.engine.step([Target(orders), Target(payments)], 10_000)
    assert result.position == written.head_position() and not result.more
    results = check(rt, [orders, payments])
    assert all(r.differences == 0 for r in results)


def test_a_check_interrupted_while_comparing_closes_its_streams_before_the_connection(
    written: Ledger, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C in the row-by-row comparison, the runtime closed as the interrupt unwinds (as
    ``ledger projections check`` does): the row streams (each a cursor of the runtime's
    connection) are closed before it, not left to the garbage collector to close after it
    ("Exception ignored in: <generator …>: Cannot operate on a closed database"), and the
    check's copies are dropped."""
    import gc
    import sys

    from projections import check as check_module

    def interrupted(table: Any, live: Iterator[Any], rebuilt: Iterator[Any], shown: int) -> Any:
        next(live, None), next(rebuilt, None)  # both streams open, a row read from each
        raise KeyboardInterrupt

    unraisable: list[str] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: unraisable.append(repr(u.exc_value)))
    with opened_runtime(backend) as rt:
        catch_up(rt)
    monkeypatch.setattr(check_module, "compare_rows", interrupted)
    with pytest.raises(KeyboardInterrupt), opened_runtime(backend) as rt:
        check(rt, PROJECTIONS)
    gc.collect()
    assert unraisable == []
    with opened_runtime(backend) as rt, rt.db.snapshot() as cur:
        tables = [t.physical(CHECK) for p in PROJECTIONS for t in p.tables]
        assert [name for name in tables if rt.db.table_exists(cur, name)] == []


@pytest.mark.postgres
def test_a_check_interrupted_between_a_query_and_its_result_still_drops_its_copies(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """psycopg leaves the connection mid-statement, in its transaction and holding its locks,
    when Ctrl-C lands between sending a query and reading the result; the copies are then
    dropped on another connection, which must not wait on those locks for ever."""
    from projections import check as check_module

    with opened_ledger(pg_url) as ledger:
        run_traffic(ledger, traffic(ORDERS, seed=11))
    with opened_runtime(pg_url) as rt:
        catch_up(rt)

        def interrupted(table: Any, live: Iterator[Any], rebuilt: Any, shown: int) -> Any:
            next(live, None), next(rebuilt, None)
            rt.db.conn.pgconn.send_query(b"SELECT 1")  # sent, its result never read
            raise KeyboardInterrupt

        monkeypatch.setattr(check_module, "compare_rows", interrupted)
        outcome: list[BaseException] = []

        def checking() -> None:
            try:
                check(rt, PROJECTIONS)
            except BaseException as exc:  # noqa: BLE001 - handed to the test
                outcome.append(exc)

        thread = threading.Thread(target=checking, daemon=True)
        thread.start()
        thread.join(timeout=60)
        assert not thread.is_alive(), "the check hung dropping its copies"
        assert [type(e) for e in outcome] == [KeyboardInterrupt]
    with opened_runtime(pg_url) as rt, rt.db.snapshot() as cur:
        tables = [t.physical(CHECK) for p in PROJECTIONS for t in p.tables]
        assert [name for name in tables if rt.db.table_exists(cur, name)] == []


def test_each_checks_result_is_recorded_and_status_shows_the_last(
    written: Ledger, rt: Runtime
) -> None:
    from ledger.clock import ManualClock
    from projections.status import status

    position = catch_up(rt)
    assert all(row["last_check"] is None for row in status(rt)["projections"])
    clock = ManualClock(datetime(2026, 3, 4, 5, 6, tzinfo=UTC))
    check(rt, PROJECTIONS, clock=clock)
    with rt.db.write() as cur:
        cur.execute(rt.db.sql("UPDATE pj_payments SET paid_fen = paid_fen + 1"))
    clock.advance(timedelta(hours=1))
    check(rt, select(["payments"]), clock=clock)

    last = {row["name"]: row["last_check"] for row in status(rt)["projections"]}
    assert last["payments"]["outcome"] == "differs" and last["payments"]["differences"] > 0
    assert last["payments"]["tables"] == ["payments"]
    assert last["payments"]["at"] == clock.now().isoformat()
    earlier = (clock.now() - timedelta(hours=1)).isoformat()
    for name in {p.name for p in PROJECTIONS} - {"payments"}:  # their last check is the first
        assert last[name]["outcome"] == "same" and last[name]["differences"] == 0, name
        assert (last[name]["at"], last[name]["position"]) == (earlier, position)
        assert last[name]["tables"] == [] and last[name]["stopped"] is None
    assert last["orders"]["check_id"] != last["payments"]["check_id"]
