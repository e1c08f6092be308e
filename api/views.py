"""What the queries answer: typed response models, each with an example for the OpenAPI
document.

A read-model row becomes its view by validation (``View.model_validate(row)``): columns a
view does not declare are dropped. No view declares a personal field (contact details, payer
and refund accounts, linkage hashes or a group id made of one): they are absent from every
list and detail, and only ``GET /v1/orders/{order_no}/contact`` reveals a contact, to the
roles allowed to see it (api/access.py). Times are RFC 3339 in UTC; money is in fen.

Every answer carries ``position``: the log position the read model had applied when it was
read (also the ``Ledger-Position`` header), so the answer reflects every command up to it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, computed_field

T = TypeVar("T")

AT = "2026-03-02T01:00:00Z"
POSITION_DOC = "the log position the read model had applied when it was read"
NEXT_DOC = "pass as page_token for the next page; null on the last page"


def examples(*values: dict[str, Any]) -> ConfigDict:
    """A model's config giving its OpenAPI schema these examples."""
    return ConfigDict(json_schema_extra={"examples": list(values)})


class OrderView(BaseModel):
    """One order as the ``orders`` projection has it (DOMAIN.md §8), without its contact."""

    order_no: str
    account_no: str
    seller_id: str
    seller_kind: str
    purchase_type: str
    shipping_region: str
    status: str
    contract_formed: bool
    total_due_fen: int
    paid_fen: int
    refunded_fen: int
    pending_refund_fen: int
    paid_by_method: dict[str, int]
    refunded_by_method: dict[str, int]
    gift_charged_fen: int
    closed_ground: str | None
    closed_clause: str | None
    closed_at: datetime | None
    shortage_open: bool
    price_error_open: bool
    termination_requested: bool
    delivery_status: str
    carrier: str | None
    shipped_at: datetime | None
    estimated_delivery: datetime | None
    promised_delivery: datetime | None
    delivery_attempts: int
    failed_attempts: int
    unanswered_calls: int
    refusals: int
    delivered_at: datetime | None
    signer_relation: str | None
    return_status: str | None
    return_kind: str | None
    return_deadline: datetime | None
    flags_total: int
    flags_open: int
    flags_confirmed: int
    completed_at: datetime | None
    retain_until: datetime | None
    submitted_at: datetime
    payment_deadline: datetime | None
    last_position: int
    last_event_at: datetime

    model_config = examples(
        {
            "order_no": "A1",
            "account_no": "acct-1",
            "seller_id": "xiaomi-self",
            "seller_kind": "self",
            "purchase_type": "standard",
            "shipping_region": "CN-SH",
            "status": "paid",
            "contract_formed": True,
            "total_due_fen": 399900,
            "paid_fen": 399900,
            "refunded_fen": 0,
            "pending_refund_fen": 0,
            "paid_by_method": {"alipay": 399900},
            "refunded_by_method": {},
            "gift_charged_fen": 0,
            "closed_ground": None,
            "closed_clause": None,
            "closed_at": None,
            "shortage_open": False,
            "price_error_open": False,
            "termination_requested": False,
            "delivery_status": "not_shipped",
            "carrier": None,
            "shipped_at": None,
            "estimated_delivery": None,
            "promised_delivery": None,
            "delivery_attempts": 0,
            "failed_attempts": 0,
            "unanswered_calls": 0,
            "refusals": 0,
            "delivered_at": None,
            "signer_relation": None,
            "return_status": None,
            "return_kind": None,
            "return_deadline": None,
            "flags_total": 0,
            "flags_open": 0,
            "flags_confirmed": 0,
            "completed_at": None,
            "retain_until": None,
            "submitted_at": AT,
            "payment_deadline": "2026-03-02T01:30:00Z",
            "last_position": 8,
            "last_event_at": AT,
        }
    )


class ContactView(BaseModel):
    """An order's contact details in plaintext (``[erased]`` once its subject is erased)."""

    order_no: str
    contact: dict[str, str]
    recorded: bool = Field(description="whether this read was recorded in the log")

    model_config = examples(
        {
            "order_no": "A1",
            "contact": {
                "recipient_name": "王小明",
                "phone": "13912345678",
                "address": "上海市浦东新区世纪大道100号",
                "ip": "101.226.33.7",
            },
            "recorded": True,
        }
    )


class EntitlementView(BaseModel):
    """An F-code or coupon (3.1.11) and where it stands."""

    code: str
    kind: str
    campaign: str
    sku: str | None
    value_fen: int | None
    holder_account: str | None
    valid_until: datetime | None
    issued_at: datetime
    status: str
    consumed_order: str | None
    consumed_account: str | None
    consumed_at: datetime | None
    times_consumed: int
    forfeited_order: str | None
    forfeited_ground: str | None
    forfeited_at: datetime | None
    restored_rule: str | None
    restored_order: str | None
    restored_at: datetime | None
    last_position: int

    model_config = examples(
        {
            "code": "CPN-SPRING-1",
            "kind": "coupon",
            "campaign": "spring",
            "sku": None,
            "value_fen": 2000,
            "holder_account": "acct-1",
            "valid_until": "2026-04-01T00:00:00Z",
            "issued_at": AT,
            "status": "consumed",
            "consumed_order": "A1",
            "consumed_account": "acct-1",
            "consumed_at": AT,
            "times_consumed": 1,
            "forfeited_order": None,
            "forfeited_ground": None,
            "forfeited_at": None,
            "restored_rule": None,
            "restored_order": None,
            "restored_at": None,
            "last_position": 12,
        }
    )


class EntitlementStep(BaseModel):
    """One step of a code's history: issued, consumed, forfeited, restored."""

    position: int
    code: str
    campaign: str
    step: str
    order_no: str | None
    account_no: str | None
    ground: str | None
    rule: str | None
    at: datetime

    model_config = examples(
        {
            "position": 12,
            "code": "CPN-SPRING-1",
            "campaign": "spring",
            "step": "consumed",
            "order_no": "A1",
            "account_no": "acct-1",
            "ground": None,
            "rule": None,
            "at": AT,
        }
    )


class CampaignCounts(BaseModel):
    """How many codes of a campaign stand where, by ``kind/status``."""

    campaign: str
    counts: dict[str, int]

    model_config = examples({"campaign": "spring", "counts": {"coupon/consumed": 12}})


class GroupUsage(BaseModel):
    """What an account's linked group (or the account alone, for a per-account rule) bought
    of a SKU in the purchase-limit period containing ``at`` (3.1.5)."""

    sku: str
    account_no: str
    at: datetime
    rule_version: int
    limit_qty: int
    per_account: bool
    period_start: datetime
    period_end: datetime
    quantity: int
    remaining: int

    model_config = examples(
        {
            "sku": "PHONE-14",
            "account_no": "acct-1",
            "at": AT,
            "rule_version": 1,
            "limit_qty": 5,
            "per_account": False,
            "period_start": "2026-03-01T00:00:00Z",
            "period_end": "2026-03-31T00:00:00Z",
            "quantity": 3,
            "remaining": 2,
        }
    )


class RefusalCount(BaseModel):
    """Non-quality refusals of delivery by an account in (at - window_days, at] (6.1(5))."""

    account_no: str
    at: datetime
    window_days: int
    refusals: int

    model_config = examples({"account_no": "acct-1", "at": AT, "window_days": 90, "refusals": 2})


class FlagView(BaseModel):
    """An abnormal-order flag (3.1.6) and its human review (PIPL 24)."""

    flag_id: str
    order_no: str
    account_no: str
    criterion: int
    criterion_text: str
    evidence_orders: list[str]
    evidence_signals: list[str]
    evidence: dict[str, Any]
    automated: bool
    raised_at: datetime
    raised_position: int
    outcome: str | None
    reviewer_id: str | None
    review_note: str | None
    reviewed_at: datetime | None
    last_position: int

    model_config = examples(
        {
            "flag_id": "F-1",
            "order_no": "A1",
            "account_no": "acct-1",
            "criterion": 4,
            "criterion_text": "repeated refusals of delivery",
            "evidence_orders": ["A1"],
            "evidence_signals": ["refusals"],
            "evidence": {"orders": ["A1"], "signals": ["refusals"]},
            "automated": True,
            "raised_at": AT,
            "raised_position": 20,
            "outcome": None,
            "reviewer_id": None,
            "review_note": None,
            "reviewed_at": None,
            "last_position": 20,
        }
    )


class PaymentView(BaseModel):
    """An order's money by payment method (3.1.4): paid, refunded, under way, outstanding."""

    order_no: str
    method: str
    paid_fen: int
    refunded_fen: int
    pending_fen: int
    receipts: int
    refunds: int
    last_position: int

    @computed_field  # type: ignore[prop-decorator]  # pydantic's documented use on a property
    @property
    def outstanding_fen(self) -> int:
        """Paid less refunded."""
        return self.paid_fen - self.refunded_fen

    model_config = examples(
        {
            "order_no": "A1",
            "method": "alipay",
            "paid_fen": 399900,
            "refunded_fen": 0,
            "pending_fen": 0,
            "outstanding_fen": 399900,
            "receipts": 1,
            "refunds": 0,
            "last_position": 8,
        }
    )


class RefundView(BaseModel):
    """A refund of an order (its destination account stays sealed: absent here)."""

    refund_id: str
    order_no: str
    method: str
    amount_fen: int
    consent_id: str | None
    due_by: datetime | None
    status: str
    initiated_at: datetime
    completed_at: datetime | None
    last_position: int

    model_config = examples(
        {
            "refund_id": "A1-R1",
            "order_no": "A1",
            "method": "alipay",
            "amount_fen": 399900,
            "consent_id": None,
            "due_by": "2026-03-09T01:00:00Z",
            "status": "initiated",
            "initiated_at": AT,
            "completed_at": None,
            "last_position": 15,
        }
    )


class RetentionView(BaseModel):
    """An order's retention: when it completed and until when it is kept (ECL 31). An
    after-sales case opened after completion reopens it (``reopened_case``, ``reopened_at``):
    ``completed_at`` is then null and ``retain_until`` the least it is kept until the case
    ends and the transaction completes again."""

    order_no: str
    subject_id: str
    submitted_at: datetime
    closed_at: datetime | None
    delivered_at: datetime | None
    completed_at: datetime | None
    retain_until: datetime | None
    reopened_at: datetime | None
    reopened_case: str | None
    deidentified_at: datetime | None = Field(
        default=None, description="when its direct identifiers were removed (PIPL 47(1))"
    )
    erased_at: datetime | None = Field(
        default=None, description="when its subject's personal data was erased (PIPL 47)"
    )
    last_position: int

    model_config = examples(
        {
            "order_no": "A1",
            "subject_id": "acct-1",
            "submitted_at": AT,
            "closed_at": None,
            "delivered_at": "2026-03-05T01:00:00Z",
            "completed_at": "2026-03-12T16:00:00Z",
            "retain_until": "2029-03-12T16:00:00Z",
            "reopened_at": None,
            "reopened_case": None,
            "deidentified_at": None,
            "erased_at": None,
            "last_position": 30,
        }
    )


class HoldView(BaseModel):
    """A legal hold that is on (PIPL 47): its file's reference, reason, when, by whom."""

    reference: str
    reason: str
    placed_at: datetime
    actor: dict[str, str | None]


class SubjectRetentionView(BaseModel):
    """A data subject's lifecycle now: the legal holds on it (no de-identification or
    erasure while any is), its restriction of processing (PIPL 47 para 2: kept, not
    processed, until ``restricted_until``: its contact is not revealed without a legal
    basis), when the last of its orders' recorded retentions ends (ECL 31), and its erasure
    (PIPL 47): ``requested``, ``refused`` (a hold), ``deferred`` until
    ``erasure_deferred_until``, or ``erased`` at ``erased_at``; null if never asked."""

    subject_id: str
    holds: list[HoldView]
    restricted_basis: str | None
    restricted_since: datetime | None
    restricted_until: datetime | None
    retained_until: datetime | None
    erasure: str | None = None
    erasure_deferred_until: datetime | None = None
    erased_at: datetime | None = None
    last_position: int

    model_config = examples(
        {
            "subject_id": "acct-1",
            "holds": [
                {
                    "reference": "CASE-2026-0042",
                    "reason": "dispute",
                    "placed_at": "2026-04-01T02:00:00Z",
                    "actor": {"key_id": "0a1b2c3d4e5f", "role": "admin"},
                }
            ],
            "restricted_basis": "account_cancelled",
            "restricted_since": "2026-04-02T02:00:00Z",
            "restricted_until": "2029-03-12T16:00:00Z",
            "retained_until": "2029-03-12T16:00:00Z",
            "erasure": "deferred",
            "erasure_deferred_until": "2029-03-12T16:00:00Z",
            "erased_at": None,
            "last_position": 41,
        }
    )


class RetentionStep(BaseModel):
    """One step of a data subject's personal data: ``scheduled`` and ``extended`` (ECL 31),
    ``hold_placed`` and ``hold_released``, ``restricted``, ``accessed``,
    ``erasure_requested``, ``erasure_refused``, ``erasure_deferred``, ``erased``,
    ``deidentified``; with its time, who caused it (``actor``: API key id and role; ``local``
    for the CLI and the retention run), its legal ``basis`` (the law, the hold's reason, the
    restriction's basis, the refusal's code, a read's cited basis) and ``reference`` (the
    hold's file, the after-sales case, the erasure request's file, a read's request)."""

    position: int
    subject_id: str
    step: str
    order_no: str | None
    topic: str
    at: datetime
    actor: dict[str, str | None] | None
    basis: str | None
    reference: str | None
    detail: dict[str, Any]

    model_config = examples(
        {
            "position": 31,
            "subject_id": "acct-1",
            "step": "scheduled",
            "order_no": "A1",
            "topic": "mall-ledger/data-subject/RetentionScheduled",
            "at": "2026-03-13T01:00:00Z",
            "actor": {"key_id": "3f2a9c1b7d4e", "role": "service"},
            "basis": "ECL 31",
            "reference": None,
            "detail": {
                "cause": "completion",
                "completed_at": "2026-03-12T16:00:00+00:00",
                "retain_until": "2029-03-12T16:00:00+00:00",
            },
        },
        {
            "position": 35,
            "subject_id": "acct-1",
            "step": "hold_placed",
            "order_no": None,
            "topic": "mall-ledger/data-subject/LegalHoldPlaced",
            "at": "2026-04-01T02:00:00Z",
            "actor": {"key_id": "0a1b2c3d4e5f", "role": "admin"},
            "basis": "dispute",
            "reference": "CASE-2026-0042",
            "detail": {"reason": "dispute"},
        },
    )


# -- envelopes ------------------------------------------------------------------------------
class Item(BaseModel, Generic[T]):
    """One resource, and the position it was read at."""

    position: int = Field(description=POSITION_DOC, examples=[8])
    item: T


class Page(BaseModel, Generic[T]):
    """One page of a list, the position it was read at and the next page's token."""

    position: int = Field(description=POSITION_DOC, examples=[8])
    items: list[T]
    next_page_token: str | None = Field(description=NEXT_DOC, examples=[None])
