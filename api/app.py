"""The FastAPI application: ``create_app(url)`` builds it over the ledger at ``url``.

One process holds one ``Ledger`` (its connections come from the process-wide pool,
ledger/pg_pool.py), one writer that owns the ledger's writes (api/writer.py), the read
models (a few ``ReadModels``, api/readers.py), the page-token key (api/pages.py) and the key
cache. They are opened when the app starts (ASGI lifespan), the ledger first: the process is
a writer, so a missing SQLite file is made and the projections' tables are created if no
worker has run yet (empty until ``ledger projections run`` fills them). They are closed when
it stops.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from fastapi import FastAPI
from fastapi.responses import ORJSONResponse
from starlette.concurrency import run_in_threadpool

from api import admin, commands, openapi, problems, queries
from api.auth import DEFAULT_KEY_CACHE_S, KeyCache
from api.limits import DEFAULT_MAX_BODY_BYTES, BodyLimits
from api.pages import PageTokens, derive_key
from api.readers import DEFAULT_READERS, Readers
from api.writer import SerialWriter, Writer
from ledger.application import Ledger, open_ledger
from ledger.clock import Clock
from ledger.domain.policy import Policy
from ledger.settings import load_settings
from ledger.storage_url import StorageUrl
from projections.freshness import DEFAULT_TIMEOUT_S


@dataclass(frozen=True)
class ApiSettings:
    """What ``ledger serve`` and the tests set (the environment's, through ledger/settings)."""

    url: StorageUrl | str | None = None
    clock: Clock | None = None
    policy: Policy = field(default_factory=Policy)
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    key_cache_s: float = DEFAULT_KEY_CACHE_S
    # Queries: how long one waits for its projection to reach min_position, and how many
    # run at once (each holds a read-model connection while it runs: api/readers.py).
    read_wait_s: float = DEFAULT_TIMEOUT_S
    readers: int = DEFAULT_READERS


def app_from_env() -> FastAPI:
    """The app as ``ledger serve`` runs it (each uvicorn worker calls this): settings from
    the environment (ledger/settings.py); ``--database-url`` arrives as LEDGER_DATABASE_URL."""
    env = load_settings()
    return create_app(
        ApiSettings(url=env.database_url, policy=env.policy, max_body_bytes=env.api_max_body_bytes)
    )


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    """The API over the ledger ``settings.url`` (None: the default SQLite file)."""
    config = settings or ApiSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ledger = await run_in_threadpool(
            lambda: open_ledger(config.url, clock=config.clock, policy=config.policy)
        )
        try:
            readers = await run_in_threadpool(
                lambda: Readers(config.url, config.readers, config.read_wait_s)
            )
            page_key = await run_in_threadpool(lambda: derive_key(ledger.keystore.linkage_key()))
        except BaseException:
            await run_in_threadpool(ledger.close)
            raise
        app.state.ledger = ledger
        app.state.writer = SerialWriter(ledger)
        app.state.keys = KeyCache(ledger, config.key_cache_s)
        app.state.readers = readers
        app.state.page_tokens = PageTokens(page_key)
        try:
            yield
        finally:
            await run_in_threadpool(close, app.state.writer, readers, ledger)

    app = FastAPI(
        title="mall-ledger",
        version="1",
        description="An event-sourced order ledger under the mall's user agreement: commands "
        "(POST, with an Idempotency-Key), queries (GET), keys. Errors are RFC 9457 problem "
        "details with the ledger's stable code and the clause behind it.",
        lifespan=lifespan,
        default_response_class=ORJSONResponse,
    )
    problems.install(app)
    app.include_router(commands.router)
    app.include_router(queries.router)
    app.include_router(admin.router)
    app.include_router(problems.router)
    openapi.install(app)
    app.add_middleware(BodyLimits, max_body_bytes=config.max_body_bytes)
    return app


def close(writer: Writer, readers: Readers, ledger: Ledger) -> None:
    """Stop taking writes (the writer finishes what it holds), then close the stores."""
    writer.close()
    readers.close()
    ledger.close()
