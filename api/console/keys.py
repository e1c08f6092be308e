"""API keys (issue 13, "Keys"; admins): create one (its secret shown once, on the page that
made it, never again), list them all, revoke one: ``ledger keys`` (ledger/api_keys.py)
behind forms, recorded with the admin's key as the actor."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from api.auth import ADMIN, AUDITOR, REGULATOR, SERVICE
from api.console.render import page
from api.console.session import Viewer, checked_form
from ledger.api_keys import create_key, list_keys, revoke_key
from ledger.domain.errors import LedgerError

router = APIRouter()
ROLES = (SERVICE, AUDITOR, REGULATOR, ADMIN)


async def _keys_page(request: Request, outcome: dict[str, Any] | None) -> Any:
    keys = await run_in_threadpool(list_keys, request.app.state.ledger)
    return page(request, "keys.html", keys=keys, roles=ROLES, outcome=outcome)


@router.get("/keys")
async def keys(request: Request, actor: Viewer) -> Any:
    """Every key ever created, oldest first (never a secret)."""
    return await _keys_page(request, None)


@router.post("/keys")
async def create(request: Request, actor: Viewer) -> Any:
    """Create a key of the form's role and name; its secret is on this answer only."""
    form = await checked_form(request)
    ledger = request.app.state.ledger
    outcome = await _attempt(lambda: create_key(ledger, form.get("role", ""), form.get("name", ""),
                                                actor).as_dict())  # fmt: skip
    response = await _keys_page(request, outcome)
    return response


@router.post("/keys/{key_id}/revoke")
async def revoke(request: Request, key_id: str, actor: Viewer) -> Any:
    """Revoke a key (its sessions end within the key cache's time)."""
    await checked_form(request)
    ledger = request.app.state.ledger
    outcome = await _attempt(lambda: {"revoked": key_id,
                                      "now": revoke_key(ledger, key_id, actor)})  # fmt: skip
    return await _keys_page(request, outcome)


async def _attempt(action: Any) -> dict[str, Any]:
    """``action()`` off the event loop; a refusal as its code and message for the page."""
    try:
        done: dict[str, Any] = await run_in_threadpool(action)
    except LedgerError as exc:
        return {"ok": False, "code": exc.code, "message": exc.message}
    return {"ok": True, **done}
