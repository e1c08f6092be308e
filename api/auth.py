"""Who is calling: API keys (``Authorization: Bearer mlk_…``, RFC 6750) and their roles.

| role | may |
|---|---|
| ``service`` | send the agreement's commands, run every query |
| ``auditor`` | run every query (read-only); later replay and verify |
| ``regulator`` | only its own export requests and their bags (api/exports.py); the history |
| ``admin`` | API keys, the policy, and the rule commands (promotions, purchase limits) |

Missing, malformed, unknown or revoked key: ``UNAUTHENTICATED`` (401, with
``WWW-Authenticate: Bearer``); a role outside the route's: ``FORBIDDEN`` (403). The key
registry is read from the log and kept for ``key_cache_s`` (default 1 s): a key revoked by
``ledger keys revoke`` in another process is refused within that time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from api.errors import Forbidden, Unauthenticated
from ledger.api_keys import authenticate, load_registry
from ledger.application import Ledger
from ledger.domain.api_keys import ApiKeyRegistry
from ledger.domain.context import Actor

DEFAULT_KEY_CACHE_S = 1.0

SERVICE, AUDITOR, REGULATOR, ADMIN = "service", "auditor", "regulator", "admin"
READERS = (SERVICE, AUDITOR)  # the queries
# The retention audit trail (issue 11, item 11): who examines the lifecycle, not who delivers.
TRAIL_READERS = (AUDITOR, ADMIN)


class KeyCache:
    """The key registry, read again once it is older than ``max_age_s`` seconds."""

    def __init__(self, ledger: Ledger, max_age_s: float = DEFAULT_KEY_CACHE_S) -> None:
        self.ledger = ledger
        self.max_age_s = max_age_s
        self._lock = threading.Lock()
        self._registry: ApiKeyRegistry | None = None
        self._read_at = float("-inf")

    def registry(self) -> ApiKeyRegistry | None:
        """The registry, read from the log first if the copy held is too old (blocking I/O:
        call from a worker thread)."""
        with self._lock:
            if self.stale():
                self._registry = load_registry(self.ledger)
                self._read_at = time.monotonic()
            return self._registry

    def stale(self) -> bool:
        return time.monotonic() - self._read_at >= self.max_age_s

    async def current(self) -> ApiKeyRegistry | None:
        """The registry for a request: the copy held, straight from the event loop while it
        is fresh (no thread hop, the common case), else read again on a worker thread."""
        if not self.stale():
            return self._registry
        return await run_in_threadpool(self.registry)


# The scheme in the OpenAPI document; each route lists the roles it takes as the scheme's
# "scopes" (OpenAPI 3.1: role names, for schemes other than OAuth2).
BEARER = HTTPBearer(
    scheme_name="apiKey",
    description="An API key (`ledger keys create --role ROLE --name NAME`), as a bearer token.",
    auto_error=False,  # a missing key is our own UNAUTHENTICATED problem, not FastAPI's
)


def require(*roles: str) -> Callable[..., Awaitable[Actor]]:
    """A dependency: the calling key's actor if its role is one of ``roles``; raises
    Unauthenticated (401) or Forbidden (403)."""

    bearer = Security(BEARER, scopes=list(roles))  # a default: closures resolve no annotation

    async def actor_of(
        request: Request, credentials: HTTPAuthorizationCredentials | None = bearer
    ) -> Actor:
        if credentials is None:
            raise Unauthenticated("send an API key as Authorization: Bearer <key>")
        cache: KeyCache = request.app.state.keys
        registry = await cache.current()
        actor = authenticate(registry, credentials.credentials)
        if actor is None:
            raise Unauthenticated("the API key is unknown or revoked")
        request.state.actor = actor  # the request's log line names the key, refused or not
        return admit(actor, roles)

    return actor_of


def admit(actor: Actor, roles: tuple[str, ...]) -> Actor:
    """``actor`` if its role is one of ``roles``; raises Forbidden (403) naming both. The one
    role check of the API and the console (api/console/)."""
    if actor.role not in roles:
        raise Forbidden(f"the {actor.role} role may not do this; it takes {'/'.join(roles)}")
    return actor


# Route parameters: ``actor: AdminActor`` admits admins only, ``ReaderActor`` the queries',
# ``TrailActor`` the retention audit trail's.
AdminActor = Annotated[Actor, Depends(require(ADMIN))]
ReaderActor = Annotated[Actor, Depends(require(*READERS))]
TrailActor = Annotated[Actor, Depends(require(*TRAIL_READERS))]
