"""Exports (issue 13, "Exports"): regulators' export requests with their reference, basis,
scope and status, the production of a request's bag, its download, and the command that
verifies it offline.

Everything goes through the service the HTTP API uses (replay/export_requests.py), so the
console and ``/v1/exports`` agree on who sees what: a regulator sees and produces only the
requests its own key filed (another's is "no such export request", as for an id that does
not exist); auditors and admins see every request and may download its bags (to check what
a regulator received); a bag is produced only by the regulator that filed the request, as
over HTTP. A request recorded with ``ledger export request`` (no API key) is seen by
auditors and admins only. Bags are kept in ``LEDGER_EXPORT_DIR`` and downloaded as a POSIX
tar stream, memory flat whatever their size.
"""

from __future__ import annotations

import re
import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.auth import REGULATOR
from api.console.render import page
from api.console.session import Viewer, checked_form
from api.errors import InvalidParameter
from api.exports import TAR_MEDIA_TYPE, signer_of
from ledger.domain.context import Actor
from ledger.domain.errors import LedgerError
from replay.export_requests import (
    BAG_ID_RE,
    bag_path,
    list_requests,
    produce_bag,
    tar_stream,
)

router = APIRouter()
RequestId = Annotated[str, PathParam(pattern=r"^exp-[0-9a-f]{12}$")]
BagId = Annotated[str, PathParam(pattern=BAG_ID_RE.pattern)]
PAGE_ROWS = 50
# A form's own idempotency key: one per rendered page, so a double submit makes one bag.
ONCE_RE = re.compile(r"[0-9a-f]{32}")


@router.get("/exports")
async def exports(request: Request, actor: Viewer, after: int = 0) -> Any:
    """The export requests this role may see, oldest first, ``PAGE_ROWS`` a page
    (``after``: the log position the previous page ended at)."""
    return await _exports_page(request, actor, max(after, 0), None)


async def _exports_page(
    request: Request, actor: Actor, after: int, outcome: dict[str, Any] | None
) -> Any:
    def listed() -> tuple[list[Any], int | None]:
        with request.app.state.readers.probe.runtime() as rt:
            return list_requests(request.app.state.ledger, rt, actor, after, PAGE_ROWS)

    found, next_after = await run_in_threadpool(listed)
    return page(request, "exports.html", requests=found, next_after=next_after,
                outcome=outcome, once=secrets.token_hex(16),
                may_produce=actor.role == REGULATOR)  # fmt: skip


@router.post("/exports/{request_id}/write")
async def write(request: Request, request_id: RequestId, actor: Viewer) -> Any:
    """Produce the request's bag from the latest checkpoint (recorded as ``export/Written``
    under this key); the form's ``once`` field is the idempotency key."""
    form = await checked_form(request)
    once = form.get("once", "")
    if not ONCE_RE.fullmatch(once):
        raise InvalidParameter("once", "must be the form's own 32 hex digits: reload the page")
    config = request.app.state.exports

    def run() -> dict[str, Any]:
        with request.app.state.readers.probe.runtime() as rt:
            bag, _ = produce_bag(request.app.state.ledger, rt, actor, request_id,
                                 signer_of(config), config.export_dir, once)  # fmt: skip
        return {"ok": True, "request_id": request_id, "counts": bag.counts,
                "checkpoint_size": bag.checkpoint_size}  # fmt: skip

    try:
        outcome = await run_in_threadpool(run)
    except LedgerError as exc:
        outcome = {"ok": False, "code": exc.code, "message": exc.message}
    return await _exports_page(request, actor, 0, outcome)


@router.get("/exports/{request_id}/bags/{bag_id}")
async def bag(request: Request, request_id: RequestId, bag_id: BagId, actor: Viewer) -> Any:
    """A bag of a request this role may see, as ``<request>-<bag>.tar``."""
    config = request.app.state.exports
    ledger = request.app.state.ledger
    path = await run_in_threadpool(bag_path, ledger, config.export_dir, request_id, bag_id, actor)
    name = f"{request_id}-{bag_id[:12]}"
    headers = {"Content-Disposition": f'attachment; filename="{name}.tar"',
               "Cache-Control": "no-store"}  # fmt: skip
    return StreamingResponse(tar_stream(path, name), media_type=TAR_MEDIA_TYPE, headers=headers)
