"""Orders (issue 13, "Orders"): search, an order's page, its timeline and state as of any
event.

The search and the order's page read the API's read models through the API's own functions
(api/queries.py ``list_page`` and ``one``, the same listings, page tokens and 404s) and show
each row through the API's view models (api/views.py): no personal field is on them. The
contact is revealed only by a POSTed form, to the roles the API reveals it to, and an
auditor's reveal is recorded first (ledger/contact_reads.py), as over HTTP. The retention line
is shown to the API's trail readers only.

The timeline is ``replay_as_of`` (replay/as_of.py) over the order's own stream: every event
with its time, position, clause and actor (its command's record, ledger/domain/command_record.py),
and the state as of the chosen event or time. It reads that stream and one command record per
command of it, never the log: its cost is the stream's (bench/console.py measures it).
"""

from __future__ import annotations

from typing import Annotated, Any, get_args

from eventsourcing.application import AggregateNotFoundError
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from api.auth import TRAIL_READERS
from api.console.access import CONSOLE_ROLES
from api.console.forms import Form, field, moment
from api.console.render import page
from api.console.session import Viewer, checked_form
from api.errors import InvalidParameter
from api.history import as_of_over_http
from api.queries import AccountFilter, KeyFilter, KeyId, Paging, list_page, one
from api.views import EntitlementView, FlagView, OrderView, PaymentView, RefundView, RetentionView
from ledger.clock import EARLIEST_COMMAND_TIME
from ledger.commands import LATEST_MOMENT
from ledger.contact_reads import reveal_contact
from ledger.domain.context import Actor
from ledger.domain.errors import NotFound
from ledger.domain.ids import command_record_id
from ledger.domain.order.vocabulary import OrderStatus
from ledger.domain.personal_data import RECORDED_ROLES, LegalBasis
from projections import queries as q

router = APIRouter()
PAGE_SIZE = 25
DETAIL_ROWS = 200  # payments, refunds, flags, codes of one order: one page of the API's most
LAST_POSITION = 2**62
# The agreement's clause behind each order event (docs/rules.md's sections); a closure names
# its own (its ``clause`` fact). tests/unit/test_console_clauses.py keeps it to the rulebook's
# section headings and to the order events there are.
CLAUSES: dict[str, str] = {
    **dict.fromkeys(("OrderSubmitted", "PaymentReceived", "ContractFormed", "CancelledByUser",
                     "PaymentDeadlineLapsed", "MutualTerminationRequested",
                     "MutualTerminationAccepted", "MutualTerminationDeclined",
                     "UserNotified"), "3.1.2"),
    **dict.fromkeys(("StockShortageDeclared", "StockShortageResolved", "RefundConsentRecorded",
                     "RefundInitiated", "RefundCompleted"), "3.1.4"),
    **dict.fromkeys(("AbnormalOrderFlagRaised", "AbnormalOrderFlagReviewed"), "3.1.6"),
    **dict.fromkeys(("PriceErrorDetected", "PriceErrorResolved"), "3.1.7"),
    "GiftPriceCharged": "3.1.8",
    **dict.fromkeys(("Shipped", "DeliveryAttemptFailed", "ContactCallAttempted",
                     "DeliveryRefused", "Delivered"), "3.2"),
    **dict.fromkeys(("ReturnRequested", "ReturnReceived", "ReturnInspected"), "3.3"),
    **dict.fromkeys(("TransactionCompleted", "TransactionReopened"), "4.1, ECL 31"),
}  # fmt: skip


def views(rows: list[Any], model: type[BaseModel]) -> list[dict[str, Any]]:
    """Rows as the API shows them: only the view's fields (no personal one)."""
    return [model.model_validate(row).model_dump() for row in rows]


async def _page(
    request: Request,
    listing: Any,
    filters: dict[str, Any],
    size: int,
    token: str | None,
    **how: Any,
) -> dict[str, Any]:
    paging = Paging(size, token, None)
    return await list_page(request, Response(), listing, filters, paging, **how)


@router.get("/orders")
async def search(
    request: Request,
    actor: Viewer,
    order_no: str | None = None,
    account_no: str | None = None,
    seller_id: str | None = None,
    status: str | None = None,
    since: str | None = None,
    until: str | None = None,
    page_token: Annotated[str | None, Query(max_length=1024)] = None,
) -> Any:
    """Find orders: by number (straight to it), or of one account, one seller, or in one
    status submitted in [since, until) (China time unless an offset is given), paged."""
    number = field(order_no, "order_no", KeyFilter)
    if number is not None:
        return RedirectResponse(f"/console/orders/{number}", status_code=303)
    filters = {
        "account_no": field(account_no, "account_no", AccountFilter),
        "seller_id": field(seller_id, "seller_id", KeyFilter),
        "status": field(status, "status", OrderStatus),
    }
    start, end = moment(since, "since"), moment(until, "until")
    given = {k: v for k, v in filters.items() if v is not None}
    form = {"order_no": "", "account_no": account_no or "", "seller_id": seller_id or "",
            "status": status or "", "since": since or "", "until": until or ""}  # fmt: skip
    if not given:
        return page(request, "orders.html", form=form, found=None, statuses=list(OrderStatus))
    if len(given) > 1:
        raise InvalidParameter("account_no/seller_id/status", "give one of them (or an order_no)")
    if "status" not in given and (start or end):
        raise InvalidParameter("since" if start else "until", "only with status")
    (name, value), = given.items()  # fmt: skip
    if name == "status":
        start, end = start or EARLIEST_COMMAND_TIME, end or LATEST_MOMENT
        if end <= start:
            raise InvalidParameter("until", "must be after since")
        found = await _page(request, q.ORDERS_BY_STATUS,
                            {"status": str(value), "since": start, "until": end},
                            PAGE_SIZE, page_token)  # fmt: skip
    else:
        listing = q.ORDERS_BY_ACCOUNT if name == "account_no" else q.ORDERS_BY_SELLER
        found = await _page(request, listing, {name: value}, PAGE_SIZE, page_token)
    found["items"] = views(found["items"], OrderView)
    return page(request, "orders.html", form=form, found=found, statuses=list(OrderStatus))


@router.get("/orders/{order_no}")
async def order(request: Request, order_no: KeyId, actor: Viewer) -> Any:
    """An order: its state, money per payment method, refunds, F-codes and coupons, flags and
    their reviews, and (for the trail's readers) its retention line."""
    return await _order_page(request, order_no, actor, None)


async def _order_page(
    request: Request, order_no: str, actor: Actor, contact: dict[str, Any] | None
) -> Any:
    found = await one(request, Response(), ("orders", None), "order",
                      lambda m: m.order(order_no), stream=True)  # fmt: skip
    view = OrderView.model_validate(found["item"]).model_dump()
    by_order = {"order_no": order_no}
    payments = await _page(request, q.PAYMENTS, by_order, DETAIL_ROWS, None)
    refunds = await _page(request, q.REFUNDS, by_order, DETAIL_ROWS, None)
    flags = await _page(request, q.FLAGS, by_order, DETAIL_ROWS, None)
    account = view["account_no"]
    codes = await _page(request, q.ENTITLEMENTS_BY_ACCOUNT, {"account_no": account},
                        DETAIL_ROWS, None, params=(account, account))  # fmt: skip
    used_here = [
        c
        for c in views(codes["items"], EntitlementView)
        if order_no in (c["consumed_order"], c["forfeited_order"], c["restored_order"])
    ]
    retention = None
    if actor.role in TRAIL_READERS:
        kept = await one(request, Response(), ("retention", None), "order",
                         lambda m: m.retention(order_no))  # fmt: skip
        retention = RetentionView.model_validate(kept["item"]).model_dump()
    return page(
        request,
        "order.html",
        order=view,
        position=found["position"],
        payments=views(payments["items"], PaymentView),
        refunds=views(refunds["items"], RefundView),
        flags=views(flags["items"], FlagView),
        codes=used_here,
        retention=retention,
        can_see_trail=actor.role in TRAIL_READERS,
        can_see_timeline=actor.role in CONSOLE_ROLES["GET /console/orders/{order_no}/timeline"],
        contact=contact,
        may_cite=actor.role in RECORDED_ROLES,
        bases=get_args(LegalBasis),
    )


@router.post("/orders/{order_no}/contact")
async def contact(request: Request, order_no: KeyId, actor: Viewer) -> Any:
    """Reveal the order's contact (as ``GET /v1/orders/{order_no}/contact``: an auditor's
    read recorded in the log first, with the legal basis and reference the form cites; a
    restricted subject refused ``PROCESSING_RESTRICTED`` without them, PIPL 47 para 2)."""
    cited = _cited(await checked_form(request))
    ledger = request.app.state.ledger
    revealed = await run_in_threadpool(reveal_contact, ledger, order_no, actor, cited)
    shown = {"contact": revealed.contact, "recorded": revealed.recorded,
             "position": revealed.position, "cited": cited}  # fmt: skip
    return await _order_page(request, order_no, actor, shown)


def _cited(form: Form) -> tuple[str, str] | None:
    """The form's ``legal_basis`` (a ``LegalBasis``) and ``reference`` (a request's file id),
    both or neither, as the API's ``legal_basis`` and ``reference`` parameters;
    ``InvalidParameter`` naming the field otherwise."""
    basis = field(form.get("legal_basis"), "legal_basis", LegalBasis)
    reference = field(form.get("reference"), "reference", KeyFilter)
    if (basis is None) != (reference is None):
        raise InvalidParameter("legal_basis", "give legal_basis and reference together")
    return None if basis is None else (basis, reference)


@router.get("/orders/{order_no}/timeline")
async def timeline(
    request: Request,
    order_no: KeyId,
    actor: Viewer,
    position: Annotated[int | None, Query(ge=1, le=LAST_POSITION)] = None,
    at: str | None = None,
) -> Any:
    """Every event of the order, and its state as of one of them: ``position`` (default the
    last), or ``at`` (a time: the last event at or before it)."""
    chosen = moment(at, "at")
    ledger = request.app.state.ledger

    def read() -> tuple[Any, Any, dict[str, dict[str, Any]]]:
        # Everything the log holds: up to its head (a position beyond it is refused).
        whole = as_of_over_http(ledger, "order", order_no, at=None,
                                position=max(ledger.head_position(), 1))  # fmt: skip
        if chosen is not None or position is not None:
            state = as_of_over_http(ledger, "order", order_no, at=chosen, position=position)
        else:
            state = whole
        return whole, state, _actors(ledger, whole.events)

    try:
        whole, state, actors = await run_in_threadpool(read)
    except NotFound:
        raise NotFound("no such order, or no event of it by then") from None
    events = [_row(e, actors) for e in whole.events]
    index = next(i for i, e in enumerate(events) if e["position"] == state.position)
    return page(
        request,
        "timeline.html",
        order_no=order_no,
        events=events,
        current=events[index],
        previous=events[index - 1] if index else None,
        following=events[index + 1] if index + 1 < len(events) else None,
        state=state.state,
        at=at or "",
    )


def _actors(ledger: Any, events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Who sent each command of the stream: its record's actor (one read per command)."""
    found: dict[str, dict[str, Any]] = {}
    for event in events:
        command_id = event["facts"].get("command_id")
        if command_id and command_id not in found:
            try:
                record: Any = ledger.app.repository.get(command_record_id(command_id))
            except AggregateNotFoundError:  # a command no record was kept for
                continue
            found[command_id] = dict(record.actor)
    return found


def _row(event: dict[str, Any], actors: dict[str, dict[str, Any]]) -> dict[str, Any]:
    facts = event["facts"]
    actor = actors.get(facts.get("command_id", ""), {})
    return {
        **event,
        "clause": facts.get("clause") or CLAUSES.get(event["event"], ""),
        "actor": actor,
        "facts": {k: v for k, v in facts.items() if k != "command_id"},
        "command_id": facts.get("command_id"),
    }
