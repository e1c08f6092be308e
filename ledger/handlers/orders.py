"""Order commands after submission: load the stream, run the domain command, and on a
closure forfeit the order's F-code and coupons in the same transaction (3.1.11)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

from ledger import commands as c
from ledger.domain.entitlement import Entitlement
from ledger.domain.errors import NotFound
from ledger.domain.ids import entitlement_id, order_id, payment_claim_id
from ledger.domain.limits import LimitCounter
from ledger.domain.order.aggregate import Order
from ledger.domain.payment_ids import PaymentIdClaim
from ledger.handlers.accounts import account_for
from ledger.unit_of_work import Handler, UnitOfWork

ACCOUNT_GROUNDS = ("account_restricted", "account_terminated")
NO_REASON_COUPON_RULE = "7D art. 15"


def load_order(order_no: str, uow: UnitOfWork) -> Order:
    order = uow.get(Order, order_id(order_no))
    if order is None:
        raise NotFound(f"no order {order_no}")
    return order


def forfeit_entitlements(order: Order, uow: UnitOfWork) -> None:
    """Cancelled or closed for any reason: its codes stay used (3.1.11)."""
    for code in [*order.f_codes, *order.coupons]:
        entitlement = uow.get(Entitlement, entitlement_id(code))
        assert entitlement is not None, f"order {order.order_no} consumed unknown code {code}"
        if entitlement.consumed_by == order.order_no and not entitlement.forfeited:
            entitlement.forfeit(uow.now, order.order_no, str(order.closed_ground))


OrderRun = Callable[[Order, Any, UnitOfWork], None]


def release_limit_counts(order: Order, uow: UnitOfWork) -> None:
    for counter_id in order.limit_counters:
        counter = uow.get(LimitCounter, UUID(counter_id))
        assert counter is not None, f"order {order.order_no} counted on a missing counter"
        counter.release(uow.now, order.order_no)


def order_command(run: OrderRun) -> Callable[[Any, UnitOfWork], None]:
    def handle(cmd: Any, uow: UnitOfWork) -> None:
        order = load_order(cmd.order_no, uow)
        was_closed = order.is_closed
        run(order, cmd, uow)
        if order.is_closed and not was_closed:
            forfeit_entitlements(order, uow)
            if not order.contract_formed:
                release_limit_counts(order, uow)

    return handle


def _receive_payment(order: Order, cmd: c.ReceivePayment, uow: UnitOfWork) -> None:
    """A provider's payment id counts once in the whole ledger (3.1.3): the claim says
    which order took it; that order's record of the payment tells a repeat from a reuse."""
    claim = uow.get(PaymentIdClaim, payment_claim_id(cmd.payment_id))
    if claim is not None:
        claim.check_same_order(order.order_no)
    token = uow.sealer.seal(order.account_no, "payer_account", cmd.payer_account)

    def same_payer(sealed: str) -> bool:
        return uow.sealer.unseal(sealed, "payer_account") == cmd.payer_account

    if claim is None:
        # Claimed first, so the log reads: the id taken, then the payment it names.
        order.check_payment_id(cmd.payment_id, cmd.method, cmd.amount_fen, same_payer)
        order.check_payment_acceptable(uow.now, cmd.amount_fen)
        uow.add(PaymentIdClaim.claim(uow.now, cmd.payment_id, order.order_no))
    order.receive_payment(uow.now, cmd.payment_id, cmd.method, token, cmd.amount_fen, same_payer)


def _close_order(order: Order, cmd: c.CloseOrder, uow: UnitOfWork) -> None:
    evidence = cmd.evidence.model_dump(exclude_none=True)
    order.check_seller_may_close(cmd.ground, evidence)
    if cmd.ground in ACCOUNT_GROUNDS:
        account = account_for(order.account_no, uow)
        account.check_ground_matches(cmd.ground)
        account.check_disposition_close(order.order_no)
    order.close(uow.now, cmd.ground, evidence)


def _record_refund_consent(order: Order, cmd: c.RecordRefundConsent, uow: UnitOfWork) -> None:
    token = uow.sealer.seal(order.account_no, "refund_destination", cmd.destination_account)
    order.record_refund_consent(
        uow.now,
        cmd.consent_id,
        cmd.method,
        token,
        same_destination=lambda sealed: (
            uow.sealer.unseal(sealed, "refund_destination") == cmd.destination_account
        ),
    )


def _initiate_refund(order: Order, cmd: c.InitiateRefund, uow: UnitOfWork) -> None:
    uow.result["refund_id"] = order.initiate_refund(
        uow.now, cmd.method, cmd.amount_fen, cmd.purpose, cmd.consent_id
    )


def _refuse_delivery(order: Order, cmd: c.RefuseDelivery, uow: UnitOfWork) -> None:
    """A non-quality refusal also counts against the account (6.1(5), 3.1.6(4))."""
    order.refuse_delivery(uow.now, cmd.quality_reason, cmd.reason)
    if not cmd.quality_reason:
        account = account_for(order.account_no, uow)
        account.record_non_quality_refusal(uow.now, order.order_no)
        uow.add(account)


def _inspect_return(order: Order, cmd: c.InspectReturn, uow: UnitOfWork) -> None:
    """Coupons come back on a no-reason return unless the policy says otherwise (7D 15)."""
    no_reason = order.open_return is not None and order.open_return["kind"] == "no_reason"
    restore = no_reason and uow.policy.coupons_restored_on_no_reason_return
    policy = "restored (7D art. 15)" if restore else ("kept" if no_reason else "not applicable")
    order.inspect_return(uow.now, cmd.return_id, list(cmd.gifts_returned), policy)
    if restore:
        for code in order.coupons:
            coupon = uow.get(Entitlement, entitlement_id(code))
            if coupon is not None and coupon.consumed_by == order.order_no:
                coupon.restore(uow.now, NO_REASON_COUPON_RULE)


def _deliver(order: Order, cmd: c.DeliverOrder, uow: UnitOfWork) -> None:
    order.deliver(uow.now, cmd.signer_relation, uow.policy.return_window_days)


def _evidence(cmd: Any) -> dict[str, Any]:
    return dict(cmd.evidence.model_dump(exclude_none=True))


# type -> what the command does to the order; everything else is loading and forfeiting.
_RUNS: dict[str, OrderRun] = {
    "receive_payment": _receive_payment,
    "cancel_order": lambda o, cmd, u: o.cancel_by_user(u.now, cmd.reason),
    "lapse_payment_deadline": lambda o, cmd, u: o.lapse_payment_deadline(u.now),
    "declare_stock_shortage": lambda o, cmd, u: o.declare_stock_shortage(u.now, list(cmd.skus)),
    "resolve_stock_shortage": lambda o, cmd, u: o.resolve_stock_shortage(
        u.now, cmd.resolution, cmd.exchange_sku
    ),
    "request_mutual_termination": lambda o, cmd, u: o.request_mutual_termination(
        u.now, cmd.requested_by, cmd.reason
    ),
    "accept_mutual_termination": lambda o, cmd, u: o.accept_mutual_termination(u.now),
    "decline_mutual_termination": lambda o, cmd, u: o.decline_mutual_termination(u.now, cmd.reason),
    "close_order": _close_order,
    "notify_user": lambda o, cmd, u: o.notify_user(u.now, cmd.subject, cmd.clause),
    "record_refund_consent": _record_refund_consent,
    "initiate_refund": _initiate_refund,
    "complete_refund": lambda o, cmd, u: o.complete_refund(u.now, cmd.refund_id),
    "detect_price_error": lambda o, cmd, u: o.detect_price_error(
        u.now, cmd.sku, cmd.displayed_price_fen, cmd.correct_price_fen, cmd.cause
    ),
    "resolve_price_error": lambda o, cmd, u: o.resolve_price_error(
        u.now, cmd.resolution, cmd.user_consented, cmd.adjusted_total_fen
    ),
    "ship_order": lambda o, cmd, u: o.ship(
        u.now, cmd.carrier, cmd.tracking_no, cmd.estimated_delivery, cmd.promised_delivery
    ),
    "record_delivery_failure": lambda o, cmd, u: o.record_delivery_failure(u.now, cmd.reason),
    "record_contact_call": lambda o, cmd, u: o.record_contact_call(u.now, cmd.answered),
    "refuse_delivery": _refuse_delivery,
    "deliver_order": _deliver,
    "request_return": lambda o, cmd, u: o.request_return(
        u.now, cmd.return_id, cmd.kind, cmd.service_region, cmd.visible_damage_claimed
    ),
    "receive_return": lambda o, cmd, u: o.receive_return(u.now, cmd.return_id),
    "inspect_return": _inspect_return,
    "raise_flag": lambda o, cmd, u: o.raise_flag(
        u.now, cmd.flag_id, cmd.criterion, _evidence(cmd), cmd.automated
    ),
    "review_flag": lambda o, cmd, u: o.review_flag(
        u.now, cmd.flag_id, cmd.reviewer_id, cmd.outcome, cmd.note
    ),
    "complete_transaction": lambda o, cmd, u: o.complete_transaction(u.now),
}

HANDLERS: dict[str, Handler] = {name: order_command(run) for name, run in _RUNS.items()}
