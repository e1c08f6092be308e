"""Assertions the integration tests share: accepted, refused-and-nothing-written, streams."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from ledger.application import CommandResult, Ledger
from ledger.domain.context import LOCAL_ACTOR
from ledger.domain.errors import LedgerError
from ledger.domain.export_request import ExportScope
from ledger.domain.ids import order_id
from ledger.domain.order.events import RefundInitiated
from projections.engine import Runtime
from replay.export import request_export, write_export
from replay.seal import seal
from replay.signed_note import Signer

EXPORT_ORIGIN = "mall-ledger.test/log"


def run(ledger: Ledger, command: dict[str, Any]) -> CommandResult:
    """Execute an accepted command and check the result is a read-your-writes position."""
    result = ledger.execute(command)
    assert not result.duplicate
    assert result.position == ledger.head_position()
    return result


def refused(ledger: Ledger, command: dict[str, Any], code: str, clause: str) -> LedgerError:
    """The command is refused with ``code`` citing ``clause``, and nothing is written."""
    head = ledger.head_position()
    with pytest.raises(LedgerError) as caught:
        ledger.execute(command)
    assert (caught.value.code, caught.value.clause) == (code, clause), repr(caught.value)
    assert ledger.head_position() == head, "a refused command wrote events"
    return caught.value


def stream(ledger: Ledger, order_no: str) -> list[Any]:
    return list(ledger.app.events.get(order_id(order_no)))


def events_of(ledger: Ledger, stream_key: str | UUID, cls: type) -> list[Any]:
    """Events of one class in a stream, named by order number or stream id."""
    stream_uuid = order_id(stream_key) if isinstance(stream_key, str) else stream_key
    return [e for e in ledger.app.events.get(stream_uuid) if isinstance(e, cls)]


def only(events: list[Any], kind: type) -> Any:
    found = [e for e in events if isinstance(e, kind)]
    assert len(found) == 1, f"expected one {kind.__name__}, found {len(found)}"
    return found[0]


def count(events: list[Any], kind: type) -> int:
    return sum(isinstance(e, kind) for e in events)


def refunds_by_method(events: list[Any]) -> dict[str, int]:
    """Fen sent back (initiated) per payment method."""
    found: dict[str, int] = {}
    for event in events:
        if isinstance(event, RefundInitiated):
            found[event.method] = found.get(event.method, 0) + event.amount_fen
    return found


def export_text(ledger: Ledger, rt: Runtime, out: Path) -> str:
    """A regulator's export of acct-1 whose basis requires personal data: every file's text."""
    signer = Signer(EXPORT_ORIGIN, Signer.generate(EXPORT_ORIGIN).private_key)
    seal(ledger, rt, signer, None, LOCAL_ACTOR)
    scope = ExportScope(account="acct-1")
    request_id = request_export(ledger, LOCAL_ACTOR, "SAMR", "REF-1", "ECL 25", scope, True)
    write_export(ledger, rt, request_id, out, signer, LOCAL_ACTOR)
    return "".join(p.read_text() for p in out.rglob("*") if p.is_file() and p.suffix != ".bin")
