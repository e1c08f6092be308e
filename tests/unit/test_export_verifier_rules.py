"""The bag's verifier says the ledger's rules in its own words (it imports nothing of the
ledger): its topics, statuses and refund purposes are held here to the domain's."""

from __future__ import annotations

from ledger.domain.order import events as ev
from ledger.domain.order.vocabulary import LOWERS_DUE, OrderStatus
from projections.base import topic_of
from replay import export_verifier as v


def test_every_topic_the_verifier_names_is_an_order_event_s_topic() -> None:
    topics = {
        topic_of(c)
        for c in vars(ev).values()
        if isinstance(c, type) and issubclass(c, ev.OrderEvent) and c is not ev.OrderEvent
    }
    assert topic_of(ev.OrderSubmitted) == v.SUBMITTED
    assert set(v.KINDS) <= topics
    names = {t.rsplit("/", 1)[-1] for t in topics}
    assert set(v.STATUS_AFTER) <= names


def test_the_verifier_s_statuses_and_refund_purposes_are_the_domain_s() -> None:
    assert set(v.STATUS_AFTER.values()) == {s.value for s in OrderStatus}
    assert frozenset(LOWERS_DUE) == v.LOWERS_DUE
