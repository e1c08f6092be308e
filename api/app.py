"""The FastAPI application: ``create_app(url)`` builds it over the ledger at ``url``.

One process holds one ``Ledger`` (its connections come from the process-wide pool,
ledger/pg_pool.py), one writer that owns the ledger's writes (ledger/group_commit.py), the read
models (each query on a connection of the pool, api/readers.py), the page-token key
(api/pages.py), the key cache, and the projections' status probe of ``/healthz`` and
``/metrics`` (api/health.py, api/metrics.py; on the same pool). They are opened when the app
starts (ASGI lifespan), the ledger first: the process is a writer, so a missing SQLite file is
made, and the projections' tables are created if no worker has run yet (empty, at position 0,
until ``ledger projections run`` fills them). They are closed when it stops. api/observe.py
sees every request: its id, its log line, its metrics.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from api import admin, commands, exports, health, history, openapi, problems, queries
from api import metrics as api_metrics
from api.auth import DEFAULT_KEY_CACHE_S, KeyCache
from api.console import mount as mount_console
from api.console.settings import ConsoleSettings
from api.health import HealthCheck
from api.limits import DEFAULT_MAX_BODY_BYTES, BodyLimits
from api.metrics import Metrics
from api.observe import Observe
from api.pages import PageTokens, derive_key
from api.readers import Readers
from api.responses import OrjsonResponse
from ledger.application import open_ledger
from ledger.clock import Clock
from ledger.domain.policy import Policy
from ledger.group_commit import GroupCommitter
from ledger.settings import (
    DEFAULT_EXPORT_DIR,
    DEFAULT_LOG_NAME,
    DEFAULT_SIGNING_KEY_PATH,
    GroupCommitSettings,
    load_settings,
)
from ledger.storage_url import StorageUrl
from projections.freshness import DEFAULT_TIMEOUT_S
from projections.probe import StatusProbe


@dataclass(frozen=True)
class ApiSettings:
    """What ``ledger serve`` and the tests set (the environment's, through ledger/settings)."""

    url: StorageUrl | str | None = None
    clock: Clock | None = None
    policy: Policy = field(default_factory=Policy)
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    key_cache_s: float = DEFAULT_KEY_CACHE_S
    group_commit: GroupCommitSettings = field(default_factory=GroupCommitSettings)
    # How long a query waits for its projection to reach min_position (api/readers.py).
    read_wait_s: float = DEFAULT_TIMEOUT_S
    # Regulators' bags (api/exports.py): where they are kept, the key that signs them.
    export_dir: Path = DEFAULT_EXPORT_DIR
    signing_key_path: Path = DEFAULT_SIGNING_KEY_PATH
    log_name: str = DEFAULT_LOG_NAME
    console: ConsoleSettings = field(default_factory=ConsoleSettings)


def app_from_env() -> FastAPI:
    """The app as ``ledger serve`` runs it (each uvicorn worker calls this): settings from
    the environment (ledger/settings.py); ``--database-url`` arrives as LEDGER_DATABASE_URL.
    Python's warnings are sent through the log, whose lines ``ledger serve`` makes JSON."""
    env = load_settings()
    logging.captureWarnings(True)  # a library's warning is a JSON log line too (api/logs.py)
    return create_app(
        ApiSettings(
            url=env.database_url,
            policy=env.policy,
            max_body_bytes=env.api_max_body_bytes,
            group_commit=env.group_commit,
            export_dir=env.export_dir,
            signing_key_path=env.signing_key_path,
            log_name=env.log_name,
        )
    )


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    """The API over the ledger ``settings.url`` (None: the default SQLite file)."""
    config = settings or ApiSettings()

    url = StorageUrl.of(config.url)
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ledger = await run_in_threadpool(
            lambda: open_ledger(url, clock=config.clock, policy=config.policy)
        )
        try:
            probe = await run_in_threadpool(StatusProbe.open, url, ledger.app.mapper)
            page_key = await run_in_threadpool(lambda: derive_key(ledger.keystore.linkage_key()))
            readers = await run_in_threadpool(
                Readers.open, url, ledger.app.mapper, config.read_wait_s
            )
        except BaseException:
            await run_in_threadpool(ledger.close)
            raise
        app.state.ledger = ledger
        app.state.writer = GroupCommitter.from_settings(
            ledger, config.group_commit, on_batch=metrics.observe_batch
        )
        app.state.keys = KeyCache(ledger, config.key_cache_s)
        app.state.health = HealthCheck(probe)
        app.state.readers = readers
        app.state.page_tokens = PageTokens(page_key)
        metrics.lag.probe = probe
        try:
            yield
        finally:
            metrics.lag.probe = None
            app.state.health.close()
            writer: GroupCommitter = app.state.writer
            await run_in_threadpool(writer.close)  # saves what it accepted, then stops
            await run_in_threadpool(ledger.close)

    app = FastAPI(
        title="mall-ledger",
        version="1",
        description="An event-sourced order ledger under the mall's user agreement: commands "
        "(POST, with an Idempotency-Key), queries (GET), keys, regulators' exports. Errors are "
        "RFC 9457 problem details with the ledger's stable code and the clause behind it.",
        lifespan=lifespan,
        default_response_class=OrjsonResponse,
    )
    app.state.metrics = metrics
    app.state.exports = exports.ExportConfig(
        config.export_dir, config.signing_key_path, config.log_name
    )
    problems.install(app)
    app.include_router(commands.router)
    app.include_router(queries.router)
    app.include_router(admin.router)
    app.include_router(history.router)
    app.include_router(exports.router)
    app.include_router(problems.router)
    app.include_router(health.router)
    app.include_router(api_metrics.router)
    openapi.install(app)
    mount_console(app, config.console)  # /console: HTML pages over the same state
    app.add_middleware(BodyLimits, max_body_bytes=config.max_body_bytes)
    app.add_middleware(Observe, metrics=metrics)  # added last: outside BodyLimits
    return app
