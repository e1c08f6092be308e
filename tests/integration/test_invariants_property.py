"""Invariants under random command sequences (hypothesis), on both backends.

A few orders share two coupons and an F-code; random commands (payments with provider ids,
repeats of them with the same and with other facts and on other orders, re-payments,
cancels, lapses, shortages, terminations, flags, price errors, refunds with each purpose,
shipping, delivery, restores) run with clock advances in between. After every command,
accepted or refused:

- refused commands wrote nothing (head position unchanged); accepted ones report the head;
  a repeated fact (same provider id, same facts) returns the first outcome and writes nothing;
- per method, refunded + pending <= paid; a closed order owes nothing more (all queued);
- nothing kept ever exceeds what is due;
- nothing ships or is delivered unless the contract formed and what is kept covers what
  is due at that moment;
- one provider payment id is counted once in the whole ledger;
- a closure after payment in full says ``contract_formed=True`` and notifies (ECL 49);
- each code is held by at most one live order, which is its consumer; a code consumed by a
  closed order is forfeited (3.1.11);
- a closed order accepts only settlement: complete_refund, notify_user, complete_transaction.

SQLite: a fresh database file per example. PostgreSQL: one database per test, each example
using its own order numbers, codes and command ids.
"""

from __future__ import annotations

import itertools
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.application import CommandResult, Ledger, open_ledger
from ledger.clock import ManualClock
from ledger.domain.entitlement import Entitlement
from ledger.domain.errors import NotFound, RuleViolation
from ledger.domain.ids import entitlement_id, order_id
from ledger.domain.order import events as ev
from ledger.domain.order.aggregate import Order
from tests import builders as b
from tests.fix_app import CLOCK_START

ORDERS = 3
METHODS = ("alipay", "wechat")
SETTLEMENT = frozenset({"complete_refund", "notify_user", "complete_transaction"})
REPEATABLE = frozenset(
    {
        "receive_payment",
        "ship_order",
        "record_refund_consent",
        "raise_flag",
        "review_flag",
        "complete_refund",
    }
)
# Mostly short steps, so orders are often paid in time; some pass the deadline or a week.
ADVANCE_MINUTES = (1, 2, 3, 5, 7, 10, 15, 20, 31, 60 * 24, 60 * 24 * 8, 60 * 24 * 30)

# Weighted by repetition: payments and shipping matter most.
KINDS = (
    "pay",
    "ship",
    "pay",
    "advance",
    "complete_refund",
    "pay",
    "deliver",
    "refund",
    "advance",
    "pay",
    "cancel",
    "lapse",
    "declare_shortage",
    "resolve_shortage",
    "request_term",
    "accept_term",
    "decline_term",
    "ship",
    "notify",
    "complete_tx",
    "raise_flag",
    "review_flag",
    "close_abnormal",
    "close_limit",
    "detect_price",
    "resolve_price",
    "refund",
    "consent",
    "complete_refund",
    "restore",
    "submit",
    "pay_again",
    "refund",
    "pay",
    "deliver",
    "pay_again",
)
REFUND_PURPOSES = ("price_adjustment", "shortage", "termination", "payment_returned")
AIMED: dict[str, Callable[[Any], bool]] = {
    "refund": lambda o: o.kept_fen > 0 and not o.is_closed,
    "deliver": lambda o: o.shipped and not o.is_closed and not o.is_delivered,
    "request_term": lambda o: o.contract_formed and not o.is_closed,
}

Step = tuple[str, int, int]
step_of = st.tuples(st.sampled_from(KINDS), st.integers(0, ORDERS - 1), st.integers(0, 11))
# Every order is submitted first (its variant drawn), then random steps follow.
sequences = st.tuples(
    st.lists(st.integers(0, 11), min_size=ORDERS, max_size=ORDERS),
    st.lists(step_of, min_size=10, max_size=40),
).map(lambda parts: [*(("submit", i, v) for i, v in enumerate(parts[0])), *parts[1]])


@dataclass
class Run:
    """One example: its ledger, clock and the unique names it uses."""

    ledger: Ledger
    clock: ManualClock
    prefix: str

    def __post_init__(self) -> None:
        self._ids = itertools.count(1)
        self.order_nos = [f"{self.prefix}-O{i}" for i in range(ORDERS)]
        self.coupons = [f"{self.prefix}-C0", f"{self.prefix}-C1"]
        self.f_code = f"{self.prefix}-F0"
        # Accepted payment commands, to send their provider ids again.
        self.payments: list[dict[str, Any]] = []

    @property
    def codes(self) -> list[str]:
        return [*self.coupons, self.f_code]

    def cid(self, kind: str) -> str:
        return f"{self.prefix}-{kind}-{next(self._ids)}"

    def order(self, order_no: str) -> Order | None:
        try:
            return self.ledger.order(order_no)
        except NotFound:
            return None

    def entitlement(self, code: str) -> Entitlement:
        found: Any = self.ledger.app.repository.get(entitlement_id(code))
        assert isinstance(found, Entitlement)
        return found


# -- building a command from a step -------------------------------------------------------------
def command_for(run: Run, step: Step) -> dict[str, Any] | None:
    """The command a step sends, or None for a step that sends nothing (clock, known bugs)."""
    kind, index, choice = step
    no = run.order_nos[index]
    if kind != "submit":
        # Aim at an order that exists (a refused submission leaves a gap) when there is one.
        existing = [n for n in run.order_nos if run.order(n) is not None]
        no = existing[index % len(existing)] if existing else no
        # Refunds and deliveries mostly aim where they can apply, so they are often accepted.
        ready = [n for n in existing if AIMED.get(kind, lambda o: False)(run.order(n))]
        no = ready[index % len(ready)] if ready and choice else no
    order = run.order(no)

    def cmd(kind_: str, **fields: Any) -> dict[str, Any]:
        return b.order_cmd(kind_, no, command_id=run.cid(kind_), **fields)

    if kind == "advance":
        run.clock.advance(timedelta(minutes=ADVANCE_MINUTES[choice]))
        return None
    if kind == "submit":
        coupons = [[], run.coupons[:1], [], run.coupons[1:], [], run.coupons][choice % 6]
        f_codes = [run.f_code] if choice >= 8 else []
        quantity = 1 + choice % 3
        return b.submit(
            no,
            command_id=run.cid("submit"),
            account_no=f"{run.prefix}-acct-{index % 2}",
            coupons=coupons,
            f_codes=f_codes,
            lines=[{"sku": "PHONE-14", "quantity": quantity, "unit_price_fen": 199900}],
        )
    if kind == "restore":
        code = run.codes[choice % 3]
        return b.other(
            "restore_entitlement", command_id=run.cid("restore"), code=code, rule="goodwill 2026/3"
        )
    outstanding = order.outstanding_fen if order else 1
    paid_total = order.paid_total_fen if order else 0
    if kind == "pay":
        mode = ("rest", "part", "rest", "over", "part", "rest")[choice // 2]
        amount = {
            "rest": max(outstanding, 1),
            "part": max(outstanding // 2, 1),
            "over": max(outstanding, 0) + 1,
        }[mode]
        payment_id = run.cid("provider")
        return b.pay(no, amount, method=METHODS[choice % 2], payment_id=payment_id)
    if kind == "pay_again":
        return payment_again(run, no, choice)
    if kind == "cancel":
        return cmd("cancel_order")
    if kind == "lapse":
        return cmd("lapse_payment_deadline")
    if kind == "declare_shortage":
        return cmd("declare_stock_shortage", skus=["PHONE-14"])
    if kind == "resolve_shortage":
        if choice % 2:
            return cmd("resolve_stock_shortage", resolution="exchange", exchange_sku="PHONE-14-PRO")
        return cmd("resolve_stock_shortage", resolution="refund")
    if kind == "request_term":
        return cmd("request_mutual_termination", requested_by=("user", "seller")[choice % 2])
    if kind == "accept_term":
        return cmd("accept_mutual_termination")
    if kind == "decline_term":
        return cmd("decline_mutual_termination")
    if kind == "ship":
        # Half the time the order's own tracking number: a second send is a repeat.
        tracking_no = f"{no}-SF" if choice % 2 else run.cid("SF")
        return cmd("ship_order", carrier="SF", tracking_no=tracking_no)
    if kind == "deliver":
        return cmd("deliver_order", signer_relation=("self", "family", "neighbour")[choice % 3])
    if kind == "notify":
        return cmd("notify_user", subject="status", clause="3.1.2")
    if kind == "complete_tx":
        return cmd("complete_transaction")
    if kind == "raise_flag":
        return cmd(
            "raise_flag",
            flag_id="f1",
            criterion=1 + choice % 5,
            evidence={"orders": [no], "signals": ["ip"]},
            automated=choice % 2 == 0,
        )
    if kind == "review_flag":
        outcome = ("confirmed", "dismissed")[choice % 2]
        return cmd("review_flag", flag_id="f1", reviewer_id="reviewer-1", outcome=outcome)
    if kind == "close_abnormal":
        return cmd("close_order", ground="abnormal_order", evidence={"flag_id": "f1"})
    if kind == "close_limit":
        if choice < 9:
            return None  # it closes any open order: kept rare so orders live long enough
        other = run.order_nos[(index + 1) % ORDERS]
        return cmd("close_order", ground="purchase_limit", evidence={"orders": [other]})
    if kind == "detect_price":
        return cmd(
            "detect_price_error",
            sku="PHONE-14",
            displayed_price_fen=199900,
            correct_price_fen=249900,
            cause="feed",
        )
    if kind == "resolve_price":
        resolution = ("honoured", "adjusted", "terminated")[choice % 3]
        consented = choice // 3 % 2 == 0
        total = order.total_due_fen if order else 1
        adjusted = (total + 50000, max(paid_total - 1, 1))[choice // 6]
        return cmd(
            "resolve_price_error",
            resolution=resolution,
            user_consented=consented,
            adjusted_total_fen=adjusted,
        )
    if kind == "consent":
        method = METHODS[choice % 2]
        return cmd(
            "record_refund_consent",
            consent_id=f"consent-{method}",
            method=method,
            destination_account=("6222000011112222", "6222000099998888")[choice // 10],
        )
    if kind == "refund":
        # Mostly a method the order was paid with.
        paid_with = [m for m in METHODS if order and order.refundable_fen(m) > 0]
        method = paid_with[choice % len(paid_with)] if paid_with and choice != 1 else METHODS[0]
        refundable = order.refundable_fen(method) if order else 0
        amount = (max(refundable, 1), 1, max(refundable // 4, 1))[choice // 2 % 3]
        consent = {"consent_id": f"consent-{method}"} if choice >= 9 else {}
        purpose = REFUND_PURPOSES[choice // 6 * 2 + choice % 2]
        return cmd("initiate_refund", method=method, amount_fen=amount, purpose=purpose, **consent)
    if kind == "complete_refund":
        # Any order's pending refund (most steps would otherwise hit one with none), or now
        # and then a completed one again (the provider's confirmation repeated).
        pending = [
            (n, refund_id)
            for n in run.order_nos
            if (o := run.order(n)) is not None
            for refund_id in sorted(o.completed_refunds if choice >= 9 else o.pending_refunds)
        ]
        if not pending:
            return cmd("complete_refund", refund_id=f"{no}/R99")
        owner, refund_id = pending[choice % len(pending)]
        return b.order_cmd(
            "complete_refund", owner, command_id=run.cid("complete_refund"), refund_id=refund_id
        )
    raise AssertionError(f"unknown step kind {kind}")


def payment_again(run: Run, no: str, choice: int) -> dict[str, Any] | None:
    """An accepted payment's provider id again: the same facts (a repeat), another amount,
    or on another order (both refused)."""
    if not run.payments:
        return None
    # Mostly one whose order could still take it, so counting it twice would show.
    open_to_it = [
        p
        for p in run.payments
        if (o := run.order(p["order_no"])) is not None and o.outstanding_fen >= p["amount_fen"]
    ]
    candidates = open_to_it if open_to_it and choice else run.payments
    earlier = candidates[choice % len(candidates)]
    again = {**earlier, "command_id": run.cid("pay-again")}
    if choice % 3 == 1:
        again["amount_fen"] = earlier["amount_fen"] + 1
    elif choice % 3 == 2 and no != earlier["order_no"]:
        again["order_no"] = no
    return again


# -- the invariants -----------------------------------------------------------------------------
def check_order(order: Order) -> None:
    methods = set(order.paid_fen) | set(order.refunded_fen)
    methods |= {r["method"] for r in order.pending_refunds.values()}
    for method in methods:
        paid = order.paid_fen.get(method, 0)
        back = order.refunded_fen.get(method, 0) + order.pending_fen(method)
        assert isinstance(paid, int) and isinstance(back, int), "money must be integer fen"
        assert back <= paid, f"{order.order_no}: {back} refunded/pending of {paid} on {method}"
        if order.is_closed:
            assert back == paid, f"{order.order_no}: closed but {paid - back} not refunded"
    assert order.kept_fen <= order.due_fen, f"{order.order_no}: kept more than is due"
    counted = sum(p["facts"][1] for p in order.payments.values())
    assert counted == order.paid_total_fen, f"{order.order_no}: a payment counted twice"
    if order.shipped:
        assert order.contract_formed, f"{order.order_no} shipped without a contract"
    if order.is_closed:
        assert order.status == "closed"


def check_entitlements(run: Run, orders: dict[str, Order]) -> None:
    for code in run.codes:
        entitlement = run.entitlement(code)
        holders = [o for o in orders.values() if code in (*o.coupons, *o.f_codes)]
        live = [o.order_no for o in holders if not o.is_closed]
        assert len(live) <= 1, f"{code} is held by live orders {live}"
        if live:
            assert entitlement.consumed_by == live[0], f"{code}: consumer is not its live holder"
            assert not entitlement.forfeited
        if entitlement.consumed_by is not None:
            assert entitlement.consumed_by in {o.order_no for o in holders}
        for order in holders:
            if order.is_closed and entitlement.consumed_by == order.order_no:
                assert entitlement.forfeited, f"{code} of closed {order.order_no} not forfeited"


def check_step(
    run: Run,
    command: dict[str, Any],
    before: Order | None,
    after: Order | None,
    accepted: bool,
    result_events: list[str],
) -> None:
    kind = command["type"]
    if not accepted or before is None:
        return
    if before.is_closed:
        assert kind in SETTLEMENT, f"closed {before.order_no} accepted {kind}"
    if kind in ("ship_order", "deliver_order"):
        assert before.contract_formed, f"{kind}: the contract has not formed"
        assert before.kept_fen >= before.due_fen, f"{kind} with {before.kept_fen} kept of due"
        assert not before.shortage_open
    assert after is not None
    if after.is_closed and not before.is_closed:
        closed = [e for e in run.ledger.app.events.get(order_id(after.order_no))]
        closure = [e for e in closed if isinstance(e, ev.OrderClosed)]
        assert len(closure) == 1
        assert closure[0].contract_formed == before.contract_formed
        if before.kept_fen >= before.total_due_fen:
            assert closure[0].contract_formed, "closure after full payment: contract not formed"
        assert "order/UserNotified" in result_events, "closure without a notice to the user"


def check_payment_ids(orders: dict[str, Order]) -> None:
    """One provider payment id, one payment in the whole ledger."""
    seen: dict[str, str] = {}
    for order in orders.values():
        for payment_id in order.payments:
            assert payment_id not in seen, f"{payment_id} paid {seen.get(payment_id)} too"
            seen[payment_id] = order.order_no


def check_streams(run: Run) -> None:
    payment_ids: list[str] = []
    for no in run.order_nos:
        events = list(run.ledger.app.events.get(order_id(no)))
        payment_ids += [e.payment_id for e in events if isinstance(e, ev.PaymentReceived)]
        for kind in (ev.Shipped, ev.OrderClosed, ev.ContractFormed, ev.TransactionCompleted):
            count = sum(isinstance(e, kind) for e in events)
            assert count <= 1, f"{no}: {count} {kind.__name__} events"
    assert len(payment_ids) == len(set(payment_ids)), "a provider payment id counted twice"


def play(run: Run, steps: list[Step]) -> None:
    for code, kind in [
        (run.coupons[0], "coupon"),
        (run.coupons[1], "coupon"),
        (run.f_code, "f_code"),
    ]:
        run.ledger.execute(b.issue(code, kind, command_id=run.cid("issue")))
    for step in steps:
        command = command_for(run, step)
        if command is None:
            continue
        no = command.get("order_no")
        before = run.order(no) if no else None
        head = run.ledger.head_position()
        try:
            result = run.ledger.execute(command)
        except (RuleViolation, NotFound):
            assert run.ledger.head_position() == head, f"refused {command['type']} wrote events"
            accepted, events = False, []
        else:
            accepted, events = check_result(run, command, result, head)
        after = run.order(no) if no else None
        check_step(run, command, before, after, accepted, events)
        orders = {o.order_no: o for n in run.order_nos if (o := run.order(n)) is not None}
        for order in orders.values():
            check_order(order)
        check_entitlements(run, orders)
        check_payment_ids(orders)
    check_streams(run)


def check_result(
    run: Run, command: dict[str, Any], result: CommandResult, head: int
) -> tuple[bool, list[str]]:
    """Accepted: the head moved to the result. A repeated fact: nothing written and the
    first outcome; the only repeats here are of a provider id, a shipment, a consent, a
    flag or a refund's completion. Returns whether the command changed anything, and its events."""
    if result.duplicate:
        assert command["type"] in REPEATABLE, f"{command['type']} answered as a repeat"
        assert run.ledger.head_position() == head, "a repeat wrote events"
        return False, []
    assert result.position == run.ledger.head_position() > head
    if command["type"] == "receive_payment":
        run.payments.append(command)
    return True, result.events


@contextmanager
def example_run(backend: str, workdir: Path) -> Iterator[Run]:
    """A ledger for one example: a fresh SQLite file, or the test's PostgreSQL database."""
    clock = ManualClock(CLOCK_START)
    prefix = uuid.uuid4().hex[:10]
    if backend.startswith("sqlite"):
        with tempfile.TemporaryDirectory(dir=workdir) as tmp:
            ledger = open_ledger(f"sqlite:///{tmp}/ledger.db", clock=clock)
            try:
                yield Run(ledger, clock, prefix)
            finally:
                ledger.close()
    else:
        ledger = open_ledger(backend, clock=clock)
        try:
            yield Run(ledger, clock, prefix)
        finally:
            ledger.close()


def test_invariants_hold_after_every_command(backend: str, tmp_path: Path) -> None:
    on_postgres = not backend.startswith("sqlite")

    @settings(
        max_examples=10 if on_postgres else 25,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(steps=sequences)
    def example(steps: list[Step]) -> None:
        with example_run(backend, tmp_path) as run:
            play(run, steps)

    example()


# -- restores: only a forfeited code comes back ------------------------------------------------
def test_a_coupon_held_by_a_live_order_cannot_be_restored_and_used_again(
    ledger_app: Ledger,
) -> None:
    ledger_app.execute(b.issue("CPN-1"))
    ledger_app.execute(b.submit("A1", coupons=["CPN-1"]))
    restore = b.other("restore_entitlement", code="CPN-1", rule="goodwill")
    for command, code in [
        (restore, "ENTITLEMENT_NOT_FORFEITED"),
        (b.submit("A2", coupons=["CPN-1"]), "ENTITLEMENT_ALREADY_CONSUMED"),
    ]:
        before = ledger_app.head_position()
        with pytest.raises(RuleViolation) as caught:
            ledger_app.execute(command)
        assert (caught.value.code, caught.value.clause) == (code, "3.1.11")
        assert ledger_app.head_position() == before


def test_a_coupon_forfeited_by_a_closure_may_be_restored_under_a_named_rule(
    ledger_app: Ledger,
) -> None:
    ledger_app.execute(b.issue("CPN-1"))
    ledger_app.execute(b.submit("A1", coupons=["CPN-1"]))
    cancelled = ledger_app.execute(b.order_cmd("cancel_order", "A1"))
    assert "entitlement/Forfeited" in cancelled.events
    with pytest.raises(RuleViolation) as caught:
        ledger_app.execute(b.submit("A2", coupons=["CPN-1"]))
    assert (caught.value.code, caught.value.clause) == ("ENTITLEMENT_ALREADY_CONSUMED", "3.1.11")
    restored = ledger_app.execute(
        b.other("restore_entitlement", code="CPN-1", rule="store credit policy 2026/3")
    )
    assert restored.events == ["entitlement/Restored"]
    ledger_app.execute(b.submit("A2", coupons=["CPN-1"]))
    coupon: Any = ledger_app.app.repository.get(entitlement_id("CPN-1"))
    assert (coupon.consumed_by, coupon.forfeited) == ("A2", False)
