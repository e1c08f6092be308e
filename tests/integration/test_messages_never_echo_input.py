"""No error message carries a value or key taken from the input beyond the documented
identifiers, order number and command id (issue 8, case 14).

Personal data goes into every position of every command (tests/pii_inputs.py, generated from
the models) and through the rules with personal data in the identifiers they check (an account
number, coupon and F-codes, SKUs, methods, consent, refund, flag and return ids); every refusal's
message, repr and dict are scanned. On both backends.
"""

from __future__ import annotations

from typing import Any

from ledger.application import Ledger
from ledger.domain.errors import LedgerError
from tests import builders as b
from tests.fix_app import CLOCK_START
from tests.pii_inputs import NAME, PHONE, commands_with_personal_data, echoed

# Identifiers that pass every pattern and carry a mobile number.
ACCOUNT = PHONE
SKU = f"SKU-{PHONE}"
COUPON, F_CODE = f"C-{PHONE}", f"F-{PHONE}"
METHOD = f"pay-{PHONE}"


def outcome(ledger: Ledger, command: dict[str, Any]) -> LedgerError | None:
    try:
        ledger.execute(command)
    except LedgerError as refusal:
        return refusal
    return None


def texts_of(refusal: LedgerError) -> list[str]:
    return [str(refusal), repr(refusal), *refusal.as_dict().values()]


def paid_order(ledger: Ledger, order_no: str, **over: Any) -> None:
    ledger.execute(b.submit(order_no, **over))
    ledger.execute(b.pay(order_no))


def test_personal_data_in_any_field_or_key_is_never_echoed(ledger_app: Ledger) -> None:
    paid_order(ledger_app, "O-PAID")
    paid_order(ledger_app, "O-DONE")
    ledger_app.execute(b.ship("O-DONE"))
    ledger_app.execute(b.deliver("O-DONE"))
    leaks: list[tuple[str, str, list[str]]] = []
    codes: set[str] = set()

    for order_no in ("O-PAID", "O-DONE"):
        for where, command in commands_with_personal_data(order_no):
            refusal = outcome(ledger_app, command)
            if refusal is not None:
                codes.add(refusal.code)
                if found := echoed(texts_of(refusal)):
                    leaks.append((where, refusal.code, found))

    assert not leaks
    assert {"INVALID_COMMAND", "SKU_NOT_IN_ORDER"} <= codes, codes


# Each step: a command, and the code it must be refused with (None: it must be accepted).
def rule_steps() -> list[tuple[dict[str, Any], str | None]]:
    line = {"sku": SKU, "quantity": 1, "unit_price_fen": 399900}
    limit = {"sku": SKU, "limit_qty": 1, "period_days": 30, "valid_from": CLOCK_START.isoformat()}
    mine = {"account_no": ACCOUNT, "lines": [line]}
    stranger = {
        **b.CONTACT,
        "phone": "13900001111",
        "address": "上海市徐汇区漕溪北路1号",
        "ip": "198.51.100.9",
    }
    other_sku = {"sku": "OTHER", "quantity": 1, "unit_price_fen": 100}
    o1 = "O-1"
    return [
        (b.other("define_purchase_limit", **limit), None),
        (b.issue(COUPON, holder_account=ACCOUNT), None),
        (b.issue(COUPON), "ENTITLEMENT_EXISTS"),
        (b.issue(F_CODE, kind="f_code", sku=SKU), None),
        (b.issue(f"F2-{PHONE}", kind="f_code", sku=None), "F_CODE_NEEDS_SKU"),
        (b.issue(f"H-{PHONE}", holder_account=f"a-{PHONE}"), None),
        (b.issue(f"X-{PHONE}", valid_until="2020-01-01T00:00:00+08:00"), None),
        (
            b.submit(
                o1,
                **mine,
                coupons=[COUPON],
                f_codes=[F_CODE],
                gifts=[{"gift_id": f"G-{PHONE}", "sku": f"GS-{PHONE}", "price_fen": 100}],
            ),
            None,
        ),
        (b.submit("O-2", **mine), "PURCHASE_LIMIT_EXCEEDED"),
        (b.submit("O-3", lines=[other_sku], coupons=[COUPON]), "ENTITLEMENT_ALREADY_CONSUMED"),
        (b.submit("O-3", lines=[other_sku], coupons=[f"H-{PHONE}"]), "ENTITLEMENT_NOT_HELD"),
        (b.submit("O-3", lines=[other_sku], coupons=[f"X-{PHONE}"]), "ENTITLEMENT_EXPIRED"),
        (b.submit("O-3", lines=[other_sku], f_codes=[F_CODE]), "ENTITLEMENT_ALREADY_CONSUMED"),
        (b.submit("O-3", lines=[other_sku], coupons=[f"N-{PHONE}"]), "ENTITLEMENT_NOT_FOUND"),
        (b.submit("O-3", lines=[other_sku], promotion_nos=[f"P-{PHONE}"]), "PROMOTION_NOT_FOUND"),
        (
            b.submit(
                "O-3",
                lines=[{**other_sku, "sku": f"D-{PHONE}", "discount_fen": 101}],
                contact=stranger,
            ),
            "DISCOUNT_EXCEEDS_PRICE",
        ),
        (b.other("restore_entitlement", code=F_CODE, rule="r"), "F_CODE_NOT_RESTORABLE"),
        (b.other("restore_entitlement", code=f"N-{PHONE}", rule="r"), "NOT_FOUND"),
        (b.other("restore_entitlement", code=COUPON, rule="r"), "ENTITLEMENT_NOT_FORFEITED"),
        (b.pay(o1, amount_fen=399901, method=METHOD, payer_account=NAME), "OVERPAYMENT"),
        (b.pay(o1, method=METHOD, payer_account=NAME), None),
        (b.order_cmd("declare_stock_shortage", o1, skus=[f"Y-{PHONE}"]), "SKU_NOT_IN_ORDER"),
        (
            b.order_cmd(
                "detect_price_error",
                o1,
                sku=f"Y-{PHONE}",
                displayed_price_fen=1,
                correct_price_fen=2,
                cause=NAME,
            ),
            "SKU_NOT_IN_ORDER",
        ),
        (b.order_cmd("initiate_refund", o1, method=METHOD, amount_fen=10**9), "OVER_REFUND"),
        (
            b.order_cmd(
                "initiate_refund", o1, method=METHOD, amount_fen=1, consent_id=f"K-{PHONE}"
            ),
            "REFUND_DESTINATION_NOT_CONSENTED",
        ),
        (b.order_cmd("complete_refund", o1, refund_id=f"R-{PHONE}"), "REFUND_NOT_PENDING"),
        (
            b.order_cmd(
                "raise_flag",
                o1,
                flag_id=f"FL-{PHONE}",
                criterion=1,
                evidence={"signals": [PHONE]},
                automated=True,
            ),
            None,
        ),
        (
            b.order_cmd(
                "raise_flag",
                o1,
                flag_id=f"FL-{PHONE}",
                criterion=1,
                evidence={"signals": [PHONE]},
                automated=True,
            ),
            "FLAG_EXISTS",
        ),
        (
            b.order_cmd(
                "review_flag", o1, flag_id=f"NF-{PHONE}", reviewer_id=PHONE, outcome="dismissed"
            ),
            "FLAG_NOT_FOUND",
        ),
        (
            b.order_cmd(
                "close_order", o1, ground="abnormal_order", evidence={"flag_id": f"FL-{PHONE}"}
            ),
            "FLAG_NOT_REVIEWED",
        ),
        (
            b.order_cmd(
                "close_order", o1, ground="abnormal_order", evidence={"flag_id": f"NF-{PHONE}"}
            ),
            "FLAG_NOT_FOUND",
        ),
        (b.order_cmd("ship_order", o1, carrier=f"SF-{PHONE}", tracking_no=f"T-{PHONE}"), None),
        (b.deliver(o1, signer_relation=f"S-{PHONE}"), "SIGNER_NOT_AUTHORISED"),
        (b.deliver(o1), None),
        (b.order_cmd("receive_return", o1, return_id=f"RT-{PHONE}"), "NO_OPEN_RETURN"),
        (b.other("restrict_account", account_no=ACCOUNT, ground="6.1(1)"), None),
        (
            b.other("restrict_account", account_no=ACCOUNT, ground="6.1(1)"),
            "ACCOUNT_ALREADY_RESTRICTED",
        ),
        (b.submit("O-4", account_no=ACCOUNT, lines=[other_sku]), "ACCOUNT_RESTRICTED"),
        (
            b.other("decide_open_order", account_no=f"a-{PHONE}", order_no=o1, disposition="close"),
            "ORDER_NOT_OF_ACCOUNT",
        ),
        (
            b.other("terminate_account", account_no=f"a-{PHONE}", ground="6.1(5)"),
            "REFUSAL_THRESHOLD_NOT_MET",
        ),
    ]


def test_rule_messages_never_echo_account_numbers_codes_skus_methods_or_ids(
    ledger_app: Ledger,
) -> None:
    for step, (command, code) in enumerate(rule_steps()):
        refusal = outcome(ledger_app, command)
        assert (refusal.code if refusal else None) == code, (step, refusal)
        if refusal is not None:
            assert not echoed(texts_of(refusal)), (step, refusal)


def test_an_erased_subject_is_not_named_by_its_account_number(ledger_app: Ledger) -> None:
    ledger_app.execute(b.submit("O-E", account_no=ACCOUNT))
    ledger_app.keystore.destroy(ACCOUNT, CLOCK_START)

    refusal = outcome(ledger_app, b.submit("O-F", account_no=ACCOUNT))

    assert refusal is not None and refusal.code == "SUBJECT_ERASED"
    assert not echoed(texts_of(refusal))
