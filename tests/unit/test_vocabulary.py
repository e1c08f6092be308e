"""The order's state vocabulary is one set of words, used alike by the domain and the views."""

from __future__ import annotations

from typing import get_args

from ledger.domain.order import vocabulary as v
from ledger.domain.order.closure import CLOSURE_CLAUSES


def test_every_closure_ground_has_its_clause_and_nothing_else_does() -> None:
    assert set(CLOSURE_CLAUSES) == set(get_args(v.ClosureGround))


def test_the_purposes_that_lower_what_is_due_are_refund_purposes() -> None:
    assert set(get_args(v.RefundPurpose)) >= v.LOWERS_DUE
    assert set(get_args(v.RefundPurpose)) >= v.COMMANDED_PURPOSES


def test_a_failed_delivery_reads_as_failed_with_its_reason() -> None:
    assert v.DeliveryStatus.failed("no_answer") == "failed:no_answer"


def test_states_store_and_compare_as_their_plain_words() -> None:
    assert v.OrderStatus.PAID == "paid" and str(v.OrderStatus.PAID) == "paid"
    assert f"{v.ReturnStatus.INSPECTED}" == "inspected"
