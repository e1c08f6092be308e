"""Commands over HTTP (the API issue, items 1-5): a POST per command type, idempotent
retries, conditional commands, RFC 9457 problems, roles — through the real ASGI app, on
SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from ledger.commands import COMMAND_TYPES
from ledger.domain.codes import BY_CODE
from tests import builders as b
from tests.fix_api import Api

PROBLEM = "application/problem+json"


def head(api: Api) -> int:
    from ledger.application import open_ledger

    ledger = open_ledger(api.url, create=False)
    try:
        return ledger.head_position()
    finally:
        ledger.close()


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["code"] == code
    assert body["type"] == f"/v1/problems/{code}" and body["instance"].startswith("/v1/")
    assert body["title"] and body["detail"] and "clause" in body
    return body


def test_an_accepted_command_answers_with_its_position_and_version(api: Api) -> None:
    submitted = api.command(b.submit("H1"))
    assert submitted.status_code == 200, submitted.text
    body = submitted.json()
    assert body["events"] == ["order/Submitted"] and body["version"] == 1
    assert submitted.headers["ETag"] == '"1"'
    assert int(submitted.headers["Ledger-Position"]) == body["position"] == head(api)
    paid = api.command(b.pay("H1"))
    assert paid.status_code == 200 and paid.json()["position"] > body["position"]


def test_a_retry_gets_the_first_response_and_writes_nothing(api: Api) -> None:
    submit = b.submit("H2")
    first = api.command(submit)
    api.command(b.submit("H2-other"))
    before = head(api)
    again = api.command(submit)
    assert (again.status_code, again.content) == (first.status_code, first.content)
    assert again.headers["ETag"] == first.headers["ETag"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert head(api) == before


def test_a_refusal_is_a_problem_with_its_code_and_clause_and_a_retry_gets_it_again(
    api: Api,
) -> None:
    api.command(b.submit("H3"))
    api.command(b.pay("H3"))
    second = b.pay("H3")
    refused = api.command(second)
    body = assert_problem(refused, 409, "ALREADY_PAID")
    assert body["clause"] == BY_CODE["ALREADY_PAID"].clause != ""
    before = head(api)
    again = api.command(second)
    assert (again.status_code, again.content) == (refused.status_code, refused.content)
    assert head(api) == before


def test_the_same_key_with_another_body_is_refused_command_id_reused(api: Api) -> None:
    submit = b.submit("H4")
    api.command(submit)
    before = head(api)
    other = api.command({**submit, "seller_id": "another-seller"})
    assert_problem(other, 422, "COMMAND_ID_REUSED")
    assert head(api) == before


def test_a_command_without_an_idempotency_key_is_refused_and_writes_nothing(api: Api) -> None:
    body = {k: v for k, v in b.submit("H5").items() if k not in ("type", "command_id")}
    before = head(api)  # the keys' own events
    for headers in ({}, {"Idempotency-Key": ""}, {"Idempotency-Key": "a b"}):
        response = api.client.post(
            "/v1/commands/submit_order", json=body, headers={**api.auth("service"), **headers}
        )
        assert_problem(response, 400, "IDEMPOTENCY_KEY_REQUIRED")
    assert head(api) == before


def test_a_stale_if_match_is_refused_412_and_the_current_one_goes_through(api: Api) -> None:
    etag = api.command(b.submit("H6")).headers["ETag"]
    api.command(b.order_cmd("notify_user", "H6", subject="stock", clause="3.1.5"))
    before = head(api)
    stale = api.command(b.pay("H6"), headers={"If-Match": etag})
    assert_problem(stale, 412, "PRECONDITION_FAILED")
    assert head(api) == before
    current = f'"{int(etag.strip(chr(34))) + 1}"'
    assert api.command(b.pay("H6"), headers={"If-Match": current}).status_code == 200
    assert_problem(api.command(b.pay("H6"), headers={"If-Match": "3"}), 400, "INVALID_PARAMETER")


def test_the_envelope_fields_come_from_the_route_and_the_key_not_the_body(api: Api) -> None:
    submit = b.submit("H7")
    for extra in ({"type": "submit_order"}, {"command_id": "x"}):
        body = {**{k: v for k, v in submit.items() if k not in ("type", "command_id")}, **extra}
        response = api.post("/v1/commands/submit_order", body, key=submit["command_id"])
        problem = assert_problem(response, 422, "INVALID_COMMAND")
        assert problem["errors"][0]["pointer"] == "/" + next(iter(extra))


def test_every_command_type_has_a_route_documented_with_its_body(api: Api) -> None:
    document = api.client.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    for kind in COMMAND_TYPES:
        operation = document["paths"][f"/v1/commands/{kind}"]["post"]
        ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        assert ref.rsplit("/", 1)[-1] in schemas
        assert {"400", "401", "403", "409", "412", "413", "415", "422", "503"} <= set(
            operation["responses"]
        )


# -- who may send what --------------------------------------------------------------------
@pytest.mark.parametrize("role", ["auditor", "regulator", "admin"])
def test_only_the_service_role_sends_the_agreements_commands(api: Api, role: str) -> None:
    before = head(api)
    assert_problem(api.command(b.submit("R1"), role=role), 403, "FORBIDDEN")
    assert head(api) == before


@pytest.mark.parametrize("role", ["service", "auditor", "regulator"])
def test_only_admins_define_promotions(api: Api, role: str) -> None:
    promotion = b.other(
        "define_promotion",
        promotion_no="P1",
        valid_from="2026-03-01T00:00:00+08:00",
        valid_until="2026-04-01T00:00:00+08:00",
    )
    assert_problem(api.command(promotion, role=role), 403, "FORBIDDEN")
    assert api.command(promotion, role="admin").status_code == 200


@pytest.mark.parametrize("key", [None, "revoked", "unknown", "malformed"])
def test_a_missing_unknown_or_revoked_key_is_401_with_a_bearer_challenge(
    api: Api, key: str | None
) -> None:
    headers = {"Idempotency-Key": "k-1"}
    if key is not None:
        token = "not-a-key" if key == "malformed" else api.keys[key]
        headers["Authorization"] = f"Bearer {token}"
    response = api.client.post("/v1/commands/submit_order", json={}, headers=headers)
    assert_problem(response, 401, "UNAUTHENTICATED")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_the_command_record_names_the_key_that_sent_it(api: Api) -> None:
    from ledger.application import open_ledger
    from ledger.domain.ids import command_record_id

    submit = b.submit("R2")
    api.command(submit)
    key_id = api.keys["service"].split("_")[1]
    ledger = open_ledger(api.url, create=False)
    try:
        record = ledger.app.repository.get(command_record_id(submit["command_id"]))
    finally:
        ledger.close()
    assert record.actor == {"key_id": key_id, "role": "service"}


def test_every_command_routes_example_is_a_body_its_route_takes(api: Api) -> None:
    from api.commands import BODY_MODELS
    from ledger.commands import parse_command

    document = api.client.get("/openapi.json").json()
    for kind in COMMAND_TYPES:
        content = document["paths"][f"/v1/commands/{kind}"]["post"]["requestBody"]["content"]
        example = content["application/json"]["example"]
        BODY_MODELS[kind].model_validate(example)
        parse_command({**example, "type": kind, "command_id": f"example-{kind}"})


def test_every_response_model_in_the_document_carries_an_example(api: Api) -> None:
    document = api.client.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    for path in document["paths"].values():
        for operation in path.values():
            for status, response in operation["responses"].items():
                for media in response.get("content", {}).values():
                    ref = media.get("schema", {}).get("$ref")
                    if ref is None or not status.startswith("2"):
                        continue
                    assert "example" in media or exemplified(schemas, ref), ref


def exemplified(schemas: dict[str, Any], ref: str) -> bool:
    """The schema has examples, or wraps (``item``, ``items``) one that has: a page of orders
    is shown by its orders' example."""
    model = schemas[ref.rsplit("/", 1)[-1]]
    if "examples" in model:
        return True
    for name in ("item", "items"):
        inner = model.get("properties", {}).get(name, {})
        inner_ref = inner.get("$ref") or inner.get("items", {}).get("$ref")
        if inner_ref and exemplified(schemas, inner_ref):
            return True
    return False
