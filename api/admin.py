"""Admin routes: API keys and the policy in force (role ``admin``).

Keys are created with ``ledger keys create`` (the secret is shown once, on the terminal that
made it); over HTTP an admin lists and revokes them.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from api.auth import AdminActor
from api.commands import ERROR_RESPONSES, idempotency_key
from api.views import examples
from ledger.api_keys import list_keys, revoke_key

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
