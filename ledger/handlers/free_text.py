"""Free text a person typed, sealed before it reaches an event (issue 11, items 5 and 7;
PIPL 4: whatever a person types may identify someone): under the main key of the data subject
whose data it may carry, bound to its stream and field (ledger/sealing.py)."""

from __future__ import annotations

from collections.abc import Callable

from ledger.domain.free_text import LEGACY_CLEAR_TEXT
from ledger.sealing import Sealer, SubjectErased


def seal_text(sealer: Sealer, subject_id: str, stream: str, field: str, text: str) -> str:
    """``text`` sealed under ``subject_id``'s main key, bound to ``stream`` and ``field``;
    "" stays "". For a subject already erased the text is not kept at all ("") rather than
    refused: the command's facts still count."""
    if not text:
        return ""
    try:
        return sealer.seal(subject_id, field, text, stream=stream)
    except SubjectErased:
        return ""


def same_text(sealer: Sealer, stream: str, field: str, typed: str) -> Callable[[str], bool]:
    """Whether a recorded free-text ``field`` of ``stream`` ("", a version 1 text marked
    ``LEGACY_CLEAR_TEXT``, or a token) holds ``typed``: a repeat is told by its text, since
    each sealing draws a new nonce. An erased text reads ``[erased]`` and matches nothing typed.
    Raises SealInvalid for a token that is not this stream's and field's."""

    def same(stored: str) -> bool:
        if not stored or stored.startswith(LEGACY_CLEAR_TEXT):
            return stored.removeprefix(LEGACY_CLEAR_TEXT) == typed
        return sealer.unseal(stored, field, stream=stream) == typed

    return same
