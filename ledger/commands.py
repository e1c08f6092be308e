"""Commands as validated data: what backends, the importer and the HTTP API send.

Parsing refuses bad input with ``InvalidCommand`` naming the field and the rule it breaks,
never the input value nor an unknown key, so personal data stays out of errors. Every field
takes its JSON type strictly (no number as text, no boolean as a number) through the shared
aliases below: every text field is ``Chars``-checked, every integer field is an ``IntRange``.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from ipaddress import ip_address
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    Strict,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

from ledger.clock import EARLIEST_COMMAND_TIME
from ledger.domain.data_subject import HoldReason
from ledger.domain.entitlement import EntitlementKind
from ledger.domain.errors import InvalidCommand
from ledger.domain.limits import LINK_WINDOW_DAYS
from ledger.domain.order.delivery import SIGNER_RELATIONS
from ledger.domain.order.vocabulary import (
    CommandedPurpose,
    DeliveryFailure,
    FlagOutcome,
    ReturnKind,
    SellerGround,
)

# -- text ------------------------------------------------------------------------------------
# Every text field refuses what no one types and what breaks the stores and files downstream
# (a NUL stops PostgreSQL's COPY; C1 controls and line separators split log lines): C0 and C1
# control characters, line and paragraph separators, lone surrogates and noncharacters. A field
# documented as multi-line takes line feeds and tabs, nothing else of these.
MULTI_LINE = "free text; may span lines: takes line feeds and tabs, no other control characters"


def _is_noncharacter(code: int) -> bool:
    return 0xFDD0 <= code <= 0xFDEF or code & 0xFFFE == 0xFFFE


def _refused_character(ch: str) -> bool:
    return unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp") or _is_noncharacter(ord(ch))


@dataclass(frozen=True)
class Chars:
    """The characters a text field takes (issue 8, case 3): a multi-line field may hold line
    feeds and tabs; no field holds other control characters, line or paragraph separators,
    lone surrogates or noncharacters."""

    multiline: bool = False

    def check(self, value: str) -> str:
        allowed = "\n\t" if self.multiline else ""
        if any(_refused_character(ch) and ch not in allowed for ch in value):
            raise PydanticCustomError("text_characters", self.rule())
        return value

    def rule(self) -> str:
        refused = "control characters, lone surrogates or noncharacters"
        if self.multiline:
            return f"must hold no {refused} (line feeds and tabs are allowed)"
        return f"must be one line of text: no line breaks, {refused}"

    def pattern(self) -> str:
        """The rule as a JSON Schema pattern (ECMA-262, also Python's ``re``): every
        character refused but the noncharacters beyond the BMP (U+1FFFE, U+1FFFF, …, which
        the pattern leaves to the field's description)."""
        controls = r"\x00-\x08\x0b-\x1f" if self.multiline else r"\x00-\x1f"
        return rf"^[^{controls}\x7f-\x9f\u2028\u2029\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff]*$"

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(self.check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        """The field's schema says the rule: a field with a pattern of its own (identifiers,
        regions, phones) takes only printable ASCII already; any other gets ``pattern()``, and
        the rule in words unless it is described."""
        json_schema = handler(schema)
        if "pattern" not in json_schema:
            json_schema["pattern"] = self.pattern()
            json_schema.setdefault("description", self.rule())
        return json_schema


# A text field is a JSON string (``Strict``) within its length and pattern (``Field``), then
# character-checked (``Chars``). ``Field`` comes before ``Chars`` so that pydantic checks the
# constraints on the string itself and writes them into the JSON Schema: after a validator
# function it still checks them, but leaves the pattern out of the schema.
KEY_PATTERN = r"^[A-Za-z0-9._:/@+-]+$"  # also the HTTP API's ids in paths and filters
KEY_MAX_CHARS = 128
Key = Annotated[
    str, Strict(), Field(min_length=1, max_length=KEY_MAX_CHARS, pattern=KEY_PATTERN), Chars()
]
# Account numbers name a data subject's key, so they may not contain ':' (token separator).
ACCOUNT_PATTERN = r"^[A-Za-z0-9._/@+-]+$"


@dataclass(frozen=True)
class Personal:
    """Marks a command field as personal data (issue 11, item 5; PIPL 4, 28): what a person
    typed or what identifies one. The one place that decides which fields are sealed, blanked
    from the command record's unkeyed digest and keyed under the subject's key instead
    (``ledger/payload_digest.py``). ``kind`` is the key it belongs under: ``d`` for direct
    identifiers (names, phones, addresses), ``m`` (main) for the rest."""

    kind: Literal["m", "d"] = "m"


PERSONAL = Personal("m")
DIRECT_IDENTIFIER = Personal("d")

# An account number is a business key that stays after its holder's erasure (the orders keep
# it), so it must not be personal data itself (issue 11, item 7; PIPL 4): a mainland mobile
# number or an email address in that place is refused. The bound: a number that is neither
# (an opaque id the mall chose) is taken as it is; the ledger cannot tell one made of a name.
ACCOUNT_RULE = "an account number is the mall's opaque identifier, never a phone number or email"
_PHONE_LIKE_RE = re.compile(r"[0-9+\-. /]+")
_MOBILE_RE = re.compile(r"(?:0086|86)?1[3-9][0-9]{9}")
_EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")


def not_personal_account(value: str) -> str:
    """``value`` unless it is a mainland mobile number (with or without ``+86``/``0086`` and
    separators) or an email address; ValueError(ACCOUNT_RULE) then."""
    if _PHONE_LIKE_RE.fullmatch(value) and _MOBILE_RE.fullmatch(re.sub(r"[^0-9]", "", value)):
        raise ValueError(ACCOUNT_RULE)
    if _EMAIL_RE.fullmatch(value):
        raise ValueError(ACCOUNT_RULE)
    return value


AccountNo = Annotated[
    str,
    Strict(),
    Field(min_length=1, max_length=KEY_MAX_CHARS, pattern=ACCOUNT_PATTERN),
    Chars(),
    AfterValidator(not_personal_account),
]
# Free text is typed by people and may hold anything personal: every Text and Note is Personal.
Text = Annotated[str, Strict(), Field(max_length=500), Chars(), PERSONAL]
Note = Annotated[
    str, Strict(), Field(max_length=500, description=MULTI_LINE), Chars(multiline=True), PERSONAL
]
Region = Annotated[str, Strict(), Field(pattern=r"^[A-Z]{2}-[A-Z0-9]{1,3}$"), Chars()]
PersonName = Annotated[
    str, Strict(), Field(min_length=1, max_length=64), Chars(), DIRECT_IDENTIFIER
]
Phone = Annotated[
    str, Strict(), Field(pattern=r"^\+?[0-9][0-9 -]{4,19}$"), Chars(), DIRECT_IDENTIFIER
]
Address = Annotated[str, Strict(), Field(min_length=4, max_length=256), Chars(), DIRECT_IDENTIFIER]
# A payment or refund account at the provider (an alipay login, a card number): personal data.
ProviderAccount = Annotated[str, Strict(), Field(min_length=1, max_length=64), Chars(), PERSONAL]
ClauseRef = Annotated[str, Strict(), Field(max_length=32), Chars()]


# -- numbers and flags ---------------------------------------------------------------------------
@dataclass(frozen=True)
class IntRange:
    """A JSON integer from ``low`` to ``high``: never a boolean, a decimal or a string of digits.

    One message for every way to miss (wrong type or out of range), naming the range, because
    a JSON parser reads an integer beyond 64 bits as a decimal: "not an integer" would mislead."""

    low: int
    high: int

    def check(self, value: Any) -> Any:
        if type(value) is not int or not self.low <= value <= self.high:
            raise PydanticCustomError(
                "integer_range",
                "must be a JSON integer from {low} to {high}",
                {"low": self.low, "high": self.high},
            )
        return value

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        inner = core_schema.int_schema(ge=self.low, le=self.high, strict=True)
        return core_schema.no_info_before_validator_function(self.check, inner)


Fen = Annotated[int, IntRange(0, 10**12)]
PositiveFen = Annotated[int, IntRange(1, 10**12)]
Quantity = Annotated[int, IntRange(1, 10_000)]
Criterion = Annotated[int, IntRange(1, 5)]
LimitQty = Annotated[int, IntRange(1, 100_000)]
PeriodDays = Annotated[int, IntRange(1, LINK_WINDOW_DAYS)]
# true or false only: a string "true" or a 1 is refused.
Flag = Annotated[bool, Strict()]


# Dates a command may name (delivery estimates, validity windows): from the earliest time a
# command may carry to well past any coupon or promotion; year 1 or 9999 would overflow the
# day arithmetic the rules do (return windows, limit periods) and mean nothing.
LATEST_MOMENT = datetime(2100, 1, 1, tzinfo=UTC)


def _aware(moment: datetime) -> datetime:
    """An aware time within [EARLIEST_COMMAND_TIME, LATEST_MOMENT); compared before any
    conversion, which overflows at the calendar's edges (year 1 at +08:00)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("must carry a timezone offset")
    if not EARLIEST_COMMAND_TIME <= moment < LATEST_MOMENT:
        raise ValueError(
            f"must lie from {EARLIEST_COMMAND_TIME.date().isoformat()} "
            f"to before {LATEST_MOMENT.date().isoformat()} (UTC)"
        )
    return moment


def _ip(value: str) -> str:
    try:
        return str(ip_address(value))
    except ValueError:
        raise ValueError("must be an IPv4 or IPv6 address") from None


# RFC 3339's date-time (ISO-8601's profile for the internet): nothing before, between or after
# its parts. ``datetime.fromisoformat`` alone takes more: a space before the offset, a NUL
# after it, other separators; a time is text like any other field and takes no stray character.
_RFC3339_DATE_TIME = r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?"
_RFC3339_OFFSET = r"([Zz]|[+-][0-9]{2}:[0-9]{2})"
# The offset is optional here so that a time without one gets the rule that says so.
_RFC3339 = re.compile(f"{_RFC3339_DATE_TIME}{_RFC3339_OFFSET}?", re.ASCII)
ISO_MOMENT_RULE = "must be an ISO-8601 date-time with an offset (RFC 3339)"


def utc_text(moment: datetime) -> str:
    """``2000-01-01T00:00:00Z``: an aware time in UTC as RFC 3339 text."""
    return moment.isoformat().replace("+00:00", "Z")


def moment_json_schema(description: str, latest: datetime | None = None) -> dict[str, Any]:
    """The JSON Schema of a date-time: RFC 3339 text with an offset (``format`` and the
    ``pattern`` ``parse_moment`` takes), from EARLIEST_COMMAND_TIME (``formatMinimum``) to
    before ``latest`` (``formatExclusiveMaximum``), both UTC. The bounds use ajv-formats'
    keywords: a validator that lacks them reads them as annotations, and ``description``
    says them in words."""
    schema: dict[str, Any] = {
        "type": "string",
        "format": "date-time",
        "pattern": f"^{_RFC3339_DATE_TIME}{_RFC3339_OFFSET}$",
        "formatMinimum": utc_text(EARLIEST_COMMAND_TIME),
        "description": description,
    }
    if latest is not None:
        schema["formatExclusiveMaximum"] = utc_text(latest)
    return schema


def parse_moment(value: Any) -> datetime:
    """An aware datetime from RFC 3339 text (``2026-03-01T10:00:00+08:00``); ValueError with
    ``ISO_MOMENT_RULE`` for anything else (digits would be read as Unix seconds by pydantic)."""
    if not isinstance(value, str) or _RFC3339.fullmatch(value) is None:
        raise ValueError(ISO_MOMENT_RULE)
    try:
        moment = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        raise ValueError(ISO_MOMENT_RULE) from None
    if moment.tzinfo is None:
        raise ValueError("must carry a timezone offset")
    return moment


def _iso_moment(value: Any) -> Any:
    return value if isinstance(value, datetime) else parse_moment(value)


MOMENT_DESCRIPTION = (
    f"an RFC 3339 date-time with an offset, from {utc_text(EARLIEST_COMMAND_TIME)} to before "
    f"{utc_text(LATEST_MOMENT)}"
)
Moment = Annotated[
    datetime,
    BeforeValidator(_iso_moment),
    AfterValidator(_aware),
    WithJsonSchema(moment_json_schema(MOMENT_DESCRIPTION, LATEST_MOMENT)),
]
IpText = Annotated[
    str,
    Strict(),
    Field(description="an IPv4 or IPv6 address"),
    Chars(),
    AfterValidator(_ip),
    PERSONAL,
]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class Command(Model):
    type: str
    command_id: Key


class OrderCommand(Command):
    order_no: Key


class Line(Model):
    sku: Key
    quantity: Quantity
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

    recipient_name: PersonName
    phone: Phone
    address: Address
    ip: IpText


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
    payer_account: ProviderAccount
    amount_fen: PositiveFen


class CancelOrder(OrderCommand):
    type: Literal["cancel_order"]
    reason: Note = ""


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
    reason: Note = ""


class AcceptMutualTermination(OrderCommand):
    type: Literal["accept_mutual_termination"]


class DeclineMutualTermination(OrderCommand):
    type: Literal["decline_mutual_termination"]
    reason: Note = ""


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
    clause: ClauseRef


class RecordRefundConsent(OrderCommand):
    type: Literal["record_refund_consent"]
    consent_id: Key
    method: Key
    destination_account: ProviderAccount


class InitiateRefund(OrderCommand):
    type: Literal["initiate_refund"]
    method: Key
    amount_fen: PositiveFen
    # Why the money goes back; what is due follows (ledger/domain/order/refunds.py).
    purpose: CommandedPurpose
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
    user_consented: Flag = False
    adjusted_total_fen: PositiveFen | None = None


class ShipOrder(OrderCommand):
    type: Literal["ship_order"]
    carrier: Key
    tracking_no: Key
    estimated_delivery: Moment | None = None
    promised_delivery: Moment | None = None


class RecordDeliveryFailure(OrderCommand):
    type: Literal["record_delivery_failure"]
    reason: DeliveryFailure


class RecordContactCall(OrderCommand):
    type: Literal["record_contact_call"]
    answered: Flag


class RefuseDelivery(OrderCommand):
    type: Literal["refuse_delivery"]
    quality_reason: Flag
    reason: Note = ""


class DeliverOrder(OrderCommand):
    type: Literal["deliver_order"]
    # Any key is a valid command; who may sign is a rule of 3.2.3, refused by the domain.
    signer_relation: Annotated[
        Key,
        Field(
            description=f"who signed: {', '.join(SIGNER_RELATIONS)} (3.2.3; anyone else is "
            "refused SIGNER_NOT_AUTHORISED)"
        ),
    ]


class RequestReturn(OrderCommand):
    type: Literal["request_return"]
    return_id: Key
    kind: ReturnKind
    service_region: Region
    visible_damage_claimed: Flag = False


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
    criterion: Criterion
    evidence: Evidence
    automated: Flag


class ReviewFlag(OrderCommand):
    type: Literal["review_flag"]
    flag_id: Key
    reviewer_id: Key
    outcome: FlagOutcome
    note: Note = ""


class CompleteTransaction(OrderCommand):
    type: Literal["complete_transaction"]


class IssueEntitlement(Command):
    type: Literal["issue_entitlement"]
    code: Key
    kind: EntitlementKind
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
    description: Note = ""


class DefinePurchaseLimit(Command):
    type: Literal["define_purchase_limit"]
    sku: Key
    limit_qty: LimitQty
    period_days: PeriodDays
    per_account: Flag = False
    valid_from: Moment


class PlaceLegalHold(Command):
    """Put a legal hold on a data subject's personal data, for a dispute or an
    investigation, under its reference (the case's file id): neither de-identification nor
    erasure touches the subject's data until the hold is released (PIPL 47)."""

    type: Literal["place_legal_hold"]
    subject_id: Annotated[AccountNo, Field(description="the data subject (its account number)")]
    reference: Annotated[Key, Field(description="the dispute's or investigation's file id")]
    reason: HoldReason


class ReleaseLegalHold(Command):
    """Release the legal hold a data subject is under by that reference."""

    type: Literal["release_legal_hold"]
    subject_id: Annotated[AccountNo, Field(description="the data subject (its account number)")]
    reference: Annotated[Key, Field(description="the reference the hold was placed under")]


class RequestErasure(Command):
    """Erase a data subject's personal data (PIPL 47) by destroying its keys; refused under
    a legal hold (``LEGAL_HOLD``), deferred while the law keeps its transaction records
    (``RETENTION_REQUIRED``, with the date; its data is restricted meanwhile and the
    retention run erases it then). The request and its outcome are recorded either way."""

    type: Literal["request_erasure"]
    subject_id: Annotated[AccountNo, Field(description="the data subject (its account number)")]
    reference: Annotated[
        Key | None, Field(description="the erasure request's file id, if it has one")
    ] = None


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
    | DefinePurchaseLimit
    | PlaceLegalHold
    | ReleaseLegalHold
    | RequestErasure,
    Field(discriminator="type"),
]
COMMAND_CLASSES: tuple[type[Command], ...] = AnyCommand.__origin__.__args__  # type: ignore[attr-defined]  # Annotated's union
COMMAND_TYPES = tuple(
    sorted(get_args(m.model_fields["type"].annotation)[0] for m in COMMAND_CLASSES)
)


@functools.cache
def command_adapter() -> TypeAdapter[Any]:
    """The validator of every command type, built on first use: building it (and the models,
    ``defer_build``) costs a quarter of a second that a ``ledger`` process which validates
    no command, or one type, should not pay at start-up."""
    return TypeAdapter(AnyCommand)


def parse_command(data: Any) -> Command:
    """A command from JSON-shaped data, or InvalidCommand naming the first bad field."""
    if isinstance(data, Command):
        return data
    try:
        command: Command = command_adapter().validate_python(data)
    except ValidationError as exc:
        first = exc.errors(include_input=False, include_url=False)[0]
        raise InvalidCommand(*describe_error(first)) from None
    return command


_KEY_ADAPTER: TypeAdapter[str] = TypeAdapter(Key)
_ACCOUNT_ADAPTER: TypeAdapter[str] = TypeAdapter(AccountNo)
_REGION_ADAPTER: TypeAdapter[str] = TypeAdapter(Region)


def parse_key(value: Any, field: str) -> str:
    """``value`` as an identifier field of a command takes it (``Key``: 1 to 128 characters of
    A-Z a-z 0-9 . _ : / @ + -; an order number, a command id), for the same identifiers
    given elsewhere (``ledger order show ORDER_NO``). Raises InvalidCommand(field, rule),
    never echoing the value."""
    return _parsed(_KEY_ADAPTER, value, field)


def parse_account_no(value: Any, field: str) -> str:
    """``value`` as a command's ``account_no`` takes it (``AccountNo``: never a phone number
    or an email, issue 11 item 7), wherever else an account number is given (an export's
    scope). Raises InvalidCommand(field, rule), never echoing the value."""
    return _parsed(_ACCOUNT_ADAPTER, value, field)


def parse_region(value: Any, field: str) -> str:
    """``value`` as a command's ``shipping_region`` takes it (``Region``, ``CN-BJ``). Raises
    InvalidCommand(field, rule), never echoing the value."""
    return _parsed(_REGION_ADAPTER, value, field)


def _parsed(adapter: TypeAdapter[str], value: Any, field: str) -> str:
    try:
        return adapter.validate_python(value)
    except ValidationError as exc:
        first = exc.errors(include_input=False, include_url=False)[0]
        raise InvalidCommand(field, rule_in_our_words(first)) from None


def describe_error(error: Any) -> tuple[str, str]:
    """Name the field and the rule without echoing input: some pydantic messages quote the
    value (an unknown tag), and an unknown key may itself be someone's data (``tel_1380…``),
    so an unknown key is reported by where it is, never by its name (issue 8, case 14)."""
    location = [str(part) for part in error["loc"]]
    if error["type"] == "union_tag_invalid":
        return "type", f"unknown command type; expected one of {', '.join(COMMAND_TYPES)}"
    if error["type"] == "union_tag_not_found":
        return "type", f"required; one of {', '.join(COMMAND_TYPES)}"
    if error["type"] == "extra_forbidden":
        return ".".join(location[:-1]) or "type", "has a field this command does not take"
    return ".".join(location) or "type", rule_in_our_words(error)


# pydantic's error types in the ledger's words: the rule the field breaks, with the bounds
# from the error's context, never the input. A type not listed carries a message of ours
# (``Chars``, ``IntRange``, a validator's ValueError after pydantic's "Value error, ").
_RULES = {
    "missing": "required",
    "bool_type": "must be true or false (a JSON boolean)",
    "string_type": "must be a JSON string",
    "string_unicode": "must be text in UTF-8: no undecodable bytes or lone surrogates",
    "string_too_short": "must be at least {min_length} character(s) long",
    "string_too_long": "must be at most {max_length} characters long",
    "string_pattern_mismatch": "must match the pattern {pattern}",
    "list_type": "must be a JSON array",
    "too_short": "must hold at least {min_length} item(s)",
    "too_long": "must hold at most {max_length} items",
    "model_type": "must be a JSON object",
    "model_attributes_type": "must be a JSON object",
    "dict_type": "must be a JSON object",
    "literal_error": "must be {expected}",
    "enum": "must be {expected}",
    # Query parameters and headers (the HTTP API parses those with FastAPI's pydantic too).
    "int_parsing": "must be a whole number",
    "int_type": "must be a whole number",
    "int_from_float": "must be a whole number",
    "less_than_equal": "must be at most {le}",
    "greater_than_equal": "must be at least {ge}",
    "less_than": "must be less than {lt}",
    "greater_than": "must be more than {gt}",
    "bool_parsing": "must be true or false",
    "datetime_parsing": "must be an RFC 3339 date-time with an offset",
    "datetime_from_date_parsing": "must be an RFC 3339 date-time with an offset",
    "datetime_type": "must be an RFC 3339 date-time with an offset",
    "timezone_aware": "must be an RFC 3339 date-time with an offset",
}
_OURS = frozenset({"text_characters", "integer_range"})


def rule_in_our_words(error: Any) -> str:
    """The rule a pydantic error (``ValidationError.errors()`` item) says the field breaks,
    in the ledger's words (``_RULES``); never pydantic's sentence, which may quote input."""
    kind = str(error["type"])
    if kind in _RULES:
        return _RULES[kind].format(**error.get("ctx", {}))
    if kind in _OURS:
        return str(error["msg"])
    if kind == "value_error":  # a validator of ours raised ValueError(rule)
        return str(error["msg"]).removeprefix("Value error, ")
    return "is not a valid value for this field"


# What a command's result carries beyond its events and position (CommandResult.result):
# the ids a later command needs. ``complete_refund`` takes the ``refund_id`` of
# ``initiate_refund``; a refund a closure or a return starts shows in the order's events.
RESULT_FIELDS: dict[str, tuple[str, ...]] = {"initiate_refund": ("refund_id",)}


def command_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of every command: one object per type under
    ``$defs``, chosen by ``type`` (``discriminator``). The import and the API take exactly
    what it describes, since it is generated from the models ``parse_command`` uses."""
    schema: dict[str, Any] = command_adapter().json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "mall-ledger command"
    return schema
