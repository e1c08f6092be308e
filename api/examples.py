"""Request-body examples for the OpenAPI document: one real command of each type.

Taken from the demo's traffic (ledger/demo/traffic.py), which walks every path of the
agreement with made-up people, so an example is a command the ledger has actually been
sent; the few types the demo never sends are written here. A test checks that every
example is a valid body of its route.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from ledger.demo.traffic import MIN_ORDERS_FOR_EVERY_PATH, generate_traffic

ENVELOPE = ("type", "command_id")
WRITTEN: dict[str, dict[str, Any]] = {
    "notify_user": {"order_no": "demo1-000003", "subject": "stock delayed", "clause": "3.1.5"},
    "restore_entitlement": {"code": "C-SPRING-0001", "rule": "restored after a return"},
    "terminate_account": {"account_no": "acct-1", "ground": "6.1(7)"},
    "place_legal_hold": {
        "subject_id": "acct-1",
        "reference": "CASE-2026-0042",
        "reason": "dispute",
    },
    "release_legal_hold": {"subject_id": "acct-1", "reference": "CASE-2026-0042"},
    "request_erasure": {"subject_id": "acct-1", "reference": "PIPL-REQ-2026-0007"},
}


@cache
def body_examples() -> dict[str, dict[str, Any]]:
    """The body (command less its envelope) of the first command of each type."""
    found: dict[str, dict[str, Any]] = {}
    for command, _at in generate_traffic(MIN_ORDERS_FOR_EVERY_PATH, seed=1):
        kind = str(command["type"])
        if kind not in found:
            found[kind] = {k: v for k, v in command.items() if k not in ENVELOPE}
    return {**WRITTEN, **found}
