"""Exports (issue 13, "Exports"): regulators' export requests with their reference, basis,
scope and status, the writing of a request's bag, its download, and the command that
verifies it offline.

Requests are read from the log (``export/Requested`` rows, one scan by topic; there is no
read model of them yet) and each request's stream (replay/export.py ``load_request``). A
regulator sees only the requests its own key filed (the ``actor`` recorded on the request);
**the gap**: a request records the authority as text and the key that filed it, not which
regulator key speaks for that authority, so a request recorded with ``ledger export request``
(no key) is shown to auditors and admins only. Bags are written by ``write_export`` into the
console's export directory (``<LEDGER_CHECKPOINT_DIR>/../exports``, one directory per
request and checkpoint) and downloaded as a ``.tar.gz`` of the bag.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api.auth import REGULATOR
from api.console.render import page
from api.console.session import Viewer, checked_form
from api.console.settings import ConsoleSettings
from ledger.domain.context import Actor
from ledger.domain.errors import LedgerError, NotFound
from ledger.domain.export_request import ExportRequest, ExportRequested
from ledger.driver_errors import storage_errors
from replay.export import load_request, write_export
from replay.signing_key import load_signer

router = APIRouter()
RequestId = Annotated[str, PathParam(pattern=r"^exp-[0-9a-f]{12}$")]
SCAN_ROWS = 10_000
REQUESTED: str = ExportRequested.TOPIC  # type: ignore[attr-defined]  # set by @topic


def _requests(request: Request) -> list[dict[str, Any]]:
    """Every export request: its fields, who filed it, its exports."""
    ledger = request.app.state.ledger
    found = []
    readers = request.app.state.readers
    with storage_errors(), readers.probe.runtime() as rt, rt.db.snapshot() as cur:
        head, after, streams = rt.db.head(cur), 0, []
        while after < head:
            last = min(head, after + SCAN_ROWS)
            rows = rt.db.fetch_topics(cur, after, last, [REQUESTED])
            streams += [row.stream for row in rows]
            after = last
    for stream in streams:
        first: Any = next(iter(ledger.app.events.get(UUID(stream), lte=1)))
        filed: ExportRequest = ledger.app.repository.get(UUID(stream))
        found.append({**_fields(filed), "filed_by": dict(first.actor)})
    return found


def _fields(filed: ExportRequest) -> dict[str, Any]:
    scope = {k: v for k, v in filed.scope.items() if v is not None}
    return {"request_id": filed.request_id, "authority": filed.authority,
            "reference": filed.reference, "basis": filed.basis, "scope": scope,
            "personal_data": filed.personal_data, "exports": filed.exports}  # fmt: skip


def _visible(actor: Actor, filed: dict[str, Any]) -> bool:
    """A regulator sees the requests its own key filed; the other roles see all."""
    return actor.role != REGULATOR or filed["filed_by"].get("key_id") == actor.key_id


def _bag_dir(settings: ConsoleSettings, request_id: str) -> Path | None:
    """The newest bag this server wrote for the request, if any."""
    written = sorted(settings.export_dir.glob(f"{request_id}-*"), key=lambda p: p.stat().st_mtime)
    return written[-1] if written else None


@router.get("/exports")
async def exports(request: Request, actor: Viewer) -> Any:
    """The export requests this role may see, newest last."""
    return await _exports_page(request, actor, None)


async def _exports_page(request: Request, actor: Actor, outcome: dict[str, Any] | None) -> Any:
    settings: ConsoleSettings = request.app.state.console
    listed = [r for r in await run_in_threadpool(_requests, request) if _visible(actor, r)]
    for filed in listed:
        bag = _bag_dir(settings, filed["request_id"])
        filed["bag"] = None if bag is None else bag.name
    return page(request, "exports.html", requests=listed, outcome=outcome)


def _own(request: Request, actor: Actor, request_id: str) -> ExportRequest:
    """The request if this role may see it; ``NotFound`` otherwise (never saying which)."""
    filed = load_request(request.app.state.ledger, request_id)
    first: Any = next(iter(request.app.state.ledger.app.events.get(filed.id, lte=1)))
    if not _visible(actor, {"filed_by": dict(first.actor)}):
        raise NotFound("no such export request")
    return filed


@router.post("/exports/{request_id}/write")
async def write(request: Request, request_id: RequestId, actor: Viewer) -> Any:
    """Write the request's bag from the latest checkpoint (recorded as ``export/Written``)."""
    await checked_form(request)
    settings: ConsoleSettings = request.app.state.console
    ledger = request.app.state.ledger

    def run() -> dict[str, Any]:
        filed = _own(request, actor, request_id)
        out = settings.export_dir / f"{request_id}-{len(filed.exports) + 1}"
        signer = load_signer(settings.signing_key_path, settings.log_name, create=False)
        with request.app.state.readers.probe.runtime() as rt:
            report = write_export(ledger, rt, request_id, out, signer, actor)
        return {"ok": True, "request_id": request_id, "counts": report.counts,
                "checkpoint_size": report.checkpoint_size}  # fmt: skip

    try:
        outcome = await run_in_threadpool(run)
    except LedgerError as exc:
        outcome = {"ok": False, "code": exc.code, "message": exc.message}
    except FileNotFoundError:
        message = "this ledger has no signing key: run `ledger seal` first"
        outcome = {"ok": False, "code": "NOT_FOUND", "message": message}
    return await _exports_page(request, actor, outcome)


@router.get("/exports/{request_id}/bag")
async def bag(request: Request, request_id: RequestId, actor: Viewer) -> Response:
    """The newest bag of the request as ``<bag>.tar.gz``."""
    settings: ConsoleSettings = request.app.state.console

    def pack() -> tuple[str, bytes]:
        _own(request, actor, request_id)
        found = _bag_dir(settings, request_id)
        if found is None:
            raise NotFound("no bag of this request is written yet: write it first")
        packed = io.BytesIO()
        with tarfile.open(fileobj=packed, mode="w:gz") as archive:
            archive.add(found, arcname=found.name)
        return found.name, packed.getvalue()

    name, data = await run_in_threadpool(pack)
    headers = {"Content-Disposition": f'attachment; filename="{name}.tar.gz"',
               "Cache-Control": "no-store"}  # fmt: skip
    return Response(data, media_type="application/gzip", headers=headers)
