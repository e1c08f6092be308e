"""Integrity (issue 13, "Integrity"): the kept checkpoints with their size, root and
signature status, an event's inclusion proof (shown and downloadable), a consistency proof
between two checkpoints, and "verify now".

Proofs are the API's (api/history.py: replay/prove.py); a checkpoint's signature is checked
with this ledger's own verifier key (``LEDGER_SIGNING_KEY``'s public half) and origin.
"Verify now" runs ``ledger verify``'s library call (replay/verify.py) in a worker thread and
streams the page as it goes: a line per 10,000 rows checked (the progress), then the result,
with the first bad position if the log is not intact. No script: the browser renders the
chunked page as it arrives.
"""

from __future__ import annotations

import asyncio
import base64
import queue
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.console.access import CONSOLE_ROLES
from api.console.render import CSP, TEMPLATES, page
from api.console.session import Viewer, checked_form
from api.exports import ExportConfig
from api.history import MAX_POSITION
from ledger.domain.errors import LedgerError
from replay.checkpoint import Checkpoint, open_checkpoint
from replay.prove import prove_consistency, prove_inclusion
from replay.signed_note import NoteInvalid, Verifier, split_note
from replay.signing_key import load_signer
from replay.tiles import TileStore
from replay.verify import verify

router = APIRouter()
Size = Annotated[int | None, Query(ge=1, le=MAX_POSITION)]
DONE = -1
MARK = "<!-- stream -->"


def _runtime(request: Request) -> Any:
    return request.app.state.readers.probe.runtime()


def own_verifier(settings: ExportConfig) -> Verifier | None:
    """This ledger's verifier key, or None if it has no signing key yet (never made here)."""
    try:
        return load_signer(settings.signing_key_path, settings.log_name, create=False).verifier()
    except (OSError, NoteInvalid):
        return None


def _checkpoints(request: Request) -> list[dict[str, Any]]:
    """Every kept checkpoint: size, base64 root, and whether its signature is this ledger's."""
    settings: ExportConfig = request.app.state.exports
    verifier = own_verifier(settings)
    with _runtime(request) as rt, rt.db.snapshot() as cur:
        store = TileStore(rt.db)
        kept = store.checkpoints(cur) if store.exists(cur) else []
    rows = []
    for size, note in kept:
        root = base64.b64encode(Checkpoint.parse(split_note(note)[0]).root_hash).decode()
        try:
            if verifier is None:
                raise NoteInvalid("this ledger has no signing key to check it with")
            open_checkpoint(note, [verifier], settings.log_name)
            signature = None
        except NoteInvalid as exc:
            signature = exc.message
        rows.append({"size": size, "root": root, "signature": signature, "note": note})
    return rows


@router.get("/integrity")
async def integrity(
    request: Request,
    actor: Viewer,
    position: Annotated[int | None, Query(ge=1, le=MAX_POSITION)] = None,
    size: Size = None,
    old_size: Size = None,
    new_size: Size = None,
) -> Any:
    """Checkpoints; with ``position`` its inclusion proof (against ``size``, default the
    latest); with ``old_size`` and ``new_size`` the consistency proof between them."""

    def read() -> dict[str, Any]:
        found: dict[str, Any] = {"checkpoints": _checkpoints(request)}
        found["inclusion"] = found["consistency"] = found["problem"] = None
        try:
            if position is not None:
                with _runtime(request) as rt:
                    proof = prove_inclusion(rt, position, size)
                found["inclusion"] = {"position": position, "index": proof.index,
                                      "text": proof.text()}  # fmt: skip
            if old_size is not None and new_size is not None:
                with _runtime(request) as rt:
                    made = prove_consistency(rt, old_size, new_size)
                hashes = [base64.b64encode(h).decode() for h in made.hashes]
                found["consistency"] = {"old": made.old_size, "new": made.new_size,
                                        "hashes": hashes}  # fmt: skip
        except LedgerError as exc:  # shown beside the forms, the checkpoints still listed
            found["problem"] = {"code": exc.code, "message": exc.message}
        return found

    found = await run_in_threadpool(read)
    may_verify = actor.role in CONSOLE_ROLES["POST /console/integrity/verify"]
    asked = {"position": position or "", "size": size or "", "old_size": old_size or "",
             "new_size": new_size or ""}  # fmt: skip
    return page(request, "integrity.html", may_verify=may_verify, asked=asked, **found)


@router.get("/integrity/inclusion/{position}")
async def inclusion_file(
    request: Request,
    actor: Viewer,
    position: Annotated[int, Path(ge=1, le=MAX_POSITION)],
    size: Size = None,
) -> Response:
    """The inclusion proof as a file (``tlog-proof@v1`` text), as ``ledger prove`` prints it."""

    def prove() -> str:
        with _runtime(request) as rt:
            return prove_inclusion(rt, position, size).text()

    text = await run_in_threadpool(prove)
    disposition = f'attachment; filename="position-{position}.tlog-proof"'
    return Response(text, media_type="text/plain; charset=utf-8",
                    headers={"Content-Disposition": disposition})  # fmt: skip


@router.post("/integrity/verify")
async def verify_now(request: Request, actor: Viewer) -> StreamingResponse:
    """Verify the whole log now, the page streamed as the rows are checked."""
    await checked_form(request)
    settings: ExportConfig = request.app.state.exports
    verifier = own_verifier(settings)
    progress: queue.Queue[int] = queue.Queue()

    def run() -> Any:
        try:
            with _runtime(request) as rt:
                verifiers = [] if verifier is None else [verifier]
                return verify(rt, verifiers, settings.log_name, (), progress.put)
        finally:
            progress.put(DONE)

    # The page around the stream, rendered once and cut where the progress and the result go.
    frame = page(request, "verify.html", has_key=verifier is not None, mark=MARK).body
    head, between, tail = bytes(frame).decode().split(MARK)
    fragment = TEMPLATES.get_template("verify_result.html")

    async def body() -> AsyncIterator[str]:
        yield head
        job = asyncio.get_running_loop().run_in_executor(None, run)
        while (rows := await run_in_threadpool(progress.get)) != DONE:
            yield fragment.render(rows=rows)
        report = await job
        yield between + fragment.render(report=report.as_dict()) + tail

    headers = {"Cache-Control": "no-store", "Content-Security-Policy": CSP,
               "X-Content-Type-Options": "nosniff"}  # fmt: skip
    return StreamingResponse(body(), media_type="text/html; charset=utf-8", headers=headers)
