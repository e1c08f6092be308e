"""``GET /v1/…``: a route per query of the read models (projections/queries.py).

- **Pages.** Every list takes ``page_size`` (1-200, default 50; more is ``INVALID_PARAMETER``,
  never silently cut) and ``page_token`` (opaque, from the previous page's
  ``next_page_token``, which is null on the last page; api/pages.py). Pages are keyset pages in
  the list's own order: a walk never repeats or skips a row, however rows arrive meanwhile.
- **Read-your-writes.** Every query takes ``min_position`` (a command's ``Ledger-Position``)
  and first waits, up to the app's ``read_wait_s`` (default 5 s), until the projection it reads
  has applied it: else 409 ``PROJECTION_BEHIND`` with the projection's ``position``, or 503
  ``PROJECTION_STOPPED`` at once if it is stopped on an event it cannot apply.
- **Positions and versions.** Every answer has ``position`` in its body and ``Ledger-Position``:
  the position its projection had applied when it was read. An order or a code also has
  ``ETag``: its stream's version as of that position (read from the log through the ledger),
  what a command's ``If-Match`` compares.
- **Roles.** ``service`` and ``auditor`` (api/access.py); the retention audit trail ``auditor``
  and ``admin``; others 403, no key 401.
- **Personal fields** are absent from every answer (api/views.py), except
  ``/v1/orders/{order_no}/contact``, which reveals the contact and records an auditor's read
  in the log before it answers (ledger/contact_reads.py).
- An id in the path that no read model has is 404 ``NOT_FOUND``; a filter that matches
  nothing is an empty page; a parameter the route does not take is 400. Problems name the
  parameter and the rule, never a value.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import AfterValidator
from starlette.concurrency import run_in_threadpool

from api.auth import READERS, TRAIL_READERS, ReaderActor, TrailActor, require
from api.commands import ERROR_RESPONSES
from api.errors import InvalidParameter
from api.pages import MAX_TOKEN_CHARS, NOT_OURS, TOKEN, PageTokens, scope_of
from api.readers import Readers
from api.views import (
    CampaignCounts,
    ContactView,
    EntitlementStep,
    EntitlementView,
    FlagView,
    GroupUsage,
    Item,
    OrderView,
    Page,
    PaymentView,
    RefundView,
    RefusalCount,
    RetentionStep,
    RetentionView,
    SubjectRetentionView,
    examples,
)
from ledger.application import Ledger
from ledger.clock import EARLIEST_COMMAND_TIME
from ledger.commands import (
    ACCOUNT_PATTERN,
    KEY_MAX_CHARS,
    KEY_PATTERN,
    LATEST_MOMENT,
    Moment,
    not_personal_account,
)
from ledger.contact_reads import reveal_contact
from ledger.domain.context import Actor
from ledger.domain.errors import NotFound
from ledger.domain.order.vocabulary import OrderStatus
from ledger.domain.personal_data import LegalBasis
from projections import queries as q
from projections.queries import Listing, ReadModels

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
MAX_POSITION = 2**63 - 1
QUERY_ERRORS: dict[int | str, dict[str, Any]] = {
    status: ERROR_RESPONSES[status] | {"description": text}
    for status, text in [
        (400, "INVALID_PARAMETER: a parameter breaks its rule (named, never echoed)"),
        (401, "UNAUTHENTICATED"),
        (403, "FORBIDDEN: the role may not run queries"),
        (404, "NOT_FOUND: the id in the path is unknown to the read model"),
        (409, "PROJECTION_BEHIND: min_position not reached in time; the body's position"),
        (503, "STORAGE_UNAVAILABLE or PROJECTION_STOPPED (with Retry-After)"),
    ]
}

LEDGER_POSITION = {
    "description": "the log position the read model had applied when it was read",
    "schema": {"type": "integer", "minimum": 0},
}
ETAG = {
    "description": "the stream's version as of that position, quoted (\"3\"): a command's If-Match",
    "schema": {"type": "string"},
}
ANSWERED: dict[str, Any] = {
    "description": "the answer",
    "headers": {"Ledger-Position": LEDGER_POSITION},
}
VERSIONED: dict[int | str, dict[str, Any]] = {
    200: {"headers": {"Ledger-Position": LEDGER_POSITION, "ETag": ETAG}}
}


def declared_query(dependant: Any) -> set[str]:
    """The names of the query parameters a route takes, its dependencies' included."""
    names = {str(p.alias) for p in dependant.query_params}
    for sub in dependant.dependencies:
        names |= declared_query(sub)
    return names


def known_parameters_for(*roles: str) -> Callable[..., Awaitable[None]]:
    """A dependency that refuses a query parameter the route does not take
    (``INVALID_PARAMETER``, listing the ones it takes, never naming the one sent: it may be
    anything): a misspelt filter must not be silently ignored. The key is checked first, for
    ``roles``: 401 and 403 come before 400."""
    key = Depends(require(*roles))  # a default: closures resolve no annotation

    async def known(request: Request, actor: Actor = key) -> None:
        dependant = getattr(request.scope.get("route"), "dependant", None)
        if dependant is None:
            return
        taken = declared_query(dependant)
        if set(request.query_params) - taken:
            rule = f"takes only {', '.join(sorted(taken))}" if taken else "takes no parameters"
            raise InvalidParameter("query", rule)

    return known


# The key is checked for any reading role here; each route then admits its own.
known_parameters = known_parameters_for(*dict.fromkeys((*READERS, *TRAIL_READERS)))


router = APIRouter(
    prefix="/v1",
    tags=["queries"],
    responses={200: ANSWERED, **QUERY_ERRORS},
    dependencies=[Depends(known_parameters)],
)

MinPosition = Annotated[
    int | None,
    Query(
        ge=0,
        le=MAX_POSITION,
        description="wait until the read model has applied this log position (a command's "
        "Ledger-Position) before answering",
        examples=[8],
    ),
]
# Ids in paths and filters take the characters the commands' ids take (ledger/commands.py):
# no control character reaches a database (PostgreSQL refuses a NUL: that would be a 5xx).
KeyId = Annotated[str, Path(min_length=1, max_length=KEY_MAX_CHARS, pattern=KEY_PATTERN)]
# An account number is never a phone number or an email, here as in commands (issue 11 item 7).
AccountId = Annotated[
    str,
    Path(min_length=1, max_length=KEY_MAX_CHARS, pattern=ACCOUNT_PATTERN),
    AfterValidator(not_personal_account),
]
KeyFilter = Annotated[str, Query(min_length=1, max_length=KEY_MAX_CHARS, pattern=KEY_PATTERN)]
AccountFilter = Annotated[
    str,
    Query(min_length=1, max_length=KEY_MAX_CHARS, pattern=ACCOUNT_PATTERN),
    AfterValidator(not_personal_account),
]
At = Annotated[
    Moment | None,
    Query(
        description="an RFC 3339 date-time with an offset (in a URL, + is %2B)",
        examples=["2026-03-02T09:00:00Z"],
    ),
]


@dataclass(frozen=True)
class Paging:
    """A list's page parameters."""

    page_size: int
    page_token: str | None
    min_position: int | None


def paging(
    page_size: Annotated[
        int, Query(ge=1, le=MAX_PAGE_SIZE, description=f"rows per page, at most {MAX_PAGE_SIZE}")
    ] = DEFAULT_PAGE_SIZE,
    page_token: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=MAX_TOKEN_CHARS,
            description="the next_page_token of the previous page",
        ),
    ] = None,
    min_position: MinPosition = None,
) -> Paging:
    """A list's ``page_size`` (1 to ``MAX_PAGE_SIZE``), ``page_token`` and ``min_position``
    as query parameters (FastAPI documents them on every list route)."""
    return Paging(page_size, page_token, min_position)


PagingParams = Annotated[Paging, Depends(paging)]


# -- plumbing ---------------------------------------------------------------------------------
def readers_of(request: Request) -> Readers:
    """The app's read models (opened by its lifespan, api/app.py)."""
    readers: Readers = request.app.state.readers
    return readers


def positioned(response: Response, position: int, version: int | None = None) -> None:
    """The answer's headers: ``Ledger-Position`` and, for one stream, its ``ETag``."""
    response.headers["Ledger-Position"] = str(position)
    if version is not None:
        response.headers["ETag"] = f'"{version}"'


@dataclass(frozen=True)
class Owner:
    """What a list belongs to, for a 404 when it is unknown: a row of ``table`` whose
    ``column`` is ``value`` in ``projection``."""

    what: str
    projection: str
    table: str
    column: str
    value: str


Reader = Callable[..., q.Page]


async def list_page(
    request: Request,
    response: Response,
    listing: Listing,
    filters: dict[str, Any],
    paging: Paging,
    *,
    params: tuple[Any, ...] | None = None,
    read: Reader | None = None,
    owner: Owner | None = None,
) -> dict[str, Any]:
    """One page of ``listing`` for ``filters`` (by name: a page token is good only for the
    same ones); the query's parameters are ``params``, default the filters' values in order,
    unless ``read`` reads the page its own way. ``owner``: 404 if the list's owner is
    unknown."""
    tokens: PageTokens = request.app.state.page_tokens
    scope = scope_of(listing.name, filters)
    token = paging.page_token
    cursor = None if token is None else open_cursor(tokens, listing, scope, token)
    readers = readers_of(request)
    values = tuple(filters.values()) if params is None else params

    def by_listing(models: ReadModels, **how: Any) -> q.Page:
        return models.page(listing, values, **how)

    def query(models: ReadModels) -> q.Page:
        found = (read or by_listing)(models, page_size=paging.page_size, cursor=cursor)
        if owner is not None and not found.rows and cursor is None:
            known = models.exists(owner.projection, owner.table, owner.column, owner.value)
            if not known:
                raise NotFound(f"no such {owner.what}")
        return found

    found = await readers.run(query, listing.projection, paging.min_position)
    positioned(response, found.position)
    next_token = None if found.next is None else tokens.seal(scope, found.next)
    return {"position": found.position, "items": found.rows, "next_page_token": next_token}


def open_cursor(tokens: PageTokens, listing: Listing, scope: str, token: str) -> Any:
    """The cursor in ``token``: ``INVALID_PARAMETER`` naming page_token if it is not one."""
    try:
        return listing.parse_cursor(tokens.open(scope, token))
    except ValueError:
        raise InvalidParameter(TOKEN, NOT_OURS) from None


async def one(
    request: Request,
    response: Response,
    read: tuple[str, int | None],
    what: str,
    find: Callable[[ReadModels], Any],
    *,
    stream: bool = False,
) -> dict[str, Any]:
    """One resource that ``find(models)`` reads in the projection ``read[0]`` once it has
    applied ``read[1]`` (a min_position); None is a 404 naming ``what``. With ``stream``, the
    row's stream version is the ``ETag``."""
    ledger: Ledger = request.app.state.ledger

    def query(models: ReadModels) -> tuple[Any, int, int | None]:
        found = find(models)
        if found is None:
            raise NotFound(f"no such {what}")
        position = models.position
        version = ledger.stream_version(UUID(found["stream_id"]), position) if stream else None
        return found, position, version

    found, position, version = await readers_of(request).run(query, *read)
    positioned(response, position, version)
    return {"position": position, "item": found}


def now(request: Request, at: datetime | None) -> datetime:
    """``at``, or the ledger's clock (the injected one: tests set it)."""
    return at if at is not None else request.app.state.ledger.clock.now()


# -- orders -----------------------------------------------------------------------------------
class OrderItem(Item[OrderView]):
    """An order."""


class OrderPage(Page[OrderView]):
    """A page of orders."""


class ContactItem(Item[ContactView]):
    """An order's contact, revealed."""


class FlagPage(Page[FlagView]):
    """A page of flags."""


class PaymentPage(Page[PaymentView]):
    """A page of payments per order and method."""


class RefundPage(Page[RefundView]):
    """A page of refunds."""


class RetentionItem(Item[RetentionView]):
    """An order's retention."""


class SubjectRetentionItem(Item[SubjectRetentionView]):
    """A data subject's holds, restriction and retention end."""


@router.get("/orders/{order_no}", response_model=OrderItem, responses=VERSIONED)
async def order(
    request: Request,
    response: Response,
    order_no: KeyId,
    actor: ReaderActor,
    min_position: MinPosition = None,
) -> Any:
    """One order, with its stream version as ``ETag``; no contact (see ``/contact``)."""
    read = ("orders", min_position)
    return await one(request, response, read, "order", lambda m: m.order(order_no), stream=True)


@router.get("/orders", response_model=OrderPage)
async def orders(
    request: Request,
    response: Response,
    actor: ReaderActor,
    page: PagingParams,
    account_no: AccountFilter | None = None,
    seller_id: KeyFilter | None = None,
    status: Annotated[OrderStatus | None, Query()] = None,
    since: At = None,
    until: At = None,
) -> Any:
    """Orders of one account or one seller (newest first), or in one status submitted in
    [since, until) (oldest first; default: any time). Exactly one of ``account_no``,
    ``seller_id`` and ``status``."""
    if sum(v is not None for v in (account_no, seller_id, status)) != 1:
        raise InvalidParameter("account_no/seller_id/status", "give exactly one of them")
    if status is None and (since is not None or until is not None):
        raise InvalidParameter("since" if since is not None else "until", "only with status")
    if account_no is not None:
        return await list_page(
            request, response, q.ORDERS_BY_ACCOUNT, {"account_no": account_no}, page
        )
    if seller_id is not None:
        return await list_page(
            request, response, q.ORDERS_BY_SELLER, {"seller_id": seller_id}, page
        )
    start, end = since or EARLIEST_COMMAND_TIME, until or LATEST_MOMENT
    if end <= start:
        raise InvalidParameter("until", "must be after since")
    filters = {"status": str(status), "since": start, "until": end}
    return await list_page(request, response, q.ORDERS_BY_STATUS, filters, page)


CitedBasis = Annotated[
    LegalBasis | None,
    Query(description="a restricted subject's data (PIPL 47 para 2): the legal basis cited"),
]
CitedReference = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=KEY_MAX_CHARS,
        pattern=KEY_PATTERN,
        description="with legal_basis: the request's file id (the court's, the regulator's)",
    ),
]


@router.get("/orders/{order_no}/contact", response_model=ContactItem, responses=VERSIONED)
async def contact(
    request: Request,
    response: Response,
    order_no: KeyId,
    actor: ReaderActor,
    min_position: MinPosition = None,
    legal_basis: CitedBasis = None,
    reference: CitedReference = None,
) -> Any:
    """The order's contact in plaintext (``[erased]`` once its subject is erased), read from
    the log itself (so ``min_position`` is always met). An auditor's read is first recorded
    as a ``PersonalDataRead`` event (key id, role, subject, order, field names; never the
    values), and its position is the answer's. ``Cache-Control: no-store``. A subject whose
    processing is restricted (PIPL 47 para 2) is 409 ``PROCESSING_RESTRICTED`` unless an
    auditor cites ``legal_basis`` and ``reference`` (both, or neither), recorded with the
    read."""
    if (legal_basis is None) != (reference is None):
        raise InvalidParameter("legal_basis", "give legal_basis and reference together")
    cited = None if legal_basis is None or reference is None else (legal_basis, reference)
    ledger = request.app.state.ledger
    revealed = await run_in_threadpool(reveal_contact, ledger, order_no, actor, cited)
    positioned(response, revealed.position, revealed.version)
    response.headers["Cache-Control"] = "no-store"
    view = {"order_no": order_no, "contact": revealed.contact, "recorded": revealed.recorded}
    return {"position": revealed.position, "item": view}


@router.get("/orders/{order_no}/flags", response_model=FlagPage)
async def order_flags(
    request: Request, response: Response, order_no: KeyId, actor: ReaderActor, page: PagingParams
) -> Any:
    """The order's abnormal-order flags (3.1.6) in the order they were raised."""
    owner = Owner("order", "flags", "flag_orders", "order_no", order_no)
    filters = {"order_no": order_no}
    return await list_page(request, response, q.FLAGS, filters, page, owner=owner)


@router.get("/orders/{order_no}/payments", response_model=PaymentPage)
async def order_payments(
    request: Request, response: Response, order_no: KeyId, actor: ReaderActor, page: PagingParams
) -> Any:
    """The order's money per payment method: paid, refunded, under way, outstanding."""
    owner = Owner("order", "payments", "pay_orders", "order_no", order_no)
    filters = {"order_no": order_no}
    return await list_page(request, response, q.PAYMENTS, filters, page, owner=owner)


@router.get("/orders/{order_no}/refunds", response_model=RefundPage)
async def order_refunds(
    request: Request, response: Response, order_no: KeyId, actor: ReaderActor, page: PagingParams
) -> Any:
    """The order's refunds by refund id (destinations stay sealed: absent)."""
    owner = Owner("order", "payments", "pay_orders", "order_no", order_no)
    filters = {"order_no": order_no}
    return await list_page(request, response, q.REFUNDS, filters, page, owner=owner)


@router.get("/orders/{order_no}/retention", response_model=RetentionItem)
async def order_retention(
    request: Request,
    response: Response,
    order_no: KeyId,
    actor: TrailActor,
    min_position: MinPosition = None,
) -> Any:
    """When the order's transaction completed and until when it is kept (ECL 31)."""
    read = ("retention", min_position)
    return await one(request, response, read, "order", lambda m: m.retention(order_no))


# -- entitlements -----------------------------------------------------------------------------
class EntitlementItem(Item[EntitlementView]):
    """An F-code or coupon."""


class EntitlementPage(Page[EntitlementView]):
    """A page of F-codes and coupons."""


class EntitlementHistoryPage(Page[EntitlementStep]):
    """A page of a code's history."""


class CampaignItem(Item[CampaignCounts]):
    """A campaign's counts."""


@router.get("/entitlements/{code}", response_model=EntitlementItem, responses=VERSIONED)
async def entitlement(
    request: Request,
    response: Response,
    code: KeyId,
    actor: ReaderActor,
    min_position: MinPosition = None,
) -> Any:
    """One F-code or coupon, with its stream version as ``ETag``."""
    read = ("entitlements", min_position)
    return await one(request, response, read, "code", lambda m: m.entitlement(code), stream=True)


@router.get("/entitlements", response_model=EntitlementPage)
async def entitlements(
    request: Request,
    response: Response,
    actor: ReaderActor,
    page: PagingParams,
    account_no: AccountFilter,
) -> Any:
    """The codes an account holds or consumed, by code."""
    return await list_page(
        request,
        response,
        q.ENTITLEMENTS_BY_ACCOUNT,
        {"account_no": account_no},
        page,
        params=(account_no, account_no),  # the holder, or the consumer
    )


@router.get("/entitlements/{code}/history", response_model=EntitlementHistoryPage)
async def entitlement_history(
    request: Request, response: Response, code: KeyId, actor: ReaderActor, page: PagingParams
) -> Any:
    """Every step of the code, in log order."""
    owner = Owner("code", "entitlements", "entitlements", "code", code)
    filters = {"code": code}
    return await list_page(request, response, q.ENTITLEMENT_HISTORY, filters, page, owner=owner)


@router.get("/campaigns/{campaign}/counts", response_model=CampaignItem)
async def campaign_counts(
    request: Request,
    response: Response,
    campaign: KeyId,
    actor: ReaderActor,
    min_position: MinPosition = None,
) -> Any:
    """How many codes of the campaign stand where (``kind/status``: count)."""

    def find(models: ReadModels) -> dict[str, Any] | None:
        counts = models.campaign_counts(campaign)
        return {"campaign": campaign, "counts": counts} if counts else None

    return await one(request, response, ("entitlements", min_position), "campaign", find)


# -- accounts: linked groups, purchase limits, refusals ---------------------------------------
class AccountPage(Page[str]):
    """A page of account numbers."""

    model_config = examples(
        {"position": 812, "items": ["acct-1", "acct-7"], "next_page_token": None}
    )


class GroupUsageItem(Item[GroupUsage]):
    """A group's use of a purchase limit."""


class RefusalItem(Item[RefusalCount]):
    """An account's refusals in a window."""


@router.get("/accounts/{account_no}/linked", response_model=AccountPage)
async def linked_accounts(
    request: Request,
    response: Response,
    account_no: AccountId,
    actor: ReaderActor,
    page: PagingParams,
) -> Any:
    """The accounts linked to this one, itself included, by account number (3.1.5: links
    are transitive); an account no order has linked is alone in its group."""

    def read(models: ReadModels, **how: Any) -> q.Page:
        found = models.linked_page(account_no, **how)
        return q.Page([r["account_no"] for r in found.rows], found.next, found.position)

    filters = {"account_no": account_no}
    return await list_page(request, response, q.LINKED_ACCOUNTS, filters, page, read=read)


@router.get("/accounts/{account_no}/purchase-limits/{sku}", response_model=GroupUsageItem)
async def purchase_limit_usage(
    request: Request,
    response: Response,
    account_no: AccountId,
    sku: KeyId,
    actor: ReaderActor,
    at: At = None,
    min_position: MinPosition = None,
) -> Any:
    """What the account's linked group (or the account, for a per-account rule) bought of
    ``sku`` in the rule's period containing ``at`` (default now), and what remains; 404 when
    no purchase limit applies to the SKU then."""
    moment = now(request, at)

    def find(models: ReadModels) -> dict[str, Any] | None:
        usage = models.group_quantity(sku, account_no, moment)
        return None if usage is None else {**usage, "account_no": account_no, "at": moment}

    read = ("limits", min_position)
    return await one(request, response, read, "purchase limit for this SKU at that time", find)


@router.get("/accounts/{account_no}/refusals", response_model=RefusalItem)
async def refusals(
    request: Request,
    response: Response,
    account_no: AccountId,
    actor: ReaderActor,
    at: At = None,
    window_days: Annotated[
        int | None, Query(ge=1, le=3660, description="default: the policy's refusal window")
    ] = None,
    min_position: MinPosition = None,
) -> Any:
    """Non-quality refusals of delivery by the account in (at - window_days, at] (6.1(5))."""
    moment = now(request, at)
    days = window_days or request.app.state.ledger.policy.refusal_window_days

    def find(models: ReadModels) -> dict[str, Any]:
        count = models.refusals_in_window(account_no, moment, days)
        return {"account_no": account_no, "at": moment, "window_days": days, "refusals": count}

    return await one(request, response, ("flags", min_position), "account", find)


# -- flags, payments, retention across orders -------------------------------------------------
class StepPage(Page[RetentionStep]):
    """A page of a data subject's personal-data steps."""


class RetentionPage(Page[RetentionView]):
    """A page of orders' retention."""


@router.get("/flags/unreviewed", response_model=FlagPage)
async def unreviewed_flags(
    request: Request, response: Response, actor: ReaderActor, page: PagingParams
) -> Any:
    """Flags no person has reviewed yet (PIPL 24), oldest first."""
    return await list_page(request, response, q.UNREVIEWED_FLAGS, {}, page)


@router.get("/reconciliation", response_model=PaymentPage)
async def reconciliation(
    request: Request, response: Response, actor: ReaderActor, page: PagingParams
) -> Any:
    """Order and method pairs whose refunds, done or under way, exceed what was paid. The
    rules never allow it (3.1.4): this list is always empty, or something is wrong."""
    return await list_page(request, response, q.RECONCILIATION, {}, page)


@router.get("/subjects/{subject_id}/retention-steps", response_model=StepPage)
async def retention_steps(
    request: Request,
    response: Response,
    subject_id: AccountId,
    actor: TrailActor,
    page: PagingParams,
) -> Any:
    """Every personal-data step of a data subject (the account), in log order, each with
    its time, actor, legal basis and reference: retention ``scheduled`` and ``extended``,
    ``hold_placed``, ``hold_released``, ``restricted``, reads recorded (``accessed``)."""
    owner = Owner("data subject", "retention", "retention_subjects", "subject_id", subject_id)
    filters = {"subject_id": subject_id}
    return await list_page(request, response, q.RETENTION_STEPS, filters, page, owner=owner)


@router.get("/subjects/{subject_id}/retention", response_model=SubjectRetentionItem)
async def subject_retention(
    request: Request,
    response: Response,
    subject_id: AccountId,
    actor: TrailActor,
    min_position: MinPosition = None,
) -> Any:
    """A data subject's lifecycle now: legal holds on (PIPL 47), its restriction of
    processing (PIPL 47 para 2) and when its last recorded retention ends (ECL 31)."""
    read = ("retention", min_position)
    return await one(
        request, response, read, "data subject", lambda m: m.subject_retention(subject_id)
    )


@router.get("/retention/due", response_model=RetentionPage)
async def retention_due(
    request: Request, response: Response, actor: TrailActor, page: PagingParams, before: At = None
) -> Any:
    """Completed transactions whose legal retention ends before ``before`` (default now),
    soonest first."""
    moment = now(request, before)
    return await list_page(request, response, q.RETENTION_DUE, {"before": moment}, page)
