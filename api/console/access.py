"""Who may open which console page or send which form: the API's roles for the same data
(api/access.py), so a role sees in the console exactly what its key reads over HTTP.

Keys are ``METHOD /console/path`` with the route's path template; ``PUBLIC`` pages need no
session (signing in, the style sheet). tests/integration/test_console_access.py checks every
route of the console against this table for every role, no session, an expired session and
a form without its CSRF token; the README's "Console" table says the same.
"""

from __future__ import annotations

from api.access import ADMINS, HISTORY, PUBLIC
from api.auth import ADMIN, AUDITOR, READERS, REGULATOR, SERVICE, TRAIL_READERS

AUDITORS = (AUDITOR,)
EVERY_ROLE = (SERVICE, AUDITOR, REGULATOR, ADMIN)
# Exports: a regulator its own requests, auditors and admins all of them.
EXPORT_READERS = (AUDITOR, REGULATOR, ADMIN)
# Projection status: who examines the ledger's running (the auditor and admin).
STATUS_READERS = (AUDITOR, ADMIN)

CONSOLE_ROLES: dict[str, tuple[str, ...]] = {
    "GET /console/sign-in": PUBLIC,
    "POST /console/sign-in": PUBLIC,
    "GET /console/console.css": PUBLIC,
    "GET /console/icon.svg": PUBLIC,
    "POST /console/sign-out": EVERY_ROLE,
    "GET /console/": EVERY_ROLE,
    # orders (the API's queries; the timeline is the history routes')
    "GET /console/orders": READERS,
    "GET /console/orders/{order_no}": READERS,
    "POST /console/orders/{order_no}/contact": READERS,
    "GET /console/orders/{order_no}/timeline": HISTORY,
    # integrity (the API's history routes; verifying the whole log is an auditor's)
    "GET /console/integrity": HISTORY,
    "GET /console/integrity/inclusion/{position}": HISTORY,
    "POST /console/integrity/verify": AUDITORS,
    # projections
    "GET /console/projections": STATUS_READERS,
    # exports
    "GET /console/exports": EXPORT_READERS,
    "POST /console/exports/{request_id}/write": (REGULATOR,),  # as POST /v1/exports/…/bags
    "GET /console/exports/{request_id}/bags/{bag_id}": EXPORT_READERS,
    # personal data (the retention trail is the API's trail readers'; the rest admins')
    "GET /console/subjects": TRAIL_READERS,
    "POST /console/subjects/{subject_id}/holds": ADMINS,
    "POST /console/subjects/{subject_id}/holds/release": ADMINS,
    "POST /console/subjects/{subject_id}/erasure": ADMINS,
    "POST /console/subjects/{subject_id}/access-copy": ADMINS,
    # API keys
    "GET /console/keys": ADMINS,
    "POST /console/keys": ADMINS,
    "POST /console/keys/{key_id}/revoke": ADMINS,
}


def roles_of(route: str) -> tuple[str, ...]:
    """The roles of ``METHOD /console/path`` (``KeyError`` for a route the table lacks)."""
    return CONSOLE_ROLES[route]


# The menu: (path, Chinese, English, roles), each shown to the roles of its page.
NAV: list[tuple[str, str, str, tuple[str, ...]]] = [
    ("/console/orders", "订单", "Orders", CONSOLE_ROLES["GET /console/orders"]),
    ("/console/integrity", "完整性", "Integrity", CONSOLE_ROLES["GET /console/integrity"]),
    ("/console/projections", "投影", "Projections", CONSOLE_ROLES["GET /console/projections"]),
    ("/console/exports", "导出", "Exports", CONSOLE_ROLES["GET /console/exports"]),
    ("/console/subjects", "个人信息", "Personal data", CONSOLE_ROLES["GET /console/subjects"]),
    ("/console/keys", "密钥", "Keys", CONSOLE_ROLES["GET /console/keys"]),
]
