"""The error catalogue: every stable code the ledger and its projections give, defined once.

Each entry names its code, the clause it cites (an agreement clause such as ``3.1.4``, a law such
as ``CPL 25``, or ``""`` for errors that are not rules), one sentence of meaning, and the HTTP
status the API gives it (RFC 9457 problem details):

- a rule refused because of what the ledger holds (the order's state, a code already used…) is
  **409 Conflict**; a rule the command's own fields break, whatever the ledger holds (a ground
  that is not one, a discount above the price, a reference to something the ledger lacks), is
  **422 Unprocessable Content**;
- ``INVALID_COMMAND`` and ``COMMAND_ID_REUSED`` are 422, a line that is not JSON is 400, a line
  over the size limit 413; ``NOT_FOUND`` 404; ``CONFLICT`` (optimistic concurrency lost) 409;
- ``STORAGE_UNAVAILABLE``, ``PROJECTION_STOPPED`` and ``PROJECTIONS_BUSY`` are 503: the server
  cannot answer now, retry later; ``PROJECTION_BEHIND`` (a read-your-writes wait that ran out)
  is 409, with the projection's position in the body: the read model has not yet caught up
  with the position the client holds;
- the HTTP API's own: ``IDEMPOTENCY_KEY_REQUIRED``, ``INVALID_JSON`` and ``INVALID_PARAMETER``
  400, ``UNAUTHENTICATED`` 401, ``FORBIDDEN`` 403, ``METHOD_NOT_ALLOWED`` 405,
  ``COMMAND_IN_PROGRESS`` 409, ``PRECONDITION_FAILED`` 412, ``REQUEST_TOO_LARGE`` 413,
  ``UNSUPPORTED_MEDIA_TYPE`` 415;
- ``SEAL_INVALID`` (a token given that does not open) is 422, ``SUBJECT_ERASED`` (the
  subject's key is gone) 409;
- faults of the ledger itself (``COMMAND_FAILED``, ``KEYSTORE_ERROR``,
  ``PROJECTION_BUILD_FAILED``, the root ``LEDGER_ERROR``) are 500; ``SHRED_INCOMPLETE`` (a
  destroyed key still in the SQLite WAL because a reader holds a snapshot) is 503, and so is
  ``MASTER_KEY_ERROR`` (the master keyring is unreadable or lacks the version a stored key
  needs: like storage, the operator's to fix, then retry).

A few codes are cited under the clause of the command or the closure that triggers them
(``ORDER_CLOSED`` cites the closure's clause, ``NOT_SHIPPED`` the delivery step's…): their entry
has ``per_raise=True`` and its ``clause`` says which; the raise site names the clause with
``RuleViolation(code, message, clause=…)``. Every other raise cites the entry's clause.

The README's "Error codes" table is this catalogue (tests/unit/test_codes.py keeps them equal).
A code is never removed or renamed: command records store the codes of refusals they remember
(``CommandRecord.refused_again`` looks them up here).
"""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus


@dataclass(frozen=True, slots=True)
class ErrorCode:
    """One stable error code: what a client matches on, and what it means."""

    code: str
    clause: str
    status: HTTPStatus
    meaning: str
    per_raise: bool = False  # the raise site names the clause (the command's or the closure's)


STATE = HTTPStatus.CONFLICT  # a rule refused by what the ledger holds
INPUT = HTTPStatus.UNPROCESSABLE_ENTITY  # a rule the command's own fields break


# -- guards shared by many commands ---------------------------------------------------------
ORDER_CLOSED = ErrorCode(
    "ORDER_CLOSED",
    "the closure's clause",
    STATE,
    "The order was closed and takes no command that would change its course.",
    per_raise=True,
)
ALREADY_DELIVERED = ErrorCode(
    "ALREADY_DELIVERED",
    "the command's clause",
    STATE,
    "Something that must happen before the goods are signed for comes after delivery.",
    per_raise=True,
)
TRANSACTION_ALREADY_COMPLETED = ErrorCode(
    "TRANSACTION_ALREADY_COMPLETED",
    "ECL 31",
    STATE,
    "The transaction completed; its record is kept, not changed.",
)

# -- 3.1.2, 3.1.3: formation, payment, cancellation, mutual termination ---------------------
ORDER_EXISTS = ErrorCode("ORDER_EXISTS", "3.1.2", STATE, "The order number was already submitted.")
NOTHING_TO_PAY = ErrorCode("NOTHING_TO_PAY", "3.1.3", INPUT, "The order's total is zero or less.")
ALREADY_PAID = ErrorCode(
    "ALREADY_PAID", "3.1.2", STATE, "A payment for an order with nothing outstanding."
)
PAYMENT_DEADLINE_PASSED = ErrorCode(
    "PAYMENT_DEADLINE_PASSED",
    "3.1.3",
    STATE,
    "A payment after the deadline of an order whose contract has not formed.",
)
OVERPAYMENT = ErrorCode("OVERPAYMENT", "3.1.3", STATE, "A payment larger than what is outstanding.")
PAYMENT_ID_REUSED = ErrorCode(
    "PAYMENT_ID_REUSED",
    "3.1.3",
    STATE,
    "A provider payment id already recorded with other facts or for another order.",
)
CONTRACT_ALREADY_FORMED = ErrorCode(
    "CONTRACT_ALREADY_FORMED",
    "3.1.2 (cancel) or 3.1.3 (lapse)",
    STATE,
    "The order is paid: it cannot be cancelled by the user alone or lapse unpaid.",
    per_raise=True,
)
DEADLINE_NOT_REACHED = ErrorCode(
    "DEADLINE_NOT_REACHED",
    "3.1.3",
    STATE,
    "The payment deadline is lapsed before it has passed.",
)
CONTRACT_NOT_FORMED = ErrorCode(
    "CONTRACT_NOT_FORMED",
    "3.1.2",
    STATE,
    "Mutual termination requested before formation: the user may simply cancel.",
)
TERMINATION_ALREADY_REQUESTED = ErrorCode(
    "TERMINATION_ALREADY_REQUESTED",
    "3.1.2",
    STATE,
    "A second termination request while one is open.",
)
TERMINATION_NOT_REQUESTED = ErrorCode(
    "TERMINATION_NOT_REQUESTED",
    "3.1.2",
    STATE,
    "Accepting or declining a termination nobody requested.",
)
TERMINATION_PENDING = ErrorCode(
    "TERMINATION_PENDING", "3.1.2", STATE, "Shipping while a termination request is open."
)
NOT_PAID = ErrorCode(
    "NOT_PAID",
    "3.1.3",
    STATE,
    "Shipping or delivering an order whose kept money does not cover what is due.",
)

# -- 3.1.4: shortages and refunds -----------------------------------------------------------
ALREADY_SHIPPED = ErrorCode(
    "ALREADY_SHIPPED",
    "3.1.4 (shortage) or 3.2 (second shipment)",
    STATE,
    "The order has shipped: no shortage, and no second shipment with other facts.",
    per_raise=True,
)
SKU_NOT_IN_ORDER = ErrorCode(
    "SKU_NOT_IN_ORDER",
    "3.1.4 (shortage) or 3.1.7 (price error)",
    STATE,
    "A shortage or price error names a SKU the order does not have.",
    per_raise=True,
)
SHORTAGE_NOT_DECLARED = ErrorCode(
    "SHORTAGE_NOT_DECLARED", "3.1.4", STATE, "The order has no open shortage."
)
EXCHANGE_SKU_REQUIRED = ErrorCode(
    "EXCHANGE_SKU_REQUIRED", "3.1.4", INPUT, "An exchange that names no other SKU."
)
SHORTAGE_UNRESOLVED = ErrorCode(
    "SHORTAGE_UNRESOLVED", "3.1.4", STATE, "Shipping while a shortage is open."
)
OVER_REFUND = ErrorCode(
    "OVER_REFUND",
    "3.1.4",
    STATE,
    "A refund larger than the method's paid-and-not-given-back amount.",
)
REFUND_DESTINATION_NOT_CONSENTED = ErrorCode(
    "REFUND_DESTINATION_NOT_CONSENTED",
    "3.1.4",
    STATE,
    "A refund citing a consent that was not recorded for that method and destination.",
)
REFUND_NOT_PENDING = ErrorCode(
    "REFUND_NOT_PENDING", "3.1.4", STATE, "Completing a refund that is not under way."
)
REFUND_CONSENT_ID_REUSED = ErrorCode(
    "REFUND_CONSENT_ID_REUSED",
    "3.1.4",
    STATE,
    "A consent id already recorded with another method or destination.",
)
SHORTAGE_REFUND_TOO_LARGE = ErrorCode(
    "SHORTAGE_REFUND_TOO_LARGE",
    "3.1.4",
    STATE,
    "Shortage refunds together exceed what the short lines cost.",
)
FULL_REFUND_IS_TERMINATION = ErrorCode(
    "FULL_REFUND_IS_TERMINATION",
    "3.1.2",
    STATE,
    "Before delivery, a refund of everything due is a termination, not a refund.",
)
SHIPPED_ORDER_STAYS_PAID = ErrorCode(
    "SHIPPED_ORDER_STAYS_PAID",
    "3.1.3",
    STATE,
    "A payment cannot be returned to be made again once the order shipped.",
)

# -- 3.1.5, 3.1.6: purchase limits, abnormal orders -----------------------------------------
PURCHASE_LIMIT_EXCEEDED = ErrorCode(
    "PURCHASE_LIMIT_EXCEEDED",
    "3.1.5",
    STATE,
    "The order would take the account, or linked accounts, past the SKU's limit in the period.",
)
EVIDENCE_REQUIRED = ErrorCode(
    "EVIDENCE_REQUIRED",
    "3.1.5 (limit closure) or 3.1.6 (flag)",
    INPUT,
    "A flag or a purchase-limit closure that names no evidence.",
    per_raise=True,
)
UNKNOWN_CRITERION = ErrorCode(
    "UNKNOWN_CRITERION", "3.1.6", INPUT, "A flag criterion other than 3.1.6 (1)-(5)."
)
FLAG_EXISTS = ErrorCode(
    "FLAG_EXISTS", "3.1.6", STATE, "A flag id the order already has, other facts."
)
FLAG_NOT_FOUND = ErrorCode(
    "FLAG_NOT_FOUND", "3.1.6", INPUT, "Reviewing, or closing on, a flag the order does not have."
)
FLAG_ALREADY_REVIEWED = ErrorCode(
    "FLAG_ALREADY_REVIEWED", "PIPL 24", STATE, "A second review of one flag, other facts."
)
FLAG_DISMISSED = ErrorCode(
    "FLAG_DISMISSED", "3.1.6", STATE, "Closing on a flag a reviewer dismissed."
)
FLAG_NOT_REVIEWED = ErrorCode(
    "FLAG_NOT_REVIEWED",
    "PIPL 24",
    STATE,
    "Closing on an automated flag no person has confirmed.",
)

# -- 3.1.7: price errors --------------------------------------------------------------------
NO_OPEN_PRICE_ERROR = ErrorCode(
    "NO_OPEN_PRICE_ERROR", "3.1.7", STATE, "Resolving when no price error is open."
)
USER_CONSENT_REQUIRED = ErrorCode(
    "USER_CONSENT_REQUIRED",
    "3.1.7",
    INPUT,
    "Adjusting or terminating for a price error without the user's consent.",
)
ADJUSTED_TOTAL_INVALID = ErrorCode(
    "ADJUSTED_TOTAL_INVALID",
    "3.1.7",
    INPUT,
    "An adjustment without a new total, or below what the order keeps.",
)
PRICE_ERROR_UNRESOLVED = ErrorCode(
    "PRICE_ERROR_UNRESOLVED", "3.1.7", STATE, "Shipping while a price error is open."
)
PRICE_ERROR_NO_UNILATERAL_CLOSE = ErrorCode(
    "PRICE_ERROR_NO_UNILATERAL_CLOSE",
    "3.1.7",
    STATE,
    "A seller closure while a price error is open.",
)
CLOSURE_GROUND_NOT_ALLOWED = ErrorCode(
    "CLOSURE_GROUND_NOT_ALLOWED",
    "3.1.7 (else the ground's clause)",
    INPUT,
    "The seller closes on a ground that is not a seller's.",
    per_raise=True,
)

# -- 3.1.8, 3.1.10, 3.1.11: gifts, promotions, coupons and F-codes --------------------------
DUPLICATE_GIFT = ErrorCode("DUPLICATE_GIFT", "3.1.8", INPUT, "An order lists the same gift twice.")
GIFT_NOT_IN_ORDER = ErrorCode(
    "GIFT_NOT_IN_ORDER", "3.1.8", STATE, "An inspection names a gift the order never had."
)
PROMOTION_NOT_FOUND = ErrorCode(
    "PROMOTION_NOT_FOUND", "3.1.10", INPUT, "An order names an unknown promotion."
)
PROMOTION_NOT_ACTIVE = ErrorCode(
    "PROMOTION_NOT_ACTIVE", "3.1.10", STATE, "An order submitted outside the promotion's window."
)
EMPTY_VALIDITY_WINDOW = ErrorCode(
    "EMPTY_VALIDITY_WINDOW", "3.1.10", INPUT, "A promotion whose end is not after its start."
)
DISCOUNT_EXCEEDS_PRICE = ErrorCode(
    "DISCOUNT_EXCEEDS_PRICE", "3.1.10", INPUT, "A line discount above the line's price."
)
ENTITLEMENT_EXISTS = ErrorCode(
    "ENTITLEMENT_EXISTS", "3.1.11", STATE, "Issuing a code that was already issued."
)
F_CODE_NEEDS_SKU = ErrorCode(
    "F_CODE_NEEDS_SKU", "3.1.11", INPUT, "Issuing an F-code without its SKU."
)
ENTITLEMENT_NOT_FOUND = ErrorCode(
    "ENTITLEMENT_NOT_FOUND",
    "3.1.11",
    INPUT,
    "An order uses an unknown code, or a code of the other kind.",
)
ENTITLEMENT_ALREADY_CONSUMED = ErrorCode(
    "ENTITLEMENT_ALREADY_CONSUMED",
    "3.1.11",
    STATE,
    "A code already used by an order, or used twice in one order.",
)
ENTITLEMENT_EXPIRED = ErrorCode(
    "ENTITLEMENT_EXPIRED", "3.1.11", STATE, "A code used after its validity ended."
)
ENTITLEMENT_NOT_HELD = ErrorCode(
    "ENTITLEMENT_NOT_HELD", "3.1.11", STATE, "A code held by another account."
)
F_CODE_WRONG_SKU = ErrorCode(
    "F_CODE_WRONG_SKU", "3.1.11", STATE, "An F-code on an order without its SKU."
)
F_CODE_NOT_RESTORABLE = ErrorCode(
    "F_CODE_NOT_RESTORABLE", "3.1.11", STATE, "Restoring an F-code, whatever rule is cited."
)
RESTORE_RULE_REQUIRED = ErrorCode(
    "RESTORE_RULE_REQUIRED",
    "3.1.11",
    INPUT,
    "Restoring a coupon without naming the special rule.",
)
ENTITLEMENT_NOT_CONSUMED = ErrorCode(
    "ENTITLEMENT_NOT_CONSUMED", "3.1.11", STATE, "Restoring a coupon that was never used."
)
ENTITLEMENT_NOT_FORFEITED = ErrorCode(
    "ENTITLEMENT_NOT_FORFEITED",
    "3.1.11",
    STATE,
    "Restoring a coupon still held by a live order.",
)

# -- 3.2: delivery and seller closures ------------------------------------------------------
TWO_CALLS_REQUIRED = ErrorCode(
    "TWO_CALLS_REQUIRED",
    "3.2.4(2)",
    STATE,
    "Closing on no answer with fewer than two unanswered calls recorded.",
)
DELIVERY_FAILURE_NOT_RECORDED = ErrorCode(
    "DELIVERY_FAILURE_NOT_RECORDED",
    "the ground's clause: 3.2.4(1), (3) or (4)",
    STATE,
    "Closing on a delivery failure without a failed attempt for that reason.",
    per_raise=True,
)
REFUSAL_NOT_RECORDED = ErrorCode(
    "REFUSAL_NOT_RECORDED",
    "3.2.3",
    STATE,
    "Closing on a refused delivery when no refusal was recorded.",
)
NOT_SHIPPED = ErrorCode(
    "NOT_SHIPPED",
    "the step's clause: 3.2.3, 3.2.4 or 3.2.4(2)",
    STATE,
    "A delivery step recorded before the order shipped.",
    per_raise=True,
)
DELIVERY_REFUSED = ErrorCode(
    "DELIVERY_REFUSED",
    "the step's clause: 3.2.3, 3.2.4 or 3.2.4(2)",
    STATE,
    "A delivery step recorded after the user refused the delivery.",
    per_raise=True,
)
SIGNER_NOT_AUTHORISED = ErrorCode(
    "SIGNER_NOT_AUTHORISED",
    "3.2.3",
    INPUT,
    "A signer other than the user, family, a designated recipient or an agent.",
)

# -- 3.3: returns ---------------------------------------------------------------------------
OUTSIDE_MAINLAND = ErrorCode(
    "OUTSIDE_MAINLAND",
    "3.3.3",
    INPUT,
    "An order shipping, or a return serviced, outside mainland China.",
)
NOT_DELIVERED = ErrorCode("NOT_DELIVERED", "CPL 25", STATE, "A return before delivery.")
RETURN_ALREADY_OPEN = ErrorCode(
    "RETURN_ALREADY_OPEN", "3.3.1", STATE, "A second return on an order, open or done."
)
RETURN_ID_REUSED = ErrorCode(
    "RETURN_ID_REUSED",
    "3.3.1",
    STATE,
    "A return step sent again under its return id with other facts.",
)
GROUP_PURCHASE_NO_REASON_RETURN = ErrorCode(
    "GROUP_PURCHASE_NO_REASON_RETURN",
    "3.3.2",
    STATE,
    "A no-reason return of an enterprise or government group purchase.",
)
GOODS_EXCLUDED_FROM_NO_REASON_RETURN = ErrorCode(
    "GOODS_EXCLUDED_FROM_NO_REASON_RETURN",
    "CPL 25",
    STATE,
    "A no-reason return of an order with excluded goods.",
)
RETURN_WINDOW_CLOSED = ErrorCode(
    "RETURN_WINDOW_CLOSED", "CPL 25", STATE, "A no-reason return after the window ended."
)
NO_OPEN_RETURN = ErrorCode(
    "NO_OPEN_RETURN", "3.3.1", STATE, "Receiving or inspecting a return that is not open."
)
RETURN_ALREADY_RECEIVED = ErrorCode(
    "RETURN_ALREADY_RECEIVED", "3.3.1", STATE, "Receiving the same return twice."
)
RETURN_NOT_RECEIVED = ErrorCode(
    "RETURN_NOT_RECEIVED",
    "3.3.1",
    STATE,
    "Inspecting a return whose goods have not come back.",
)

# -- 6.1, 6.2: accounts ---------------------------------------------------------------------
ACCOUNT_RESTRICTED = ErrorCode(
    "ACCOUNT_RESTRICTED", "6.1", STATE, "A restricted or terminated account submits an order."
)
ACCOUNT_ALREADY_RESTRICTED = ErrorCode(
    "ACCOUNT_ALREADY_RESTRICTED",
    "6.1",
    STATE,
    "Restricting an account that is already restricted or terminated.",
)
ACCOUNT_ALREADY_TERMINATED = ErrorCode(
    "ACCOUNT_ALREADY_TERMINATED", "6.1", STATE, "Terminating an account already terminated."
)
UNKNOWN_GROUND = ErrorCode(
    "UNKNOWN_GROUND", "6.1", INPUT, "A ground that is not one of 6.1(1)-(8)."
)
REFUSAL_THRESHOLD_NOT_MET = ErrorCode(
    "REFUSAL_THRESHOLD_NOT_MET",
    "6.1(5)",
    STATE,
    "Ground 6.1(5) without enough non-quality refusals in the window.",
)
ACCOUNT_NOT_RESTRICTED = ErrorCode(
    "ACCOUNT_NOT_RESTRICTED",
    "6.2 (decision, terminated) or 6.1 (restricted)",
    STATE,
    "An account decision or closure for an account that is not restricted or terminated.",
    per_raise=True,
)
ORDER_NOT_OF_ACCOUNT = ErrorCode(
    "ORDER_NOT_OF_ACCOUNT",
    "6.2",
    INPUT,
    "A 6.2 decision on an order that is not that account's, or does not exist.",
)
DISPOSITION_NOT_CLOSE = ErrorCode(
    "DISPOSITION_NOT_CLOSE",
    "6.2",
    STATE,
    "A closure on an account ground without a recorded decision to close that order.",
)

# -- ECL 31: completion and the record's order -----------------------------------------------
TIME_BEFORE_STREAM = ErrorCode(
    "TIME_BEFORE_STREAM",
    "ECL 31",
    STATE,
    "A command dated before the last event of a stream it would write.",
)
TRANSACTION_NOT_COMPLETE = ErrorCode(
    "TRANSACTION_NOT_COMPLETE",
    "ECL 31",
    STATE,
    "Completing while a refund, a return or the return window is still open.",
)

# -- PIPL 47, ECL 31: the personal-data lifecycle (legal holds, retention) --------------------
LEGAL_HOLD = ErrorCode(
    "LEGAL_HOLD",
    "PIPL 47",
    STATE,
    "A legal hold (a dispute or an investigation) is on the data subject: its data is neither "
    "de-identified nor erased until every hold is released.",
)
RETENTION_REQUIRED = ErrorCode(
    "RETENTION_REQUIRED",
    "ECL 31",
    STATE,
    "The law keeps the data subject's transaction records until the date named: erasure "
    "waits for it.",
)
ORDER_IN_PROGRESS = ErrorCode(
    "ORDER_IN_PROGRESS",
    "PIPL 13(2)",
    STATE,
    "An order of the data subject is still being performed (submitted, not completed): its "
    "personal data is needed to perform it, so the erasure is refused; ask again once it is "
    "completed.",
)
PROCESSING_RESTRICTED = ErrorCode(
    "PROCESSING_RESTRICTED",
    "PIPL 47 para 2",
    STATE,
    "The data subject's processing is restricted (kept while the law requires, not processed): "
    "its personal data is revealed only to an auditor or regulator citing a legal basis.",
)
LEGAL_HOLD_REFERENCE_REUSED = ErrorCode(
    "LEGAL_HOLD_REFERENCE_REUSED",
    "PIPL 47",
    STATE,
    "A legal hold placed under a reference already on for that subject with another reason.",
)

# -- errors that are not rules --------------------------------------------------------------
LEDGER_ERROR = ErrorCode(
    "LEDGER_ERROR",
    "",
    HTTPStatus.INTERNAL_SERVER_ERROR,
    "The root of every error the ledger raises on purpose; never raised bare.",
)
INVALID_COMMAND = ErrorCode(
    "INVALID_COMMAND",
    "",
    INPUT,
    "The input is not a valid command or setting: names the field and the rule.",
)
NOT_FOUND = ErrorCode(
    "NOT_FOUND",
    "",
    HTTPStatus.NOT_FOUND,
    "A command or a query names an order, a code or another id that does not exist.",
)
CONFLICT = ErrorCode(
    "CONFLICT",
    "",
    HTTPStatus.CONFLICT,
    "Another writer changed one of the same streams first; nothing was written, retry.",
)
STORAGE_UNAVAILABLE = ErrorCode(
    "STORAGE_UNAVAILABLE",
    "",
    HTTPStatus.SERVICE_UNAVAILABLE,
    "The database could not be reached or failed; a command wrote nothing.",
)
COMMAND_FAILED = ErrorCode(
    "COMMAND_FAILED",
    "",
    HTTPStatus.INTERNAL_SERVER_ERROR,
    "A command failed in a way no rule foresaw (a defect); nothing of it was written.",
)
COMMAND_ID_REUSED = ErrorCode(
    "COMMAND_ID_REUSED", "", INPUT, "A command id sent again with another payload."
)
SEAL_INVALID = ErrorCode(
    "SEAL_INVALID",
    "",
    INPUT,
    "A sealed token that is malformed, moved to another subject or field, or forged.",
)
SUBJECT_ERASED = ErrorCode(
    "SUBJECT_ERASED",
    "",
    STATE,
    "Personal data for a subject whose key was destroyed cannot be sealed.",
)
KEYSTORE_ERROR = ErrorCode(
    "KEYSTORE_ERROR",
    "",
    HTTPStatus.INTERNAL_SERVER_ERROR,
    "The key store holds something it must not (a key of the wrong size, a missing key).",
)
MASTER_KEY_ERROR = ErrorCode(
    "MASTER_KEY_ERROR",
    "",
    HTTPStatus.SERVICE_UNAVAILABLE,
    "The master key file is missing, unreadable, of the wrong size, or not the one that wrapped "
    "the stored keys.",
)
SHRED_INCOMPLETE = ErrorCode(
    "SHRED_INCOMPLETE",
    "",
    HTTPStatus.SERVICE_UNAVAILABLE,
    "A destroyed key could not yet be made gone from the database's files (a reader holds an "
    "old snapshot); the key is destroyed, run the destroy or keys compact again.",
)
INVALID_JSON = ErrorCode(
    "INVALID_JSON",
    "",
    HTTPStatus.BAD_REQUEST,
    "An import line or request body that is not valid JSON in UTF-8, or nests too deep; an "
    "import line holding an object with a repeated key.",
)
LINE_TOO_LONG = ErrorCode(
    "LINE_TOO_LONG",
    "",
    HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
    "An import line over 1 MiB, skipped without being read into memory.",
)
IO_ERROR = ErrorCode(
    "IO_ERROR",
    "",
    HTTPStatus.BAD_REQUEST,
    "A file named to the command line cannot be read or written, or is not safe to write "
    "through (a link, a device); nothing was done with it.",
)
PROJECTION_BEHIND = ErrorCode(
    "PROJECTION_BEHIND",
    "",
    STATE,
    "A projection did not reach the position asked for within the timeout.",
)
PROJECTION_STOPPED = ErrorCode(
    "PROJECTION_STOPPED",
    "",
    HTTPStatus.SERVICE_UNAVAILABLE,
    "A projection waited for is stopped on an event it cannot apply.",
)
PROJECTIONS_BUSY = ErrorCode(
    "PROJECTIONS_BUSY",
    "",
    HTTPStatus.SERVICE_UNAVAILABLE,
    "Another process holds the lock a rebuild or check needs.",
)
PROJECTION_NOT_STOPPED = ErrorCode(
    "PROJECTION_NOT_STOPPED",
    "",
    HTTPStatus.CONFLICT,
    "Skipping an event of a projection that is not stopped on one.",
)
PROJECTION_BUILD_FAILED = ErrorCode(
    "PROJECTION_BUILD_FAILED",
    "",
    HTTPStatus.INTERNAL_SERVER_ERROR,
    "A process building projection copies failed; nothing was swapped in.",
)

# -- the HTTP API (api/): requests, keys and roles ------------------------------------------
ADDRESS_UNAVAILABLE = ErrorCode(
    "ADDRESS_UNAVAILABLE",
    "",
    HTTPStatus.SERVICE_UNAVAILABLE,
    "ledger serve cannot listen where it was asked: the port is taken or the host is not here.",
)
API_KEY_NAME_TAKEN = ErrorCode(
    "API_KEY_NAME_TAKEN",
    "",
    HTTPStatus.CONFLICT,
    "A new API key named like a live one; revoke that one first.",
)
COMMAND_IN_PROGRESS = ErrorCode(
    "COMMAND_IN_PROGRESS",
    "",
    STATE,
    "A command id sent again while its first request is still running; retry later.",
)
IDEMPOTENCY_KEY_REQUIRED = ErrorCode(
    "IDEMPOTENCY_KEY_REQUIRED",
    "",
    HTTPStatus.BAD_REQUEST,
    "A command sent without an Idempotency-Key header (or with one that is not a key).",
)
INVALID_PARAMETER = ErrorCode(
    "INVALID_PARAMETER",
    "",
    HTTPStatus.BAD_REQUEST,
    "A query parameter, path segment or header that breaks its rule (named, never echoed).",
)
UNAUTHENTICATED = ErrorCode(
    "UNAUTHENTICATED",
    "",
    HTTPStatus.UNAUTHORIZED,
    "No API key, or one that is unknown or revoked.",
)
FORBIDDEN = ErrorCode(
    "FORBIDDEN",
    "",
    HTTPStatus.FORBIDDEN,
    "The API key's role does not allow this request.",
)
METHOD_NOT_ALLOWED = ErrorCode(
    "METHOD_NOT_ALLOWED",
    "",
    HTTPStatus.METHOD_NOT_ALLOWED,
    "A method the resource does not take.",
)
PRECONDITION_FAILED = ErrorCode(
    "PRECONDITION_FAILED",
    "",
    HTTPStatus.PRECONDITION_FAILED,
    "An If-Match version that is no longer the stream's; nothing was written.",
)
REQUEST_TOO_LARGE = ErrorCode(
    "REQUEST_TOO_LARGE",
    "",
    HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
    "A request body over the size limit, refused without being read whole.",
)
UNSUPPORTED_MEDIA_TYPE = ErrorCode(
    "UNSUPPORTED_MEDIA_TYPE",
    "",
    HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
    "A request body that is not application/json.",
)
# -- verifiable history (RFC 9162, C2SP) -----------------------------------------------------
PROOF_INVALID = ErrorCode(
    "PROOF_INVALID",
    "",
    INPUT,
    "An inclusion or consistency proof that does not hold, or asked of sizes none exists for.",
)
NOTE_INVALID = ErrorCode(
    "NOTE_INVALID",
    "",
    INPUT,
    "A signed note or checkpoint that is malformed, unsigned by a trusted key, or badly signed.",
)

CATALOGUE: tuple[ErrorCode, ...] = tuple(
    value for value in list(globals().values()) if isinstance(value, ErrorCode)
)
BY_CODE: dict[str, ErrorCode] = {entry.code: entry for entry in CATALOGUE}
