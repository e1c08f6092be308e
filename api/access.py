"""Who may call which route: the one table the README ("Routes and roles") and the tests
(tests/integration/test_api_access.py, every route of the app × every role × bad keys) share.

Keys are ``METHOD /path`` with the route's path template; ``{type}`` in the command route
stands for every command type but those listed on their own. ``PUBLIC`` routes take no key
(the API's own documents and the error catalogue). A route the app has and this table lacks
fails the access test: a new route states who may call it here first.
"""

from __future__ import annotations

import re

from api.auth import ADMIN, AUDITOR, READERS, REGULATOR, SERVICE, TRAIL_READERS

PUBLIC: tuple[str, ...] = ()
ADMINS = (ADMIN,)
SERVICES = (SERVICE,)
HISTORY = (AUDITOR, REGULATOR)  # checkpoints, proofs, streams as they were
REGULATORS = (REGULATOR,)
EXPORT_VIEWERS = (REGULATOR, AUDITOR, ADMIN)  # a regulator sees only its own requests
COMMANDS = "POST /v1/commands/{type}"

ROUTE_ROLES: dict[str, tuple[str, ...]] = {
    # commands: the agreement's, and the rules the agreement leaves to the mall
    COMMANDS: SERVICES,
    "POST /v1/commands/define_promotion": ADMINS,
    "POST /v1/commands/define_purchase_limit": ADMINS,
    "POST /v1/commands/place_legal_hold": ADMINS,
    "POST /v1/commands/release_legal_hold": ADMINS,
    "POST /v1/commands/request_erasure": ADMINS,
    # queries (api/queries.py)
    "GET /v1/orders": READERS,
    "GET /v1/orders/{order_no}": READERS,
    "GET /v1/orders/{order_no}/contact": (SERVICE, AUDITOR),
    "GET /v1/orders/{order_no}/flags": READERS,
    "GET /v1/orders/{order_no}/payments": READERS,
    "GET /v1/orders/{order_no}/refunds": READERS,
    "GET /v1/orders/{order_no}/retention": TRAIL_READERS,
    "GET /v1/entitlements": READERS,
    "GET /v1/entitlements/{code}": READERS,
    "GET /v1/entitlements/{code}/history": READERS,
    "GET /v1/campaigns/{campaign}/counts": READERS,
    "GET /v1/accounts/{account_no}/linked": READERS,
    "GET /v1/accounts/{account_no}/purchase-limits/{sku}": READERS,
    "GET /v1/accounts/{account_no}/refusals": READERS,
    "GET /v1/flags/unreviewed": READERS,
    "GET /v1/reconciliation": READERS,
    "GET /v1/subjects/{subject_id}/retention": TRAIL_READERS,
    "GET /v1/subjects/{subject_id}/retention-steps": TRAIL_READERS,
    "GET /v1/retention/due": TRAIL_READERS,
    # admin
    "GET /v1/keys": ADMINS,
    "POST /v1/keys/{key_id}/revoke": ADMINS,
    "GET /v1/policy": ADMINS,
    "POST /v1/subjects/{subject_id}/holds": ADMINS,
    "POST /v1/subjects/{subject_id}/holds/{reference}/release": ADMINS,
    "POST /v1/subjects/{subject_id}/access-copies": ADMINS,
    "POST /v1/subjects/{subject_id}/erasure": ADMINS,
    # verifiable history (api/history.py)
    "GET /v1/log/checkpoints": HISTORY,
    "GET /v1/log/proofs/inclusion/{position}": HISTORY,
    "GET /v1/log/proofs/consistency": HISTORY,
    "GET /v1/history/{kind}/{key}": HISTORY,
    # regulators' exports (api/exports.py): a regulator files and produces its own; auditors
    # and admins see and download every bag (to run the same verify-export), as the console
    "POST /v1/exports": REGULATORS,
    "GET /v1/exports": EXPORT_VIEWERS,
    "GET /v1/exports/{request_id}": EXPORT_VIEWERS,
    "POST /v1/exports/{request_id}/bags": REGULATORS,
    "GET /v1/exports/{request_id}/bags/{bag_id}": EXPORT_VIEWERS,
    # operations (api/health.py, api/metrics.py): the counters show the business's volume
    "GET /metrics": ADMINS,
    "GET /healthz": PUBLIC,
    # public
    "GET /v1/problems/{code}": PUBLIC,
    "GET /openapi.json": PUBLIC,
    "GET /docs": PUBLIC,
    "GET /docs/oauth2-redirect": PUBLIC,
    "GET /redoc": PUBLIC,
}

_COMMAND_PATH = re.compile(r"^/v1/commands/[a-z_]+$")


def allowed_roles(method: str, path: str) -> tuple[str, ...]:
    """The roles that may call ``method path`` (a route's path template); ``PUBLIC`` (empty)
    for a route that takes no key. ``KeyError`` for a route the table lacks."""
    found = ROUTE_ROLES.get(f"{method} {path}")
    if found is not None:
        return found
    if method == "POST" and _COMMAND_PATH.match(path):
        return ROUTE_ROLES[COMMANDS]
    raise KeyError(f"{method} {path}")
