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
from tests.pii_inputs import ACCOUNT, commands_with_personal_data, echoed, rule_steps


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


def test_rule_messages_never_echo_account_numbers_codes_skus_methods_or_ids(
    ledger_app: Ledger,
) -> None:
    for step, (command, code) in enumerate(rule_steps(CLOCK_START)):
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
