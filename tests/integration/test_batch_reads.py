"""A batch reads the streams its commands need in one query (``streams_read_by``): the group
commit's writer is serial, so every stream read on its own is a round trip that every
command queued behind it waits for (issue 10, item 6)."""

from __future__ import annotations

from typing import Any

import pytest

from ledger.application import CommandResult, Ledger
from tests import builders as b

PRICE_FEN = 399900  # the builders' default order: one PHONE-14


def single_reads(ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every stream the ledger reads outside a batch's bulk read, as it is read."""
    read: list[Any] = []
    get = ledger.app.repository.get

    def counted(aggregate_id: Any, *args: Any, **kwargs: Any) -> Any:
        read.append(aggregate_id)
        return get(aggregate_id, *args, **kwargs)

    monkeypatch.setattr(ledger.app.repository, "get", counted)
    return read


def test_a_batch_of_submissions_and_payments_reads_no_stream_on_its_own(
    ledger_app: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger_app.stream_cache.clear()
    read = single_reads(ledger_app, monkeypatch)
    submitted = ledger_app.execute_batch([(b.submit(f"B{n}"), None) for n in range(8)])
    paid = ledger_app.execute_batch([(b.pay(f"B{n}", PRICE_FEN), None) for n in range(8)])
    assert all(isinstance(r, CommandResult) for r in [*submitted, *paid])
    assert read == []
