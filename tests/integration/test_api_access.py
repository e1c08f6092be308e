"""Who may call what (the API issue, item 5 and "Done means"): every route of the app, GET
and POST alike (commands, queries, admin, public documents) × every role × no key, an
unknown key and a revoked one, against the one table the README shares (api/access.py).

A bad key is 401 wherever a key is needed; a role outside the route's is 403 ``FORBIDDEN``;
a role inside it is neither (its answer is the route's own: a 400 for the dummy parameters,
a 404 for a dummy id, a 422 for an empty command). Nothing here writes: the command bodies
are empty and the key id revoked is never issued.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import fastapi.routing
from starlette.routing import BaseRoute

from api.access import PUBLIC, ROUTE_ROLES, allowed_roles
from tests.fix_api import ROLES, Api
from tests.integration.test_api_queries import head

BAD_KEYS = ("none", "unknown", "revoked")
README = Path(__file__).resolve().parents[2] / "README.md"
TABLE_ROW = re.compile(r"^\| `(GET|POST) (\S+)` \| ([a-z, ]+|none) \|$")
# Dummy values for path parameters: ids nothing has, a key id never issued, and a hold
# reference no id can be (400): releasing a hold that is not on is a refusal the ledger
# records as the command's outcome, and nothing here may write.
PATH_VALUES = {"key_id": "000000000000", "reference": "not an id"}
# Routes that take ``{}`` as a whole request get a body they refuse, so the test writes nothing.
REFUSED_BODIES: dict[str, Any] = {"/v1/subjects/{subject_id}/erasure": {"reference": ""}}


def app_routes(api: Api) -> list[Any]:
    """Every route of the app, those of included routers too (FastAPI 0.16x keeps an
    included router as one node of ``app.routes``; its ``iter_route_contexts`` opens them,
    as its OpenAPI generator does)."""
    routes: list[BaseRoute] = api.client.app.routes  # type: ignore[attr-defined]  # the app
    flatten = getattr(fastapi.routing, "iter_route_contexts", None)
    return list(routes if flatten is None else flatten(routes))


def endpoints(api: Api) -> list[tuple[str, str]]:
    """(method, path template) of every route the app serves (HEAD aside)."""
    found = []
    for route in app_routes(api):
        methods = getattr(route, "methods", None) or set()
        for method in sorted(methods - {"HEAD"}):
            found.append((method, str(route.path)))
    return found


def request(api: Api, method: str, template: str, key: str) -> Any:
    path = re.sub(r"\{(\w+)\}", lambda m: PATH_VALUES.get(m.group(1), "none-1"), template)
    headers = {"Idempotency-Key": "access-test-1"}
    if key != "none":
        headers["Authorization"] = f"Bearer {api.keys[key]}"
    if method == "POST":
        return api.client.post(path, json=REFUSED_BODIES.get(template, {}), headers=headers)
    return api.client.get(path, headers=headers)


def test_every_route_admits_exactly_its_roles_and_refuses_bad_keys(api: Api) -> None:
    before = head(api)
    routes = endpoints(api)
    assert len(routes) >= 60  # the commands, the queries, admin, the documents
    unlisted = [f"{m} {p}" for m, p in routes if not _listed(m, p)]
    assert unlisted == [], "state who may call these in api/access.py and the README"
    wrong = []
    for method, template in routes:
        allowed = allowed_roles(method, template)
        for key in (*ROLES, *BAD_KEYS):
            status = request(api, method, template, key).status_code
            if allowed == PUBLIC:
                expected_ok = status not in (401, 403)
            elif key in BAD_KEYS:
                expected_ok = status == 401
            elif key in allowed:
                expected_ok = status not in (401, 403) and status < 500
            else:
                expected_ok = status == 403
            if not expected_ok:
                wrong.append((method, template, key, status))
    assert wrong == []
    assert head(api) == before  # nothing was written


def _listed(method: str, path: str) -> bool:
    try:
        allowed_roles(method, path)
    except KeyError:
        return False
    return True


def test_the_readme_states_the_same_roles_per_route_as_the_table() -> None:
    text = README.read_text(encoding="utf-8")
    documented = {}
    for line in text.splitlines():
        found = TABLE_ROW.match(line)
        if found:
            method, path, roles = found.groups()
            parsed = () if roles == "none" else tuple(r.strip() for r in roles.split(","))
            documented[f"{method} {path}"] = parsed
    assert documented == ROUTE_ROLES


def test_every_query_route_is_for_the_reading_roles_only(api: Api) -> None:
    """The queries are the service's and the auditor's; the retention audit trail the
    auditor's and the admin's (who examine the lifecycle, not who deliver)."""
    queries = [r.path for r in app_routes(api) if "queries" in (getattr(r, "tags", None) or [])]
    assert len(queries) >= 18
    for path in queries:
        readers = ("auditor", "admin") if "retention" in path else ("service", "auditor")
        assert allowed_roles("GET", path) == readers, path
