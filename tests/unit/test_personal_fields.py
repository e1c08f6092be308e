"""Which command fields are personal (the ``Personal`` marker, issue 11 item 5), account numbers
that would be personal data themselves, and version 1 free text read through its upcaster."""

from __future__ import annotations

from typing import Any

import pytest

from ledger.commands import ACCOUNT_RULE, parse_command
from ledger.domain.entitlement import EntitlementRestored
from ledger.domain.errors import InvalidCommand
from ledger.domain.free_text import LEGACY_CLEAR_TEXT
from ledger.domain.order import events as ev
from ledger.domain.promotion import PromotionDefined, PromotionRevised
from ledger.payload_digest import blanked_sha256, personal_fields
from tests.builders import order_cmd, pay, submit


@pytest.mark.parametrize(
    "account_no", ["13912345678", "008613912345678", "8613912345678", "li.lei@example.com"]
)
def test_an_account_number_that_is_a_phone_or_email_is_refused(account_no: str) -> None:
    with pytest.raises(InvalidCommand) as caught:
        parse_command(submit("P-1", account_no=account_no))
    assert caught.value.message == f"submit_order.account_no: {ACCOUNT_RULE}"
    assert account_no not in caught.value.message


@pytest.mark.parametrize("account_no", ["acct-1", "1391234567", "user@host", "M-2024-000017"])
def test_opaque_account_numbers_are_taken(account_no: str) -> None:
    assert parse_command(submit("P-1", account_no=account_no)).account_no == account_no  # type: ignore[attr-defined]


def test_a_legal_hold_on_a_phone_number_as_subject_is_refused() -> None:
    hold = {
        "type": "place_legal_hold",
        "command_id": "h-1",
        "subject_id": "13912345678",
        "reference": "case-1",
        "reason": "dispute",
    }
    with pytest.raises(InvalidCommand):
        parse_command(hold)


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (
            submit("P-1"),
            {"contact.recipient_name", "contact.phone", "contact.address", "contact.ip"},
        ),
        (pay("P-1"), {"payer_account"}),
        (order_cmd("cancel_order", "P-1", reason="x"), {"reason"}),
        (
            order_cmd("review_flag", "P-1", flag_id="f", reviewer_id="r", outcome="dismissed"),
            {"note"},
        ),
        (
            order_cmd(
                "detect_price_error",
                "P-1",
                sku="s",
                displayed_price_fen=1,
                correct_price_fen=2,
                cause="c",
            ),
            {"cause"},
        ),
    ],
)
def test_personal_fields_are_found_by_their_marker(
    command: dict[str, Any], expected: set[str]
) -> None:
    assert set(personal_fields(parse_command(command))) == expected


def test_the_unkeyed_digest_does_not_depend_on_personal_fields() -> None:
    first = parse_command(submit("P-1"))
    other_phone = parse_command(
        submit("P-1", contact={**first.contact.model_dump(), "phone": "13800000000"})
    )  # type: ignore[attr-defined]
    other_sku = parse_command(
        submit("P-1", lines=[{"sku": "X", "quantity": 1, "unit_price_fen": 1}])
    )
    assert blanked_sha256(first) == blanked_sha256(other_phone)
    assert blanked_sha256(first) != blanked_sha256(other_sku)


@pytest.mark.parametrize(
    ("event", "field"),
    [
        (ev.CancelledByUser, "reason"),
        (ev.MutualTerminationRequested, "reason"),
        (ev.MutualTerminationDeclined, "reason"),
        (ev.UserNotified, "subject"),
        (ev.PriceErrorDetected, "cause"),
        (ev.DeliveryRefused, "reason"),
        (ev.AbnormalOrderFlagReviewed, "note"),
        (EntitlementRestored, "rule"),
        (PromotionDefined, "description"),
        (PromotionRevised, "description"),
    ],
)
def test_version_1_free_text_reads_back_marked_as_clear(event: Any, field: str) -> None:
    assert event.class_version == 2
    state: dict[str, Any] = {field: "typed in clear"}
    event.upcast_v1_v2(state)
    assert state[field] == LEGACY_CLEAR_TEXT + "typed in clear"
    empty: dict[str, Any] = {field: ""}
    event.upcast_v1_v2(empty)
    assert empty[field] == ""
