"""Every projection, by name; ``select`` turns CLI names into projections."""

from __future__ import annotations

from collections.abc import Sequence

from ledger.domain.errors import InvalidCommand
from projections.base import Projection
from projections.views import entitlements, flags, limits, orders, payments, retention

PROJECTIONS: tuple[Projection, ...] = (
    orders.PROJECTION,
    entitlements.PROJECTION,
    limits.PROJECTION,
    flags.PROJECTION,
    payments.PROJECTION,
    retention.PROJECTION,
)
BY_NAME = {p.name: p for p in PROJECTIONS}


def select(names: Sequence[str] | None = None) -> list[Projection]:
    """The named projections in registry order; all of them for no names."""
    if not names:
        return list(PROJECTIONS)
    unknown = sorted(set(names) - set(BY_NAME))
    if unknown:
        raise InvalidCommand(
            "NAME", f"unknown projection {', '.join(unknown)}; known: {', '.join(BY_NAME)}"
        )
    return [p for p in PROJECTIONS if p.name in set(names)]
