"""Mainland China test for after-sales and sale (3.3.3): ISO 3166-2 region codes."""

from __future__ import annotations

# Hong Kong, Macao and Taiwan have CN- subdivision codes but are outside the mainland.
_OUTSIDE_MAINLAND = frozenset({"CN-HK", "CN-MO", "CN-TW", "CN-71", "CN-91", "CN-92"})


def is_mainland(region_code: str) -> bool:
    code = region_code.strip().upper()
    return code.startswith("CN-") and code not in _OUTSIDE_MAINLAND
