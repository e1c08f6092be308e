"""Order commands after submission: load the stream, run the domain command, and on a
closure forfeit the order's F-code and coupons in the same transaction (3.1.11)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import TypeVar
from uuid import UUID

from ledger import commands as c
from ledger.domain.entitlement import Entitlement
from ledger.domain.errors import NotFound
from ledger.domain.ids import entitlement_id, order_id, payment_claim_id
from ledger.domain.limits import LimitCounter
from ledger.domain.order.aggregate import Order
from ledger.domain.payment_ids import PaymentIdClaim
from ledger.handlers.accounts import account_for
from ledger.handlers.free_text import same_text, seal_text
from ledger.handlers.lifecycle import record_retention
from ledger.handlers.registry import handles
from ledger.unit_of_work import UnitOfWork

ACCOUNT_GROUNDS = ("account_restricted", "account_terminated")
# The ledger's own rule for a coupon a no-reason return gives back: recorded in clear (no
# person typed it, so it carries no one's data).
NO_REASON_COUPON_RULE = "7D art. 15"

C = TypeVar("C", bound=c.OrderCommand)
# What a command does to its order, given the order loaded; ``order_command`` does the rest.
OrderRun = Callable[[Order, C, UnitOfWork], None]


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


def release_limit_counts(order: Order, uow: UnitOfWork) -> None:
    for counter_id in order.limit_counters:
        counter = uow.get(LimitCounter, UUID(counter_id))
        assert counter is not None, f"order {order.order_no} counted on a missing counter"
        counter.release(uow.now, order.order_no)


def order_command(command_class: type[C]) -> Callable[[OrderRun[C]], OrderRun[C]]:
    """Register ``run`` as the handler of ``command_class``: load the order, run it, and on
    a closure forfeit the order's codes and, before the contract formed, release its
    purchase-limit counts (3.1.11, 3.1.5). The handler keeps ``run``'s name and annotations
    (``functools.wraps``), so its command parameter type can be read back."""

    def register(run: OrderRun[C]) -> OrderRun[C]:
        @wraps(run)
        def handle(cmd: C, uow: UnitOfWork) -> None:
            order = load_order(cmd.order_no, uow)
            was_closed = order.is_closed
            run(order, cmd, uow)
            if order.is_closed and not was_closed:
                forfeit_entitlements(order, uow)
                if not order.contract_formed:
                    release_limit_counts(order, uow)

        handles(command_class)(handle)
        return run

    return register


def sealed_text(uow: UnitOfWork, order: Order, field: str, text: str) -> str:
    """Free text a person typed about ``order``, sealed under its subject's main key and bound
    to the order and ``field`` (``seal_text``); "" stays ""."""
    return seal_text(uow.sealer, order.account_no, order.order_no, field, text)


@order_command(c.ReceivePayment)
def receive_payment(order: Order, cmd: c.ReceivePayment, uow: UnitOfWork) -> None:
    """A provider's payment id counts once in the whole ledger (3.1.3): the claim says
    which order took it; that order's record of the payment tells a repeat from a reuse."""
    claim = uow.get(PaymentIdClaim, payment_claim_id(cmd.payment_id))
    if claim is not None:
        claim.check_same_order(order.order_no)
    token = uow.sealer.seal(
        order.account_no, "payer_account", cmd.payer_account, stream=order.order_no
    )

    def same_payer(sealed: str) -> bool:
        opened = uow.sealer.unseal(sealed, "payer_account", stream=order.order_no)
        return opened == cmd.payer_account

    if claim is None:
        # Claimed first, so the log reads: the id taken, then the payment it names.
        order.check_payment_id(cmd.payment_id, cmd.method, cmd.amount_fen, same_payer)
        order.check_payment_acceptable(uow.now, cmd.amount_fen)
        uow.add(PaymentIdClaim.claim(uow.now, cmd.payment_id, order.order_no))
    order.receive_payment(uow.now, cmd.payment_id, cmd.method, token, cmd.amount_fen, same_payer)


@order_command(c.CancelOrder)
def cancel_order(order: Order, cmd: c.CancelOrder, uow: UnitOfWork) -> None:
    order.cancel_by_user(uow.now, sealed_text(uow, order, "reason", cmd.reason))


@order_command(c.LapsePaymentDeadline)
def lapse_payment_deadline(order: Order, cmd: c.LapsePaymentDeadline, uow: UnitOfWork) -> None:
    order.lapse_payment_deadline(uow.now)


@order_command(c.DeclareStockShortage)
def declare_stock_shortage(order: Order, cmd: c.DeclareStockShortage, uow: UnitOfWork) -> None:
    order.declare_stock_shortage(uow.now, list(cmd.skus))


@order_command(c.ResolveStockShortage)
def resolve_stock_shortage(order: Order, cmd: c.ResolveStockShortage, uow: UnitOfWork) -> None:
    order.resolve_stock_shortage(uow.now, cmd.resolution, cmd.exchange_sku)


@order_command(c.RequestMutualTermination)
def request_mutual_termination(
    order: Order, cmd: c.RequestMutualTermination, uow: UnitOfWork
) -> None:
    reason = sealed_text(uow, order, "reason", cmd.reason)
    order.request_mutual_termination(uow.now, cmd.requested_by, reason)


@order_command(c.AcceptMutualTermination)
def accept_mutual_termination(
    order: Order, cmd: c.AcceptMutualTermination, uow: UnitOfWork
) -> None:
    order.accept_mutual_termination(uow.now)


@order_command(c.DeclineMutualTermination)
def decline_mutual_termination(
    order: Order, cmd: c.DeclineMutualTermination, uow: UnitOfWork
) -> None:
    order.decline_mutual_termination(uow.now, sealed_text(uow, order, "reason", cmd.reason))


@order_command(c.CloseOrder)
def close_order(order: Order, cmd: c.CloseOrder, uow: UnitOfWork) -> None:
    evidence = cmd.evidence.model_dump(exclude_none=True)
    order.check_seller_may_close(cmd.ground, evidence)
    if cmd.ground in ACCOUNT_GROUNDS:
        account = account_for(order.account_no, uow)
        account.check_ground_matches(cmd.ground)
        account.check_disposition_close(order.order_no)
    order.close(uow.now, cmd.ground, evidence)


@order_command(c.NotifyUser)
def notify_user(order: Order, cmd: c.NotifyUser, uow: UnitOfWork) -> None:
    order.notify_user(uow.now, sealed_text(uow, order, "subject", cmd.subject), cmd.clause)


@order_command(c.RecordRefundConsent)
def record_refund_consent(order: Order, cmd: c.RecordRefundConsent, uow: UnitOfWork) -> None:
    token = uow.sealer.seal(
        order.account_no, "refund_destination", cmd.destination_account, stream=order.order_no
    )
    order.record_refund_consent(
        uow.now,
        cmd.consent_id,
        cmd.method,
        token,
        same_destination=lambda sealed: (
            uow.sealer.unseal(sealed, "refund_destination", stream=order.order_no)
            == cmd.destination_account
        ),
    )


@order_command(c.InitiateRefund)
def initiate_refund(order: Order, cmd: c.InitiateRefund, uow: UnitOfWork) -> None:
    uow.result["refund_id"] = order.initiate_refund(
        uow.now, cmd.method, cmd.amount_fen, cmd.purpose, cmd.consent_id
    )


@order_command(c.CompleteRefund)
def complete_refund(order: Order, cmd: c.CompleteRefund, uow: UnitOfWork) -> None:
    order.complete_refund(uow.now, cmd.refund_id)


@order_command(c.DetectPriceError)
def detect_price_error(order: Order, cmd: c.DetectPriceError, uow: UnitOfWork) -> None:
    order.detect_price_error(
        uow.now,
        cmd.sku,
        cmd.displayed_price_fen,
        cmd.correct_price_fen,
        sealed_text(uow, order, "cause", cmd.cause),
    )


@order_command(c.ResolvePriceError)
def resolve_price_error(order: Order, cmd: c.ResolvePriceError, uow: UnitOfWork) -> None:
    order.resolve_price_error(uow.now, cmd.resolution, cmd.user_consented, cmd.adjusted_total_fen)


@order_command(c.ShipOrder)
def ship_order(order: Order, cmd: c.ShipOrder, uow: UnitOfWork) -> None:
    order.ship(uow.now, cmd.carrier, cmd.tracking_no, cmd.estimated_delivery, cmd.promised_delivery)


@order_command(c.RecordDeliveryFailure)
def record_delivery_failure(order: Order, cmd: c.RecordDeliveryFailure, uow: UnitOfWork) -> None:
    order.record_delivery_failure(uow.now, cmd.reason)


@order_command(c.RecordContactCall)
def record_contact_call(order: Order, cmd: c.RecordContactCall, uow: UnitOfWork) -> None:
    order.record_contact_call(uow.now, cmd.answered)


@order_command(c.RefuseDelivery)
def refuse_delivery(order: Order, cmd: c.RefuseDelivery, uow: UnitOfWork) -> None:
    """A non-quality refusal also counts against the account (6.1(5), 3.1.6(4))."""
    order.refuse_delivery(
        uow.now, cmd.quality_reason, sealed_text(uow, order, "reason", cmd.reason)
    )
    if not cmd.quality_reason:
        account = account_for(order.account_no, uow)
        account.record_non_quality_refusal(uow.now, order.order_no)
        uow.add(account)


@order_command(c.DeliverOrder)
def deliver_order(order: Order, cmd: c.DeliverOrder, uow: UnitOfWork) -> None:
    order.deliver(uow.now, cmd.signer_relation, uow.policy.return_window_days)


@order_command(c.RequestReturn)
def request_return(order: Order, cmd: c.RequestReturn, uow: UnitOfWork) -> None:
    """A quality return after completion reopens the transaction: its retention moves on
    the subject's stream too (ECL 31)."""
    was_completed = order.completed_at is not None
    order.request_return(
        uow.now, cmd.return_id, cmd.kind, cmd.service_region, cmd.visible_damage_claimed
    )
    if was_completed:
        record_retention(order, uow, case_id=cmd.return_id)


@order_command(c.ReceiveReturn)
def receive_return(order: Order, cmd: c.ReceiveReturn, uow: UnitOfWork) -> None:
    order.receive_return(uow.now, cmd.return_id)


@order_command(c.InspectReturn)
def inspect_return(order: Order, cmd: c.InspectReturn, uow: UnitOfWork) -> None:
    """Coupons come back on a no-reason return unless the policy says otherwise (7D 15)."""
    no_reason = order.open_return is not None and order.open_return["kind"] == "no_reason"
    restore = no_reason and uow.policy.coupons_restored_on_no_reason_return
    policy = "restored (7D art. 15)" if restore else ("kept" if no_reason else "not applicable")
    order.inspect_return(uow.now, cmd.return_id, list(cmd.gifts_returned), policy)
    if restore:
        for code in order.coupons:
            coupon = uow.get(Entitlement, entitlement_id(code))
            if coupon is not None and coupon.consumed_by == order.order_no:
                coupon.restore(uow.now, NO_REASON_COUPON_RULE, NO_REASON_COUPON_RULE)


@order_command(c.RaiseFlag)
def raise_flag(order: Order, cmd: c.RaiseFlag, uow: UnitOfWork) -> None:
    evidence = cmd.evidence.model_dump(exclude_none=True)
    order.raise_flag(uow.now, cmd.flag_id, cmd.criterion, evidence, cmd.automated)


@order_command(c.ReviewFlag)
def review_flag(order: Order, cmd: c.ReviewFlag, uow: UnitOfWork) -> None:
    note = sealed_text(uow, order, "note", cmd.note)
    same_note = same_text(uow.sealer, order.order_no, "note", cmd.note)
    order.review_flag(uow.now, cmd.flag_id, cmd.reviewer_id, cmd.outcome, note, same_note)


@order_command(c.CompleteTransaction)
def complete_transaction(order: Order, cmd: c.CompleteTransaction, uow: UnitOfWork) -> None:
    """The order records its completion; its subject's stream, the retention schedule."""
    order.complete_transaction(uow.now)
    record_retention(order, uow)
