"""Commands as validated data: what backends, the importer and the HTTP API send.

Parsing refuses bad input with ``InvalidCommand`` naming the field and the rule it breaks;
the pydantic message is used, never the input value, so personal data stays out of errors.
"""

from __future__ import annotations

import re
from datetime import datetime
from ipaddress import ip_address
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
)

from ledger.domain.errors import InvalidCommand
from ledger.domain.order.closure import SellerGround

Key = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:/@+-]+$")]
# Account numbers name a data subject's key, so they may not contain ':' (token separator).
AccountNo = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._/@+-]+$")]
Fen = Annotated[int, Field(ge=0, le=10**12)]
PositiveFen = Annotated[int, Field(gt=0, le=10**12)]
Text = Annotated[str, Field(max_length=500)]
Region = Annotated[str, Field(pattern=r"^[A-Z]{2}-[A-Z0-9]{1,3}$")]


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("must carry a timezone offset")
    return moment


def _ip(value: str) -> str:
    try:
        return str(ip_address(value))
    except ValueError:
        raise ValueError("must be an IPv4 or IPv6 address") from None


def _iso_moment(value: Any) -> Any:
    """Only ISO-8601 text or a datetime: pydantic would read digits as Unix seconds."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise ValueError("must be an ISO-8601 date-time with an offset")
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("must be an ISO-8601 date-time with an offset") from None


Moment = Annotated[datetime, BeforeValidator(_iso_moment), AfterValidator(_aware)]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Command(Model):
    type: str
    command_id: Key


class OrderCommand(Command):
    order_no: Key


class Line(Model):
    sku: Key
    quantity: Annotated[int, Field(gt=0, le=10_000)]
    unit_price_fen: Fen
    discount_fen: Fen = 0
    no_reason_exclusion: (
        Literal["custom_made", "perishable", "unsealed_media", "confirmed_at_purchase"] | None
    ) = None


class Gift(Model):
    gift_id: Key
    sku: Key
    price_fen: Fen


class Contact(Model):
    """Personal data: sealed under the account's key before it reaches an event."""

    recipient_name: Annotated[str, Field(min_length=1, max_length=64)]
    phone: Annotated[str, Field(pattern=r"^\+?[0-9][0-9 -]{4,19}$")]
    address: Annotated[str, Field(min_length=4, max_length=256)]
    ip: Annotated[str, AfterValidator(_ip)]


class SubmitOrder(OrderCommand):
    type: Literal["submit_order"]
    account_no: AccountNo
    lines: Annotated[list[Line], Field(min_length=1, max_length=100)]
    gifts: Annotated[list[Gift], Field(max_length=20)] = []
    promotion_nos: Annotated[list[Key], Field(max_length=10)] = []
    f_codes: Annotated[list[Key], Field(max_length=10)] = []
    coupons: Annotated[list[Key], Field(max_length=10)] = []
    purchase_type: Literal["consumer", "enterprise_group"] = "consumer"
    seller_id: Key
    seller_kind: Literal["self_operated", "third_party"] = "self_operated"
    shipping_region: Region
    contact: Contact


class ReceivePayment(OrderCommand):
    type: Literal["receive_payment"]
    payment_id: Key
    method: Key
    payer_account: Annotated[str, Field(min_length=1, max_length=64)]
    amount_fen: PositiveFen


class CancelOrder(OrderCommand):
    type: Literal["cancel_order"]
    reason: Text = ""


class LapsePaymentDeadline(OrderCommand):
    type: Literal["lapse_payment_deadline"]


class DeclareStockShortage(OrderCommand):
    type: Literal["declare_stock_shortage"]
    skus: Annotated[list[Key], Field(min_length=1, max_length=100)]


class ResolveStockShortage(OrderCommand):
    type: Literal["resolve_stock_shortage"]
    resolution: Literal["exchange", "refund"]
    exchange_sku: Key | None = None


class RequestMutualTermination(OrderCommand):
    type: Literal["request_mutual_termination"]
    requested_by: Literal["user", "seller"]
    reason: Text = ""


class AcceptMutualTermination(OrderCommand):
    type: Literal["accept_mutual_termination"]


class DeclineMutualTermination(OrderCommand):
    type: Literal["decline_mutual_termination"]
    reason: Text = ""


class Evidence(Model):
    orders: Annotated[list[Key], Field(max_length=1000)] = []
    signals: Annotated[list[Key], Field(max_length=100)] = []
    flag_id: Key | None = None


class CloseOrder(OrderCommand):
    type: Literal["close_order"]
    # price_error is taken here so that the rule refuses it by its clause (3.1.7: the user
    # decides), rather than as malformed input.
    ground: Literal[SellerGround, "price_error"]
    evidence: Evidence = Evidence()


class NotifyUser(OrderCommand):
    type: Literal["notify_user"]
    subject: Text
    clause: Annotated[str, Field(max_length=32)]


class RecordRefundConsent(OrderCommand):
    type: Literal["record_refund_consent"]
    consent_id: Key
    method: Key
    destination_account: Annotated[str, Field(min_length=1, max_length=64)]


class InitiateRefund(OrderCommand):
    type: Literal["initiate_refund"]
    method: Key
    amount_fen: PositiveFen
    # Why the money goes back; what is due follows (ledger/domain/order/refunds.py).
    purpose: Literal["price_adjustment", "shortage", "termination", "payment_returned"]
    consent_id: Key | None = None


class CompleteRefund(OrderCommand):
    type: Literal["complete_refund"]
    refund_id: Key


class DetectPriceError(OrderCommand):
    type: Literal["detect_price_error"]
    sku: Key
    displayed_price_fen: Fen
    correct_price_fen: Fen
    cause: Text


class ResolvePriceError(OrderCommand):
    type: Literal["resolve_price_error"]
    resolution: Literal["honoured", "adjusted", "terminated"]
    user_consented: bool = False
    adjusted_total_fen: PositiveFen | None = None


class ShipOrder(OrderCommand):
    type: Literal["ship_order"]
    carrier: Key
    tracking_no: Key
    estimated_delivery: Moment | None = None
    promised_delivery: Moment | None = None


class RecordDeliveryFailure(OrderCommand):
    type: Literal["record_delivery_failure"]
    reason: Literal["bad_address", "no_answer", "nobody_to_sign", "force_majeure"]


class RecordContactCall(OrderCommand):
    type: Literal["record_contact_call"]
    answered: bool


class RefuseDelivery(OrderCommand):
    type: Literal["refuse_delivery"]
    quality_reason: bool
    reason: Text = ""


class DeliverOrder(OrderCommand):
    type: Literal["deliver_order"]
    signer_relation: Key


class RequestReturn(OrderCommand):
    type: Literal["request_return"]
    return_id: Key
    kind: Literal["no_reason", "quality"]
    service_region: Region
    visible_damage_claimed: bool = False


class ReceiveReturn(OrderCommand):
    type: Literal["receive_return"]
    return_id: Key


class InspectReturn(OrderCommand):
    type: Literal["inspect_return"]
    return_id: Key
    gifts_returned: Annotated[list[Key], Field(max_length=20)] = []


class RaiseFlag(OrderCommand):
    type: Literal["raise_flag"]
    flag_id: Key
    criterion: Annotated[int, Field(ge=1, le=5)]
    evidence: Evidence
    automated: bool


class ReviewFlag(OrderCommand):
    type: Literal["review_flag"]
    flag_id: Key
    reviewer_id: Key
    outcome: Literal["confirmed", "dismissed"]
    note: Text = ""


class CompleteTransaction(OrderCommand):
    type: Literal["complete_transaction"]


class IssueEntitlement(Command):
    type: Literal["issue_entitlement"]
    code: Key
    kind: Literal["f_code", "coupon"]
    campaign: Key
    sku: Key | None = None
    value_fen: Fen = 0
    holder_account: AccountNo | None = None
    valid_until: Moment | None = None


class RestoreEntitlement(Command):
    type: Literal["restore_entitlement"]
    code: Key
    rule: Text


RestrictionGround = Literal[
    "6.1(1)", "6.1(2)", "6.1(3)", "6.1(4)", "6.1(5)", "6.1(6)", "6.1(7)", "6.1(8)"
]


class RestrictAccount(Command):
    type: Literal["restrict_account"]
    account_no: AccountNo
    ground: RestrictionGround
    evidence: Evidence = Evidence()


class TerminateAccount(Command):
    type: Literal["terminate_account"]
    account_no: AccountNo
    ground: RestrictionGround


class DecideOpenOrder(Command):
    type: Literal["decide_open_order"]
    account_no: AccountNo
    order_no: Key
    disposition: Literal["close", "continue"]


class DefinePromotion(Command):
    type: Literal["define_promotion"]
    promotion_no: Key
    valid_from: Moment
    valid_until: Moment
    description: Text = ""


class DefinePurchaseLimit(Command):
    type: Literal["define_purchase_limit"]
    sku: Key
    limit_qty: Annotated[int, Field(gt=0, le=100_000)]
    period_days: Annotated[int, Field(gt=0, le=3660)]
    per_account: bool = False
    valid_from: Moment


AnyCommand = Annotated[
    SubmitOrder
    | ReceivePayment
    | CancelOrder
    | LapsePaymentDeadline
    | DeclareStockShortage
    | ResolveStockShortage
    | RequestMutualTermination
    | AcceptMutualTermination
    | DeclineMutualTermination
    | CloseOrder
    | NotifyUser
    | RecordRefundConsent
    | InitiateRefund
    | CompleteRefund
    | DetectPriceError
    | ResolvePriceError
    | ShipOrder
    | RecordDeliveryFailure
    | RecordContactCall
    | RefuseDelivery
    | DeliverOrder
    | RequestReturn
    | ReceiveReturn
    | InspectReturn
    | RaiseFlag
    | ReviewFlag
    | CompleteTransaction
    | IssueEntitlement
    | RestoreEntitlement
    | RestrictAccount
    | TerminateAccount
    | DecideOpenOrder
    | DefinePromotion
    | DefinePurchaseLimit,
    Field(discriminator="type"),
]
_ADAPTER: TypeAdapter[Any] = TypeAdapter(AnyCommand)
COMMAND_TYPES = tuple(
    sorted(m.model_fields["type"].annotation.__args__[0] for m in AnyCommand.__origin__.__args__)  # type: ignore[attr-defined]
)


def parse_command(data: Any) -> Command:
    """A command from JSON-shaped data, or InvalidCommand naming the first bad field."""
    if isinstance(data, Command):
        return data
    try:
        command: Command = _ADAPTER.validate_python(data)
    except ValidationError as exc:
        first = exc.errors(include_input=False, include_url=False)[0]
        raise InvalidCommand(*_field_and_rule(first)) from None
    return command


_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


def _field_and_rule(error: Any) -> tuple[str, str]:
    """Name the field and the rule without echoing input: some pydantic messages quote
    the value (an unknown tag) and an unknown key may itself be someone's data."""
    location = [str(part) for part in error["loc"]]
    if error["type"] == "union_tag_invalid":
        return "type", f"unknown command type; expected one of {', '.join(COMMAND_TYPES)}"
    if error["type"] == "extra_forbidden" and not _FIELD_NAME.fullmatch(location[-1]):
        return ".".join(location[:-1]), "has a field this command does not take"
    return ".".join(location) or "type", str(error["msg"])
