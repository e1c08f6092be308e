"""Free text a person typed, in events (issue 11, items 5 and 7; PIPL 4: whatever a person types
may identify someone).

From its event's version 2 on, such a field holds "" or a token sealed under a data subject's
main key and bound to its stream and field (ledger/sealing.py). Version 1 stored the text in
clear; its upcaster marks that text with ``LEGACY_CLEAR_TEXT``, which no token starts with, so
readers tell the two apart and never show old clear text as if it were sealed.
"""

from __future__ import annotations

from typing import Any

LEGACY_CLEAR_TEXT = "clear:"


def mark_clear_text(state: dict[str, Any], field: str) -> None:
    """In a version 1 event's ``state``: prefix the clear text of ``field`` (if any) with
    ``LEGACY_CLEAR_TEXT``; "" stays ""."""
    if state.get(field):
        state[field] = LEGACY_CLEAR_TEXT + state[field]
