"""Admin routes: API keys, the policy in force, legal holds and erasure (role ``admin``).

An admin also makes a data subject's access copy (PIPL 45; ledger/access_copy.py), the
content ``ledger access`` writes to files, answered as JSON and recorded like it.

Keys are created with ``ledger keys create`` (the secret is shown once, on the terminal that
made it); over HTTP an admin lists and revokes them. Legal holds on a data subject's personal
data (PIPL 47; ledger/domain/data_subject.py) are the ledger's commands ``place_legal_hold``
and ``release_legal_hold``, sent here by path (``/v1/subjects/{subject_id}/holds``) exactly
as ``POST /v1/commands/{type}`` sends them: ``Idempotency-Key`` is the command id, ``If-Match``
compares the subject stream's version, the answer is the command's. So is an erasure
(``request_erasure`` at ``/v1/subjects/{subject_id}/erasure``, PIPL 47; ledger/erasure.py):
refused under a hold (409 ``LEGAL_HOLD``) or deferred under a retention (409
``RETENTION_REQUIRED`` with ``retain_until``), the request and its outcome recorded either way.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, TypeAdapter
from starlette.concurrency import run_in_threadpool

from api.auth import AdminActor
from api.commands import (
    BODY_MODELS,
    ERROR_RESPONSES,
    CommandResponse,
    idempotency_key,
    request_body_spec,
    run_command,
)
from api.examples import WRITTEN
from api.queries import AccountId, KeyFilter, KeyId
from api.views import examples
from ledger.access_copy import access_copy_content
from ledger.api_keys import list_keys, revoke_key
from ledger.commands import Key, Model
from ledger.domain.data_subject import HoldReason

router = APIRouter(prefix="/v1", tags=["admin"], responses=ERROR_RESPONSES)


class ApiKeyInfo(BaseModel):
    """An API key as listed: never its secret or digest."""

    model_config = examples(
        {
            "key_id": "055b863716e1",
            "name": "checkout",
            "role": "service",
            "created_at": "2026-12-01T00:35:16Z",
            "revoked_at": None,
        }
    )

    key_id: str
    name: str
    role: str
    created_at: datetime
    revoked_at: datetime | None


class Revoked(BaseModel):
    """A revocation's outcome: ``revoked_now`` false if the key already was revoked."""

    model_config = examples({"key_id": "055b863716e1", "revoked_now": True})
    key_id: str
    revoked_now: bool


@router.get("/keys", response_model=list[ApiKeyInfo])
async def keys(request: Request, actor: AdminActor) -> Any:
    """Every key ever created, oldest first."""
    return await run_in_threadpool(list_keys, request.app.state.ledger)


@router.post("/keys/{key_id}/revoke", response_model=Revoked)
async def revoke(request: Request, key_id: str, actor: AdminActor) -> Any:
    """Revoke a key (idempotent: revoking a revoked key says ``revoked_now: false``). Needs
    an ``Idempotency-Key`` like every POST."""
    idempotency_key(request)
    done = await run_in_threadpool(revoke_key, request.app.state.ledger, key_id, actor)
    return Revoked(key_id=key_id, revoked_now=done)


@router.get("/policy")
async def policy(request: Request, actor: AdminActor) -> dict[str, Any]:
    """The policy values in force (docs/rules.md, "Policy values")."""
    return dataclasses.asdict(request.app.state.ledger.policy)


# -- legal holds (PIPL 47) -------------------------------------------------------------------
class ErasureBody(Model):
    """The body of ``POST /v1/subjects/{subject_id}/erasure``: the request's file id, if
    any (``{}`` without one)."""

    reference: Key | None = None


class HoldBody(Model):
    """The body of ``POST /v1/subjects/{subject_id}/holds``: the hold's file id and reason."""

    reference: Key
    reason: HoldReason


def _hold_spec(kind: str, body: type[BaseModel] | None) -> dict[str, Any]:
    """Headers as every command takes them; the body's schema and example, if it has one."""
    spec = request_body_spec(BODY_MODELS[kind], kind)
    if body is None:
        del spec["requestBody"]
        return spec
    example = {name: value for name, value in WRITTEN[kind].items() if name in body.model_fields}
    content = {"schema": TypeAdapter(body).json_schema(), "example": example}
    spec["requestBody"]["content"]["application/json"] = content
    return spec


@router.post(
    "/subjects/{subject_id}/holds",
    response_model=CommandResponse,
    openapi_extra=_hold_spec("place_legal_hold", HoldBody),
)
async def place_hold(request: Request, subject_id: AccountId, actor: AdminActor) -> Any:
    """Place a legal hold (``reason`` dispute or investigation, under ``reference``) on a
    data subject: neither de-identification nor erasure touches its data until released
    (``LEGAL_HOLD``). The same reference on again with the same reason is a repeat; with
    another, 409 ``LEGAL_HOLD_REFERENCE_REUSED``. The command ``place_legal_hold``."""
    path = {"subject_id": subject_id}
    return await run_command(
        request, BODY_MODELS["place_legal_hold"], "place_legal_hold", actor, path
    )


@router.post(
    "/subjects/{subject_id}/holds/{reference}/release",
    response_model=CommandResponse,
    openapi_extra=_hold_spec("release_legal_hold", None),
)
async def release_hold(
    request: Request, subject_id: AccountId, reference: KeyId, actor: AdminActor
) -> Any:
    """Release the hold under ``reference`` (no body). Releasing it again is a repeat; a
    reference not on the subject is 404 ``NOT_FOUND``. The command ``release_legal_hold``."""
    path = {"subject_id": subject_id, "reference": reference}
    model = BODY_MODELS["release_legal_hold"]
    return await run_command(request, model, "release_legal_hold", actor, path)


# -- access copies (PIPL 45) -----------------------------------------------------------------
class AccessCopyAnswer(BaseModel):
    """A data subject's copy: ``subject`` and ``orders`` as ``ledger access`` writes them to
    subject.json and orders.json, the ``manifest`` of the files it would write (digests,
    position, time, version), and the log position of the copy's ``AccessCopyGiven`` record."""

    model_config = examples(
        {
            "subject": {"subject_id": "acct-1", "law": "PIPL 45", "erased": False},
            "orders": [{"order_no": "A1", "status": "paid", "total_due_yuan": "3999.00"}],
            "manifest": {"subject_id": "acct-1", "position": 8, "files": []},
            "recorded_at_position": 10,
        }
    )
    subject: dict[str, Any]
    orders: list[dict[str, Any]]
    manifest: dict[str, Any]
    recorded_at_position: int


@router.post("/subjects/{subject_id}/access-copies", response_model=AccessCopyAnswer)
async def access_copy(
    request: Request,
    response: Response,
    subject_id: AccountId,
    actor: AdminActor,
    reference: KeyFilter | None = None,
) -> Any:
    """A copy of the data subject's personal data and orders, for the subject (PIPL 45),
    recorded first as ``AccessCopyGiven`` (this key, ``reference``: the request's file id;
    never the values) and shown in the retention trail as ``access_copy``. Given also while
    the subject's processing is restricted (PIPL 47 para 2 does not suspend the subject's own
    access); an erased subject's personal fields read ``[erased]``. Every call makes and
    records a new copy; the ``Idempotency-Key`` header is required as on every POST. A subject
    the ledger knows nothing of is 404 ``NOT_FOUND``. ``Cache-Control: no-store``."""
    idempotency_key(request)
    content = await run_in_threadpool(
        access_copy_content, request.app.state.ledger, subject_id, actor, reference=reference
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["Ledger-Position"] = str(content["recorded_at_position"])
    return content


# -- erasure (PIPL 47) -------------------------------------------------------------------------
@router.post(
    "/subjects/{subject_id}/erasure",
    response_model=CommandResponse,
    openapi_extra=_hold_spec("request_erasure", ErasureBody),
)
async def request_erasure(request: Request, subject_id: AccountId, actor: AdminActor) -> Any:
    """Erase a data subject's personal data by destroying its keys (PIPL 47). Under a legal
    hold: 409 ``LEGAL_HOLD``; while an order of the subject is being performed: 409
    ``ORDER_IN_PROGRESS`` naming it; while the law keeps its records: 409 ``RETENTION_REQUIRED``
    with ``retain_until`` (its data is restricted meanwhile and the retention run erases it
    then); the request and its outcome are recorded either way. The command
    ``request_erasure``; a repeat of the same ``Idempotency-Key`` answers the same."""
    path = {"subject_id": subject_id}
    return await run_command(
        request, BODY_MODELS["request_erasure"], "request_erasure", actor, path
    )
