"""Command handlers: the thin service layer between parsed commands and the domain.

Each handler runs every check before it changes anything, so a refusal writes nothing.
"""

from __future__ import annotations

from ledger.handlers import accounts, catalogue, orders, submission
from ledger.unit_of_work import Handler

HANDLERS: dict[str, Handler] = {
    "submit_order": submission.submit_order,
    **orders.HANDLERS,
    **catalogue.HANDLERS,
    **accounts.HANDLERS,
}
