"""Personal data (issue 13, "Personal data"): a data subject's lifecycle and retention trail
(the API's trail readers: auditors and admins), and the admin's forms: place and release a
legal hold, request an erasure (and see why it was refused or deferred), make an
access-request copy.

The forms send the ledger's own commands (``place_legal_hold``, ``release_legal_hold``,
``request_erasure``) through the API's writer (ledger/group_commit.py) as
``POST /v1/subjects/…`` does, each with a command id of its own (``console-…``), and the
access copy is ``access_copy_content`` (ledger/access_copy.py), recorded as over HTTP. A
refusal (a hold on, a retention running) is shown on the page with its code and message: the
request and its outcome are in the log either way.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from api.auth import ADMIN
from api.console.forms import Form, field
from api.console.render import page
from api.console.session import Viewer, checked_form
from api.queries import AccountFilter, AccountId, KeyFilter, Paging, list_page, one
from api.views import RetentionStep, SubjectRetentionView
from ledger.access_copy import access_copy_content
from ledger.commands import parse_command
from ledger.domain.context import Actor
from ledger.domain.errors import LedgerError, NotFound
from projections import queries as q
from projections.freshness import ProjectionBehind

router = APIRouter()
TRAIL_ROWS = 200


@router.get("/subjects")
async def subjects(request: Request, actor: Viewer, subject_id: str | None = None) -> Any:
    """A data subject's lifecycle now and every step of its personal data."""
    subject = field(subject_id, "subject_id", AccountFilter)
    return await _subject_page(request, actor, subject, None)


async def _subject_page(
    request: Request, actor: Actor, subject: str | None, outcome: dict[str, Any] | None
) -> Any:
    """The subject's page; after a command, read once the retention projection has applied
    it (waiting as a query's ``min_position`` does), else as it stands, with a notice."""
    now, steps, behind = None, [], None
    waited = None if outcome is None else outcome.get("position")
    if subject is not None:
        try:
            try:
                found = await one(request, Response(), ("retention", waited), "data subject",
                                  lambda m: m.subject_retention(subject))  # fmt: skip
            except ProjectionBehind as exc:
                behind = exc.behind
                found = await one(request, Response(), ("retention", None), "data subject",
                                  lambda m: m.subject_retention(subject))  # fmt: skip
            now = SubjectRetentionView.model_validate(found["item"]).model_dump()
            paging = Paging(TRAIL_ROWS, None, None)
            trail = await list_page(request, Response(), q.RETENTION_STEPS,
                                    {"subject_id": subject}, paging)  # fmt: skip
            steps = [RetentionStep.model_validate(r).model_dump() for r in trail["items"]]
        except NotFound:
            now = None  # shown as "nothing recorded"; the admin's forms still work
    return page(request, "subjects.html", subject=subject, now=now, steps=steps,
                outcome=outcome, behind=behind, is_admin=actor.role == ADMIN)  # fmt: skip


async def _send(request: Request, actor: Actor, data: dict[str, Any]) -> dict[str, Any]:
    """Send one command as the API's writer takes it; its outcome for the page."""
    command_id = f"console-{data['type']}-{secrets.token_hex(6)}"
    try:
        command = parse_command({**data, "command_id": command_id})
        writer = request.app.state.writer
        result = await asyncio.wrap_future(writer.submit(command, actor, None))
    except LedgerError as exc:
        return {"what": data["type"], "ok": False, "code": exc.code, "message": exc.message,
                "retain_until": getattr(exc, "retain_until", None)}  # fmt: skip
    return {"what": data["type"], "ok": True, "position": result.position,
            "command_id": command_id}  # fmt: skip


def _reference(form: Form) -> str | None:
    found: str | None = field(form.get("reference"), "reference", KeyFilter)
    return found


@router.post("/subjects/{subject_id}/holds")
async def place_hold(request: Request, subject_id: AccountId, actor: Viewer) -> Any:
    """Place a legal hold (PIPL 47) under a reference, for a dispute or an investigation."""
    form = await checked_form(request)
    data = {"type": "place_legal_hold", "subject_id": subject_id,
            "reference": _reference(form), "reason": form.get("reason")}  # fmt: skip
    return await _subject_page(request, actor, subject_id, await _send(request, actor, data))


@router.post("/subjects/{subject_id}/holds/release")
async def release_hold(request: Request, subject_id: AccountId, actor: Viewer) -> Any:
    """Release the hold placed under the form's reference."""
    form = await checked_form(request)
    data = {"type": "release_legal_hold", "subject_id": subject_id,
            "reference": _reference(form)}  # fmt: skip
    return await _subject_page(request, actor, subject_id, await _send(request, actor, data))


@router.post("/subjects/{subject_id}/erasure")
async def erasure(request: Request, subject_id: AccountId, actor: Viewer) -> Any:
    """Request the subject's erasure; refused under a hold, deferred under a retention."""
    form = await checked_form(request)
    data = {"type": "request_erasure", "subject_id": subject_id, "reference": _reference(form)}
    return await _subject_page(request, actor, subject_id, await _send(request, actor, data))


@router.post("/subjects/{subject_id}/access-copy")
async def access_copy(request: Request, subject_id: AccountId, actor: Viewer) -> Any:
    """The subject's access copy (PIPL 45), recorded as ``AccessCopyGiven`` first."""
    form = await checked_form(request)
    ledger = request.app.state.ledger
    content = await run_in_threadpool(
        access_copy_content, ledger, subject_id, actor, reference=_reference(form)
    )
    text = orjson.dumps(content, option=orjson.OPT_INDENT_2).decode()
    outcome = {"what": "access_copy", "ok": True, "access_copy": text,
               "position": content["recorded_at_position"]}  # fmt: skip
    return await _subject_page(request, actor, subject_id, outcome)
