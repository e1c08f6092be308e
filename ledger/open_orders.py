"""Which orders of a data subject are still being performed, read from the log (issue 11: what
de-identification and erasure must wait for; PIPL 13(2): data needed to perform a contract).

An order is open from its ``OrderSubmitted`` until its ``TransactionCompleted`` (ECL 31); an
after-sales case that reopens a completed transaction is on the subject's own stream
(``DataSubject.case_open``), not here. The log is read a page at a time by topic, so the cost
is one pass over the submissions and completions of the whole ledger: the retention run does
it once per run, an erasure request once per request.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID

from eventsourcing.application import Application

from ledger.domain.order import events as ev

SCAN_PAGE = 1000  # notifications read per query


def open_orders_by_subject(app: Application[UUID]) -> dict[str, set[str]]:
    """Per subject (account number), its order numbers submitted and not completed."""
    submitted = ev.OrderSubmitted.TOPIC  # type: ignore[attr-defined]
    completed = ev.TransactionCompleted.TOPIC  # type: ignore[attr-defined]
    owner: dict[UUID, tuple[str, str]] = {}  # order stream -> order number, account
    done: set[UUID] = set()
    for event in events_of_topics(app, submitted, completed):
        if isinstance(event, ev.OrderSubmitted):
            owner[event.originator_id] = (event.order_no, event.account_no)
        else:
            done.add(event.originator_id)
    found: dict[str, set[str]] = {}
    for stream, (order_no, account_no) in owner.items():
        if stream not in done:
            found.setdefault(account_no, set()).add(order_no)
    return found


def events_of_topics(app: Application[UUID], *topics: str) -> Iterator[Any]:
    """The log's events of ``topics``, in log order, a page at a time."""
    start = 1
    while True:
        page = app.recorder.select_notifications(start, SCAN_PAGE, topics=topics)
        for notification in page:
            yield app.mapper.to_domain_event(notification)
        if len(page) < SCAN_PAGE:
            return
        start = page[-1].id + 1
