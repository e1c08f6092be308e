"""``GET /healthz``: is this process fit to serve (no key needed)?

200 ``{"status": "ok", "store": "ok", "head": …, "projections": {name: {"position", "lag_events",
"stopped"}}}`` when the event store answers and no projection is stopped. Otherwise 503
``application/problem+json`` with ``Retry-After`` (RFC 9110 section 10.2.3), the same
``store`` and ``projections`` members as far as they are known (RFC 9457 extension members):

- ``STORAGE_UNAVAILABLE``: the database did not answer, failed, or took longer than
  ``HEALTH_TIMEOUT_S`` in all (each connection wait and statement is cut at
  ``projections.probe.PROBE_TIMEOUT_S``). The driver's words go to the log only: the route
  is public and they name hosts and databases.
- ``PROJECTION_STOPPED``: a projection is stopped on an event it cannot apply
  (``ledger projections status`` shows it; ``ledger projections skip`` or a fix resumes it).

A projection's lag is the number of events in the log after its position (positions have
holes, so this is exact where ``head - position`` is not). A lag alone is not unhealthy: a
projection worker that is behind or not running is a matter for alerts on the
``ledger_projection_lag_events`` metric, not for taking the API out of service.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from api.problems import RETRY_AFTER_S, Problem, problem, problem_response
from api.views import examples
from ledger.domain import codes
from ledger.domain.errors import LedgerError, StorageUnavailable
from projections.probe import PROBE_TIMEOUT_S, StatusProbe

HEALTH_TIMEOUT_S = 2 * PROBE_TIMEOUT_S + 1  # a connection wait, then statements
PROBE_THREADS = 2  # probes at once; more wait their turn (and time out) rather than pile up
log = logging.getLogger("api.health")
router = APIRouter(tags=["operations"])


class ProjectionHealth(BaseModel):
    position: int = Field(description="the last log position applied", examples=[1200])
    lag_events: int = Field(description="events in the log after the position", examples=[3])
    stopped: bool = Field(description="stopped on an event it cannot apply", examples=[False])


class Health(BaseModel):
    """The store answers and no projection is stopped; each projection's position and lag."""

    model_config = examples(
        {
            "status": "ok",
            "store": "ok",
            "head": 1203,
            "projections": {"orders": {"position": 1203, "lag_events": 0, "stopped": False}},
        }
    )

    status: Literal["ok"]
    store: Literal["ok"]
    head: int = Field(description="the log's last position", examples=[1203])
    projections: dict[str, ProjectionHealth]


class HealthProblem(Problem):
    """The problem a 503 from ``/healthz`` is, with what was found."""

    store: Literal["ok", "unavailable"]
    projections: dict[str, ProjectionHealth] | None = None


class HealthCheck:
    """Runs a ``StatusProbe`` off the event loop on threads of its own, so a hung database
    holds at most ``PROBE_THREADS`` threads and never the server's."""

    def __init__(self, probe: StatusProbe) -> None:
        self.probe = probe
        self._threads = ThreadPoolExecutor(PROBE_THREADS, thread_name_prefix="ledger-health")

    async def report(self) -> dict[str, Any]:
        """The probe's status; ``StorageUnavailable`` past ``HEALTH_TIMEOUT_S`` or on failure."""
        future = asyncio.wrap_future(self._threads.submit(self.probe.status))
        try:
            return await asyncio.wait_for(future, HEALTH_TIMEOUT_S)
        except TimeoutError:
            raise StorageUnavailable(f"no answer within {HEALTH_TIMEOUT_S:g} s") from None

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)


def projections_of(report: dict[str, Any]) -> dict[str, ProjectionHealth]:
    """``projections.status.status``'s rows by projection name, as /healthz shows them."""
    return {
        row["name"]: ProjectionHealth(
            position=row["position"], lag_events=row["lag_events"], stopped=bool(row["stopped"])
        )
        for row in report["projections"]
    }


def unhealthy(entry: codes.ErrorCode, detail: str, instance: str, **members: Any) -> Response:
    """A 503 problem of ``entry`` with Retry-After and ``members`` (``store``,
    ``projections``) as RFC 9457 extension members."""
    return problem(
        entry,
        detail,
        instance,
        headers={"Retry-After": str(RETRY_AFTER_S)},
        extensions=members,
    )


@router.get(
    "/healthz",
    response_model=Health,
    responses={
        503: problem_response(
            "STORAGE_UNAVAILABLE or PROJECTION_STOPPED (with Retry-After)", HealthProblem
        )
    },
)
async def healthz(request: Request) -> Any:
    """The event store answers and no projection is stopped (see the module docstring).
    No key needed: a load balancer or orchestrator asks."""
    check: HealthCheck = request.app.state.health
    path = request.url.path
    try:
        report = await check.report()
    except LedgerError as exc:
        log.warning("health: the store is unavailable: %s", exc.message)
        detail = "the event store cannot be reached or failed; the server's log says why"
        return unhealthy(codes.STORAGE_UNAVAILABLE, detail, path, store="unavailable")
    found = projections_of(report)
    members = {"store": "ok", "projections": {k: v.model_dump() for k, v in found.items()}}
    stopped = [row for row in report["projections"] if row["stopped"]]
    if stopped:
        where = ", ".join(
            f"{row['name']} at position {row['stopped']['position']}" for row in stopped
        )
        detail = f"stopped on an event it cannot apply: {where}; see ledger projections status"
        return unhealthy(codes.PROJECTION_STOPPED, detail, path, **members)
    return Health(status="ok", store="ok", head=report["head"], projections=found)
