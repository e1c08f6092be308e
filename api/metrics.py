"""``GET /metrics``: Prometheus exposition through ``prometheus-client`` (role ``admin``).

- ``ledger_http_requests_total`` (counter; ``method``, ``route``, ``status``): requests
  answered. ``route`` is the route's template (``/v1/commands/submit_order``), ``unmatched``
  for a path no route takes.
- ``ledger_http_request_duration_seconds`` (histogram; ``method``, ``route``).
- ``ledger_commands_total`` (counter; ``type``, ``outcome``, ``code``): ``outcome`` is
  ``accepted``, ``replayed`` (a retry answered from the first send), ``refused`` (a 4xx) or
  ``failed`` (a 5xx); ``code`` the catalogue's, ``none`` when accepted.
- ``ledger_group_commit_batch_size`` (histogram): commands per shared transaction
  (``Metrics.observe_batch``, the group committer's ``on_batch``).
- ``ledger_projection_lag_events`` (gauge; ``projection``): events in the log after the
  projection's position, read from the database at scrape time.

Labels never carry a raw path, a query value or an id: their values come from the route table,
the command types and the error catalogue, so their number is bounded.

Several worker processes (``ledger serve --workers N``): each process counts on its own, so
``ledger serve`` gives them a shared directory (``PROMETHEUS_MULTIPROC_DIR``, made for the run
and removed after it, unless set already) and a scrape of any worker adds up every worker's
counters and histograms (prometheus-client's multiprocess mode). The lag is read from the
database at each scrape, so it needs no sharing.

Why ``admin``: the counters show the business's volume and its refusals by code, which is
not for every service key; a Prometheus server sends an admin key with
``authorization: {credentials_file: …}`` in its scrape config.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

from fastapi import APIRouter, Request, Response
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool

from api.auth import AdminActor
from api.commands import ERROR_RESPONSES
from ledger.domain.errors import LedgerError
from projections.probe import StatusProbe

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
UNMATCHED = "unmatched"
NO_CODE = "none"
# Seconds: from a cached key lookup (~1 ms) to a command waiting on a busy pool (30 s).
LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
log = logging.getLogger("api.metrics")


class LagCollector(Collector):
    """``ledger_projection_lag_events``, read from the database when scraped (nothing when it
    cannot be read: ``/healthz`` reports that)."""

    def __init__(self) -> None:
        self.probe: StatusProbe | None = None

    def describe(self) -> list[GaugeMetricFamily]:
        return [self._family()]

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = self._family()
        if self.probe is not None:
            try:
                report = self.probe.status()
            except LedgerError as exc:
                log.warning("metrics: projection lag not read: %s", exc.code)
                report = {"projections": []}
            for row in report["projections"]:
                family.add_metric([row["name"]], row["lag_events"])
        yield family

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "ledger_projection_lag_events",
            "Events in the log after the projection's position, at scrape time.",
            labels=["projection"],
        )


class Metrics:
    """One app's metrics (a registry of their own, so apps in one process do not mix)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.lag = LagCollector()
        self.requests = Counter(
            "ledger_http_requests",
            "HTTP requests answered, by route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "ledger_http_request_duration_seconds",
            "Time from a request's arrival to the end of its response, by route template.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.commands = Counter(
            "ledger_commands",
            "Commands sent to the API, by type, outcome and error code.",
            ["type", "outcome", "code"],
            registry=self.registry,
        )
        self.batches = Histogram(
            "ledger_group_commit_batch_size",
            "Commands saved together in one group-commit transaction.",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        if not multiprocess_dir():
            self.registry.register(self.lag)

    def observe_request(self, method: str, route: str, status: int, duration_s: float) -> None:
        """One answered request: its method, route template, status and time in seconds."""
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(duration_s)

    def observe_command(self, kind: str, status: int, code: str | None, replayed: bool) -> None:
        """One command's answer: its HTTP ``status`` and error ``code`` (None if accepted)."""
        if code is None:
            outcome = "replayed" if replayed else "accepted"
        else:
            outcome = "failed" if status >= 500 else "refused"
        self.commands.labels(kind, outcome, code or NO_CODE).inc()

    def observe_batch(self, size: int) -> None:
        """A group commit's batch of ``size`` commands (the committer's ``on_batch``)."""
        self.batches.observe(size)

    def exposition(self, accept: str) -> tuple[bytes, str]:
        """The text a scrape gets, in the format its ``Accept`` header asks for (Prometheus
        text or OpenMetrics), and its content type. Reads the database (the lag): call it
        off the event loop."""
        encode, content_type = choose_encoder(accept)
        return encode(self._scraped()), content_type

    def _scraped(self) -> CollectorRegistry:
        path = multiprocess_dir()
        if not path:
            return self.registry
        merged = CollectorRegistry(auto_describe=True)
        MultiProcessCollector(merged, path)  # type: ignore[no-untyped-call]  # the library's __init__ is unannotated
        merged.register(self.lag)
        return merged


def multiprocess_dir() -> str | None:
    """The directory worker processes share their counts in, when ``ledger serve`` runs
    several (``PROMETHEUS_MULTIPROC_DIR``)."""
    return os.environ.get(MULTIPROC_ENV) or None


router = APIRouter(tags=["operations"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "content": {"text/plain": {"schema": {"type": "string"}}},
            "description": "Prometheus text format (OpenMetrics when the Accept header asks)",
        },
        **{s: r for s, r in ERROR_RESPONSES.items() if s in (401, 403, 503)},
    },
)
async def metrics(request: Request, actor: AdminActor) -> Response:
    """The metrics above, for a Prometheus server holding an admin key."""
    collected: Metrics = request.app.state.metrics
    body, content_type = await run_in_threadpool(
        collected.exposition, request.headers.get("accept", "")
    )
    return Response(body, media_type=content_type)
