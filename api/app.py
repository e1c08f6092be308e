"""The FastAPI application: ``create_app(url)`` builds it over the ledger at ``url``.

One process holds one ``Ledger`` (its connections come from the process-wide pool,
ledger/pg_pool.py), one writer that owns the ledger's writes (ledger/group_commit.py), the read
models, and the key cache. They are opened when the app starts (ASGI lifespan) and closed
when it stops.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from fastapi import FastAPI
from fastapi.responses import ORJSONResponse
from starlette.concurrency import run_in_threadpool

from api import admin, commands, openapi, problems
from api.auth import DEFAULT_KEY_CACHE_S, KeyCache
from api.limits import DEFAULT_MAX_BODY_BYTES, BodyLimits
from ledger.application import open_ledger
from ledger.clock import Clock
from ledger.domain.policy import Policy
from ledger.group_commit import GroupCommitter
from ledger.settings import GroupCommitSettings, load_settings
from ledger.storage_url import StorageUrl


@dataclass(frozen=True)
class ApiSettings:
    """What ``ledger serve`` and the tests set (the environment's, through ledger/settings)."""

    url: StorageUrl | str | None = None
    clock: Clock | None = None
    policy: Policy = field(default_factory=Policy)
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    key_cache_s: float = DEFAULT_KEY_CACHE_S
    group_commit: GroupCommitSettings = field(default_factory=GroupCommitSettings)


def app_from_env() -> FastAPI:
    """The app as ``ledger serve`` runs it (each uvicorn worker calls this): settings from
    the environment (ledger/settings.py); ``--database-url`` arrives as LEDGER_DATABASE_URL."""
    env = load_settings()
    return create_app(
        ApiSettings(
            url=env.database_url,
            policy=env.policy,
            max_body_bytes=env.api_max_body_bytes,
            group_commit=env.group_commit,
        )
    )


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    """The API over the ledger ``settings.url`` (None: the default SQLite file)."""
    config = settings or ApiSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ledger = await run_in_threadpool(
            lambda: open_ledger(config.url, clock=config.clock, policy=config.policy)
        )
        app.state.ledger = ledger
        app.state.writer = GroupCommitter.from_settings(ledger, config.group_commit)
        app.state.keys = KeyCache(ledger, config.key_cache_s)
        try:
            yield
        finally:
            writer: GroupCommitter = app.state.writer
            await run_in_threadpool(writer.close)  # saves what it accepted, then stops
            await run_in_threadpool(ledger.close)

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
    app.include_router(admin.router)
    app.include_router(problems.router)
    openapi.install(app)
    app.add_middleware(BodyLimits, max_body_bytes=config.max_body_bytes)
    return app
