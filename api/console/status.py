"""Projections (issue 13, "Projections"): each read model's position, its lag in events and
in seconds of event time, the state the worker last left it in (caught up, behind, stopped
on a poison event with the reason, needing a rebuild), and the result of the last ``ledger
projections check`` (projections/check_results.py: when, at which position, same or which
tables differ) — ``ledger projections status``'s report (projections/status.py), read on the
API's own connection.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from api.console.render import page
from api.console.session import Viewer
from ledger.driver_errors import storage_errors
from projections.status import status

router = APIRouter()


@router.get("/projections")
async def projections(request: Request, actor: Viewer) -> Any:
    """Where each projection stands against the head of the log."""

    def read() -> dict[str, Any]:
        with storage_errors(), request.app.state.readers.probe.runtime() as rt:
            return status(rt)

    return page(request, "projections.html", report=await run_in_threadpool(read))
