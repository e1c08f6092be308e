"""Pytest plugin: the HTTP API through the real ASGI app (httpx, via Starlette's TestClient,
which also runs the app's lifespan), on both backends, with a key per role.

Loaded with ``-p tests.fix_api`` (pyproject addopts).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from ledger.clock import Clock, ManualClock

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

ROLES = ("service", "auditor", "regulator", "admin")


@dataclass
class Api:
    """A client of the app, and bearer headers per role (plus a revoked and an unknown key)."""

    client: TestClient
    keys: dict[str, str]
    url: str

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}

    def post(
        self,
        path: str,
        body: Any,
        *,
        role: str = "service",
        key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        sent = {**self.auth(role), **({"Idempotency-Key": key} if key else {}), **(headers or {})}
        return self.client.post(path, json=body, headers=sent)

    def command(
        self, data: dict[str, Any], *, role: str = "service", headers: dict[str, str] | None = None
    ) -> Any:
        """POST a core command dict (as tests/builders.py makes them) to its route."""
        body = {k: v for k, v in data.items() if k not in ("type", "command_id")}
        return self.post(
            f"/v1/commands/{data['type']}", body, role=role, key=data["command_id"], headers=headers
        )

    def get(self, path: str, *, role: str = "service", **params: Any) -> Any:
        return self.client.get(path, headers=self.auth(role), params=params)


def issue_keys(url: str, clock: Clock | None = None) -> dict[str, str]:
    """A key per role (plus a revoked and an unknown one), made on ``clock``: the clock the
    app under test runs on, so a key created later through the app is not dated before the
    registry's last event (``TIME_BEFORE_STREAM``); the system's for a real server."""
    from ledger.api_keys import create_key, revoke_key
    from ledger.application import open_ledger

    ledger = open_ledger(url, clock=clock)
    try:
        keys = {role: create_key(ledger, role, f"test-{role}").key for role in ROLES}
        revoked = create_key(ledger, "service", "test-revoked")
        revoke_key(ledger, revoked.key_id)
    finally:
        ledger.close()
    keys["revoked"] = revoked.key
    keys["unknown"] = "mlk_000000000000_" + "A" * 43
    return keys


@pytest.fixture
def api(backend: str, clock: ManualClock) -> Iterator[Api]:
    """The app on ``backend`` (key cache off, so a revocation shows at once)."""
    from fastapi.testclient import TestClient

    from api.app import ApiSettings, create_app

    keys = issue_keys(backend, clock)
    app = create_app(ApiSettings(url=backend, clock=clock, key_cache_s=0))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Api(client, keys, backend)
