"""Queries over HTTP (the API issue, items 1, 4, 5): a GET per read-model query, keyset pages
with opaque tokens, read-your-writes with ``min_position``, positions and versions, personal
fields absent except through ``/contact`` (an auditor's read recorded in the log) — through
the real ASGI app, on SQLite and PostgreSQL. The mall is written through the API's own
command routes; the projections are run by their worker, as ``ledger projections run`` does.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from api.app import ApiSettings, create_app
from ledger.application import Ledger, open_ledger
from ledger.clock import ManualClock
from projections.engine import open_runtime
from projections.registry import PROJECTIONS
from projections.worker import Worker
from tests import builders as b
from tests.fix_api import Api
from tests.integration.test_api_commands import assert_problem
from tests.integration.test_projections_poison import refusal_written_directly

PERSONAL_VALUES = [*b.CONTACT.values(), "buyer@example.com"]
SEALED_PREFIX = "s2:"
CASES = [{"sku": "CASE-1", "quantity": 1, "unit_price_fen": 9900}]  # no purchase limit
LINKED_CONTACT = {**b.CONTACT, "phone": "13700001111"}  # A3 shares A1's address: linked


@contextmanager
def ledger_on(api: Api) -> Iterator[Ledger]:
    ledger = open_ledger(api.url, create=False)
    try:
        yield ledger
    finally:
        ledger.close()


def head(api: Api) -> int:
    with ledger_on(api) as ledger:
        return ledger.head_position()


def catch_up(url: str) -> int:
    """Run every projection's worker until it has applied the whole log; the position."""
    rt = open_runtime(url)
    try:
        return Worker(rt, PROJECTIONS).run(threading.Event(), until_caught_up=True).position
    finally:
        rt.close()


def send(api: Api, data: dict[str, Any], role: str = "service") -> Any:
    response = api.command(data, role=role)
    assert response.status_code == 200, response.text
    return response


@pytest.fixture
def mall(api: Api, clock: ManualClock) -> dict[str, Any]:
    """A1 (acct-1, coupon CPN-1) paid then terminated (its refund pending); A2 (acct-2, same
    contact: linked) paid, shipped, refused, flagged; a purchase limit on PHONE-14. The
    projections have applied all of it. Returns the last ETag of A1 and the position."""
    valid_from = (clock.now() - timedelta(days=1)).isoformat()
    limit = b.other(
        "define_purchase_limit", sku="PHONE-14", limit_qty=5, period_days=30, valid_from=valid_from
    )
    send(api, limit, role="admin")
    send(api, b.issue("CPN-1", campaign="spring"))
    send(api, b.submit("A1", coupons=["CPN-1"]))
    send(api, b.pay("A1"))
    send(api, b.order_cmd("request_mutual_termination", "A1", requested_by="user"))
    a1 = send(api, b.order_cmd("accept_mutual_termination", "A1"))
    send(api, b.submit("A2", account_no="acct-2", seller_id="seller-2"))
    send(api, b.pay("A2"))
    send(api, b.ship("A2"))
    send(api, b.order_cmd("refuse_delivery", "A2", quality_reason=False, reason="no"))
    evidence = {"orders": ["A2"], "signals": ["refusals"]}
    flag = b.order_cmd("raise_flag", "A2", flag_id="F-1", criterion=4, automated=True)
    send(api, {**flag, "evidence": evidence})
    send(api, b.submit("A3", account_no="acct-3", contact=LINKED_CONTACT))
    return {"a1_etag": a1.headers["ETag"], "position": catch_up(api.url)}


# Every query with the scenario's ids: each answers 200 to both reading roles.
QUERIES: list[tuple[str, dict[str, Any]]] = [
    ("/v1/orders/A1", {}),
    ("/v1/orders", {"account_no": "acct-1"}),
    ("/v1/orders", {"seller_id": "seller-2"}),
    ("/v1/orders", {"status": "closed"}),
    ("/v1/orders/A1/flags", {}),
    ("/v1/orders/A2/flags", {}),
    ("/v1/orders/A1/payments", {}),
    ("/v1/orders/A1/refunds", {}),
    ("/v1/orders/A1/retention", {}),
    ("/v1/entitlements/CPN-1", {}),
    ("/v1/entitlements", {"account_no": "acct-1"}),
    ("/v1/entitlements/CPN-1/history", {}),
    ("/v1/campaigns/spring/counts", {}),
    ("/v1/accounts/acct-1/linked", {}),
    ("/v1/accounts/acct-1/purchase-limits/PHONE-14", {}),
    ("/v1/accounts/acct-2/refusals", {}),
    ("/v1/flags/unreviewed", {}),
    ("/v1/reconciliation", {}),
    ("/v1/subjects/acct-1/retention", {}),
    ("/v1/subjects/acct-1/retention-steps", {}),
    ("/v1/retention/due", {"before": "2099-01-01T00:00:00Z"}),
]


def test_every_query_answers_both_reading_roles_with_its_position_and_no_personal_field(
    api: Api, mall: dict[str, Any]
) -> None:
    for path, params in QUERIES:
        for role in ("auditor", "admin") if "retention" in path else ("service", "auditor"):
            response = api.get(path, role=role, **params)
            assert response.status_code == 200, (path, role, response.text)
            body = response.json()
            assert body["position"] == int(response.headers["Ledger-Position"]) == mall["position"]
            text = response.text
            assert SEALED_PREFIX not in text, path
            assert not [v for v in PERSONAL_VALUES if v in text], path
            assert '"contact"' not in text and "payer_account" not in text, path


def test_an_order_reads_as_projected_with_its_stream_version_as_etag(
    api: Api, mall: dict[str, Any]
) -> None:
    response = api.get("/v1/orders/A1", role="auditor")
    order = response.json()["item"]
    assert (order["status"], order["closed_ground"], order["paid_fen"]) == (
        "closed",
        "mutual_termination",
        399900,
    )
    assert order["pending_refund_fen"] == 399900
    assert response.headers["ETag"] == mall["a1_etag"]  # what the last command on A1 gave
    # The ETag is what If-Match takes: a command conditional on it goes through, and then
    # the same ETag is stale.
    notify = b.order_cmd("notify_user", "A1", subject="refund", clause="3.1.2")
    assert api.command(notify, headers={"If-Match": response.headers["ETag"]}).status_code == 200
    again = b.order_cmd("notify_user", "A1", subject="refund", clause="3.1.2")
    stale = api.command(again, headers={"If-Match": response.headers["ETag"]})
    assert_problem(stale, 412, "PRECONDITION_FAILED")


def test_each_list_and_detail_answers_what_the_read_models_hold(
    api: Api, mall: dict[str, Any]
) -> None:
    def items(path: str, **params: Any) -> list[Any]:
        response = api.get(path, **params)
        assert response.status_code == 200, response.text
        found: list[Any] = response.json()["items"]
        return found

    def item(path: str, **params: Any) -> Any:
        response = api.get(path, **params)
        assert response.status_code == 200, response.text
        return response.json()["item"]

    assert [o["order_no"] for o in items("/v1/orders", account_no="acct-1")] == ["A1"]
    assert [o["order_no"] for o in items("/v1/orders", seller_id="seller-2")] == ["A2"]
    assert [o["order_no"] for o in items("/v1/orders", status="delivery_refused")] == ["A2"]
    assert items("/v1/orders", status="paid", until="2000-01-02T00:00:00Z") == []
    code = item("/v1/entitlements/CPN-1")
    assert (code["status"], code["forfeited_order"]) == ("forfeited", "A1")
    steps = [s["step"] for s in items("/v1/entitlements/CPN-1/history")]
    assert steps == ["issued", "consumed", "forfeited"]
    assert [e["code"] for e in items("/v1/entitlements", account_no="acct-1")] == ["CPN-1"]
    assert item("/v1/campaigns/spring/counts")["counts"] == {"coupon/forfeited": 1}
    assert items("/v1/accounts/acct-1/linked") == ["acct-1", "acct-2", "acct-3"]
    assert items("/v1/accounts/acct-9/linked") == ["acct-9"]  # nothing links it: alone
    usage = item("/v1/accounts/acct-3/purchase-limits/PHONE-14")
    # A1 was terminated after payment: it still counts, as the core's counters do.
    assert (usage["quantity"], usage["remaining"], usage["limit_qty"]) == (3, 2, 5)
    assert item("/v1/accounts/acct-2/refusals")["refusals"] == 1
    assert (
        item("/v1/accounts/acct-2/refusals", window_days=1, at="2026-06-01T00:00:00Z")["refusals"]
        == 0
    )
    (flag,) = items("/v1/orders/A2/flags")
    assert (flag["flag_id"], flag["criterion"], flag["outcome"]) == ("F-1", 4, None)
    assert [f["flag_id"] for f in items("/v1/flags/unreviewed")] == ["F-1"]
    assert items("/v1/orders/A1/flags") == []
    (payment,) = items("/v1/orders/A1/payments")
    assert (payment["paid_fen"], payment["pending_fen"], payment["outstanding_fen"]) == (
        399900,
        399900,
        399900,
    )
    (refund,) = items("/v1/orders/A1/refunds")
    assert (refund["amount_fen"], refund["status"]) == (399900, "initiated")
    assert "destination" not in refund
    assert items("/v1/reconciliation") == []
    assert item("/v1/orders/A1/retention", role="auditor")["retain_until"] is None


def test_a_completed_transaction_shows_in_the_retention_trail_and_the_due_list(
    api: Api, mall: dict[str, Any], clock: ManualClock
) -> None:
    (refund,) = api.get("/v1/orders/A1/refunds").json()["items"]
    clock.advance(timedelta(days=1))
    send(api, b.order_cmd("complete_refund", "A1", refund_id=refund["refund_id"]))
    send(api, b.order_cmd("complete_transaction", "A1"))
    catch_up(api.url)
    retention = api.get("/v1/orders/A1/retention", role="auditor").json()["item"]
    assert retention["retain_until"] is not None and retention["subject_id"] == "acct-1"
    steps = api.get("/v1/subjects/acct-1/retention-steps", role="admin").json()["items"]
    assert [s["step"] for s in steps] == ["scheduled"]
    due = api.get("/v1/retention/due", role="auditor", before="2099-12-31T00:00:00Z")
    assert [d["order_no"] for d in due.json()["items"]] == ["A1"]
    assert api.get("/v1/retention/due", role="auditor").json()["items"] == []  # not due now


# -- unknown ids and bad parameters -----------------------------------------------------------
# An id holding a phone number: a problem must not echo it. (A bare phone number is refused
# as an account outright: test_api_bad_input.py.)
UNKNOWN = "U13800000000"


@pytest.mark.parametrize(
    "path",
    [
        "/v1/orders/{id}",
        "/v1/orders/{id}/contact",
        "/v1/orders/{id}/flags",
        "/v1/orders/{id}/payments",
        "/v1/orders/{id}/refunds",
        "/v1/orders/{id}/retention",
        "/v1/entitlements/{id}",
        "/v1/entitlements/{id}/history",
        "/v1/campaigns/{id}/counts",
        "/v1/subjects/{id}/retention",
        "/v1/subjects/{id}/retention-steps",
        "/v1/accounts/acct-1/purchase-limits/{id}",
    ],
)
def test_an_unknown_id_is_404_and_the_problem_does_not_echo_it(
    api: Api, mall: dict[str, Any], path: str
) -> None:
    response = api.get(path.format(id=UNKNOWN), role="auditor")
    problem = assert_problem(response, 404, "NOT_FOUND")
    assert UNKNOWN not in response.text
    assert problem["instance"].startswith("/v1/") and "{" in problem["instance"]
    assert head(api) == mall["position"]  # a 404 contact read records nothing


BAD_PARAMETERS: list[tuple[str, dict[str, Any], str]] = [
    ("/v1/orders", {"account_no": "acct-1", "page_size": 201}, "page_size"),
    ("/v1/orders", {"account_no": "acct-1", "page_size": 0}, "page_size"),
    ("/v1/orders", {"account_no": "acct-1", "page_size": 201}, "page_size"),
    ("/v1/orders", {"account_no": "acct-1", "page_size": "ten"}, "page_size"),
    ("/v1/orders", {"account_no": "acct-1", "min_position": -1}, "min_position"),
    ("/v1/orders/A1", {"min_position": "13800000000x"}, "min_position"),
    ("/v1/orders", {"status": "13800000000"}, "status"),
    ("/v1/orders", {"status": "paid", "since": "13800000000"}, "since"),
    ("/v1/orders", {"status": "paid", "since": "2026-03-01T00:00:00"}, "since"),
    ("/v1/orders", {"status": "paid", "until": "2026-02-30T00:00:00Z"}, "until"),
    ("/v1/orders", {"account_no": "acct-1", "since": "2026-03-01T00:00:00Z"}, "since"),
    ("/v1/orders", {}, "account_no/seller_id/status"),
    ("/v1/orders", {"account_no": "acct-1", "seller_id": "s"}, "account_no/seller_id/status"),
    ("/v1/orders", {"account_no": "a" * 129}, "account_no"),
    ("/v1/entitlements", {}, "account_no"),
    ("/v1/accounts/acct-1/refusals", {"window_days": 0}, "window_days"),
    ("/v1/accounts/acct-1/refusals", {"at": "13800000000"}, "at"),
    ("/v1/retention/due", {"before": "yesterday"}, "before"),
    ("/v1/orders", {"account_no": "acct-1", "page_token": "13800000000"}, "page_token"),
    ("/v1/flags/unreviewed", {"page_token": "x" * 2000}, "page_token"),
    # A NUL or a line break in an id or a filter never reaches the database.
    ("/v1/orders/13800000000%00", {}, "order_no"),
    ("/v1/subjects/13800000000%0A/retention-steps", {}, "subject_id"),
    ("/v1/orders", {"account_no": "13800000000\x00"}, "account_no"),
    ("/v1/orders", {"seller_id": "13800000000\u2028"}, "seller_id"),
    # A parameter the route does not take (a misspelt filter, say) is refused, unnamed.
    ("/v1/orders", {"account_no": "acct-1", "acount_no": "13800000000"}, "query"),
    ("/v1/flags/unreviewed", {"13800000000": "1"}, "query"),
]


@pytest.mark.parametrize(("path", "params", "name"), BAD_PARAMETERS)
def test_a_bad_parameter_is_400_naming_it_and_its_rule_never_its_value(
    api: Api, path: str, params: dict[str, Any], name: str
) -> None:
    response = api.get(path, role="auditor", **params)
    problem = assert_problem(response, 400, "INVALID_PARAMETER")
    assert problem["errors"][0]["pointer"] == name and problem["errors"][0]["rule"]
    assert problem["detail"].startswith(name)
    assert "13800000000" not in response.text and "yesterday" not in response.text
    # The rule is the ledger's own wording, never pydantic's sentence (which may quote input).
    assert "Input should" not in response.text and "Value error" not in response.text


# -- pages ------------------------------------------------------------------------------------
def walk(api: Api, path: str, page_size: int, **params: Any) -> list[list[Any]]:
    """Every page of a list, following next_page_token to the last (null) one."""
    pages, token = [], None
    while True:
        sent = {**params, "page_size": page_size, **({"page_token": token} if token else {})}
        response = api.get(path, **sent)
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append(body["items"])
        token = body["next_page_token"]
        if token is None:
            return pages


def test_pages_walk_a_long_list_without_duplicates_or_gaps_as_orders_arrive(
    api: Api, mall: dict[str, Any]
) -> None:
    # The clock stands still: every order has the same submission time, and the order
    # number alone breaks the ties.
    numbers = [f"W{n}" for n in range(7)]
    for number in numbers:
        send(api, b.submit(number, account_no="acct-walk", lines=CASES))
    catch_up(api.url)
    first = api.get("/v1/orders", account_no="acct-walk", page_size=3).json()
    # W9 arrives during the walk, in the part already walked (it sorts first): an OFFSET
    # page would now repeat W4; a keyset page goes on after W4.
    send(api, b.submit("W9", account_no="acct-walk", lines=CASES))
    catch_up(api.url)
    rest = walk(api, "/v1/orders", 3, account_no="acct-walk", page_token=first["next_page_token"])
    seen = [o["order_no"] for page in [first["items"], *rest] for o in page]
    assert seen == sorted(numbers, reverse=True)  # newest first, each once
    assert [len(p) for p in [first["items"], *rest]] == [3, 3, 1]
    ascending = walk(api, "/v1/orders", 2, status="awaiting_payment")
    assert [o["order_no"] for page in ascending for o in page] == sorted(["A3", "W9", *numbers])
    assert all(len(page) == 2 for page in ascending[:-1])
    linked = walk(api, "/v1/accounts/acct-2/linked", 1)  # acct-walk shares the contact
    assert linked == [["acct-1"], ["acct-2"], ["acct-3"], ["acct-walk"]]


def test_a_token_is_good_only_for_its_own_list_and_filters_and_unaltered(
    api: Api, mall: dict[str, Any]
) -> None:
    token = api.get("/v1/accounts/acct-1/linked", page_size=1).json()["next_page_token"]
    assert api.get("/v1/accounts/acct-1/linked", page_size=1, page_token=token).status_code == 200
    flipped = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    for path, params in [
        ("/v1/accounts/acct-1/linked", {"page_token": flipped}),  # altered
        ("/v1/accounts/acct-2/linked", {"page_token": token}),  # other filters
        ("/v1/orders", {"account_no": "acct-1", "page_token": token}),  # another list
    ]:
        response = api.get(path, **params)
        assert_problem(response, 400, "INVALID_PARAMETER")
        assert response.json()["errors"][0]["pointer"] == "page_token"
        assert token not in response.text


# -- read-your-writes -------------------------------------------------------------------------
def test_min_position_waits_until_the_projection_has_applied_it(
    api: Api, mall: dict[str, Any]
) -> None:
    written = send(api, b.submit("RYW-1", account_no="acct-ryw"))
    position = int(written.headers["Ledger-Position"])
    assert api.get("/v1/orders/RYW-1").status_code == 404  # not projected yet

    def later() -> None:
        time.sleep(0.3)
        catch_up(api.url)

    worker = threading.Thread(target=later)
    worker.start()
    try:
        response = api.get("/v1/orders/RYW-1", min_position=position)
    finally:
        worker.join()
    assert response.status_code == 200, response.text
    assert response.json()["item"]["account_no"] == "acct-ryw"
    assert int(response.headers["Ledger-Position"]) >= position
    listed = api.get("/v1/orders", account_no="acct-ryw", min_position=position).json()
    assert [o["order_no"] for o in listed["items"]] == ["RYW-1"]


@pytest.fixture
def impatient(api: Api, clock: ManualClock) -> Iterator[TestClient]:
    """A second app on the same ledger whose queries wait for min_position 0.2 s only."""
    settings = ApiSettings(url=api.url, clock=clock, key_cache_s=0, read_wait_s=0.2)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


def test_min_position_not_reached_in_time_is_409_with_the_projections_position(
    api: Api, mall: dict[str, Any], impatient: TestClient
) -> None:
    written = send(api, b.submit("RYW-2"))
    asked = int(written.headers["Ledger-Position"])
    for path in ("/v1/orders/A1", "/v1/orders/A1/payments", "/v1/campaigns/spring/counts"):
        response = impatient.get(path, params={"min_position": asked}, headers=api.auth("auditor"))
        problem = assert_problem(response, 409, "PROJECTION_BEHIND")
        assert problem["position"] == mall["position"] < asked


def test_a_projection_stopped_before_min_position_is_503_at_once(
    api: Api, mall: dict[str, Any]
) -> None:
    with ledger_on(api) as ledger:
        poison = refusal_written_directly(ledger, {"not": "text"})  # flags cannot apply it
        send(api, b.submit("AFTER-POISON"))
        asked = ledger.head_position()
    catch_up(api.url)
    started = time.monotonic()
    response = api.get("/v1/flags/unreviewed", min_position=asked)
    problem = assert_problem(response, 503, "PROJECTION_STOPPED")
    assert problem["position"] == poison and response.headers["Retry-After"]
    assert time.monotonic() - started < 4  # told at once, not after the 5 s wait
    assert api.get("/v1/orders/AFTER-POISON", min_position=asked).status_code == 200


# -- personal data ----------------------------------------------------------------------------
def test_the_contact_is_revealed_to_a_service_unrecorded(api: Api, mall: dict[str, Any]) -> None:
    response = api.get("/v1/orders/A1/contact", role="service")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["item"] == {"order_no": "A1", "contact": b.CONTACT, "recorded": False}
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["ETag"] == mall["a1_etag"]
    assert head(api) == mall["position"]


def test_an_auditors_read_of_a_contact_is_recorded_first_and_shows_in_the_trail(
    api: Api, mall: dict[str, Any]
) -> None:
    response = api.get("/v1/orders/A2/contact", role="auditor")
    assert response.status_code == 200, response.text
    assert response.json()["item"]["contact"] == b.CONTACT
    assert response.json()["item"]["recorded"] is True
    position = int(response.headers["Ledger-Position"])
    assert position == head(api) == mall["position"] + 1
    with ledger_on(api) as ledger:
        (stored,) = ledger.app.recorder.select_notifications(position, 1)
    assert stored.topic == "mall-ledger/personal-data/Read"
    state = orjson.loads(stored.state)
    key_id = api.keys["auditor"].split("_")[1]
    assert state["actor"] == {"key_id": key_id, "role": "auditor"}
    assert (state["subject_id"], state["order_no"]) == ("acct-2", "A2")
    assert state["fields"] == sorted(b.CONTACT)
    assert not [v for v in PERSONAL_VALUES if v in stored.state.decode()]
    catch_up(api.url)
    trail = "/v1/subjects/acct-2/retention-steps"
    steps = api.get(trail, role="auditor", min_position=position).json()
    (accessed,) = [s for s in steps["items"] if s["step"] == "accessed"]
    assert accessed["order_no"] == "A2" and accessed["position"] == position
    assert accessed["detail"] == {"key_id": key_id, "role": "auditor", "fields": state["fields"]}


def test_an_erased_subject_reads_erased_in_every_field(
    api: Api, mall: dict[str, Any], clock: ManualClock
) -> None:
    api.get("/v1/orders/A1/contact")  # the app's ledger now holds acct-1's key in its cache
    with ledger_on(api) as ledger:  # erased by another process
        assert ledger.keystore.destroy("acct-1", clock.now())
    contact = api.get("/v1/orders/A1/contact", role="auditor").json()["item"]["contact"]
    assert contact == {name: "[erased]" for name in b.CONTACT}
