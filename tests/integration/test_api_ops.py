"""Operations over HTTP (the API issue, item 8): ``/healthz``, ``/metrics``, request ids and
the per-request log line — through the real ASGI app, on SQLite and PostgreSQL, with real
outages (a SQLite file moved away, a PostgreSQL database closed to connections or dropped)
and a real poison event."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families
from psycopg import sql

from api.logs import JsonFormatter
from ledger.application import Ledger, open_ledger
from projections.engine import open_runtime
from tests import builders as b
from tests.fix_api import Api
from tests.fix_pg import admin_url
from tests.integration.test_api_commands import PROBLEM, head
from tests.integration.test_projections_poison import refusal_written_directly, run_worker
from tests.pii_inputs import ADDRESS, NAME, PERSONAL, PHONE

JSON = "application/json"
PROJECTION_NAMES = {"orders", "entitlements", "limits", "flags", "payments", "retention"}
RECOVERY_S = 30  # a pool reconnects with a backoff after an outage


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    """An RFC 9457 problem of ``code`` about the path that was asked for."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["code"] == code
    assert body["type"] == f"/v1/problems/{code}"
    assert body["instance"] == response.request.url.path
    assert body["title"] and body["detail"] and "clause" in body
    return body


@contextmanager
def ledger_on(api: Api) -> Iterator[Ledger]:
    ledger = open_ledger(api.url, create=False)
    try:
        yield ledger
    finally:
        ledger.close()


def catch_up(api: Api) -> None:
    rt = open_runtime(api.url)
    try:
        run_worker(rt)
    finally:
        rt.close()


def eventually(probe: Callable[[], Any], done: Callable[[Any], bool]) -> Any:
    """``probe()`` again until ``done`` with it, for at most RECOVERY_S seconds."""
    deadline = time.monotonic() + RECOVERY_S
    while True:
        found = probe()
        if done(found) or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


# -- /healthz ------------------------------------------------------------------------------
def test_healthz_needs_no_key_and_gives_each_projections_position_and_lag(api: Api) -> None:
    catch_up(api)
    caught_up = head(api)
    healthy = api.client.get("/healthz")
    assert healthy.status_code == 200, healthy.text
    body = healthy.json()
    assert body["status"] == body["store"] == "ok" and body["head"] == caught_up
    assert set(body["projections"]) == PROJECTION_NAMES
    for name, row in body["projections"].items():
        assert row == {"position": caught_up, "lag_events": 0, "stopped": False}, name

    api.command(b.submit("HZ1"))
    api.command(b.pay("HZ1"))
    behind = api.client.get("/healthz").json()
    assert behind["head"] == head(api) > caught_up
    for row in behind["projections"].values():  # behind is not unhealthy
        assert row["position"] == caught_up and row["lag_events"] == head(api) - caught_up


def test_a_projection_stopped_on_a_poison_event_makes_healthz_503(api: Api) -> None:
    with ledger_on(api) as ledger:
        poison = refusal_written_directly(ledger, {"not": "text"})  # flags cannot store it
    catch_up(api)
    response = api.client.get("/healthz")
    body = assert_problem(response, 503, "PROJECTION_STOPPED")
    assert response.headers["Retry-After"].isdigit()
    assert body["store"] == "ok"
    assert body["projections"]["flags"]["stopped"] is True
    assert body["projections"]["flags"]["position"] == poison - 1
    assert not any(row["stopped"] for name, row in body["projections"].items() if name != "flags")
    assert f"flags at position {poison}" in body["detail"]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_sqlite_ledger_file_gone_is_503_and_healthy_again_when_it_is_back(api: Api) -> None:
    path = Path(api.url.removeprefix("sqlite:///"))
    assert api.client.get("/healthz").status_code == 200
    moved = path.with_name("elsewhere.db")
    path.rename(moved)
    try:
        response = api.client.get("/healthz")
        body = assert_problem(response, 503, "STORAGE_UNAVAILABLE")
        assert body["store"] == "unavailable" and response.headers["Retry-After"].isdigit()
        assert str(path.parent) not in response.text  # a public route names no file
        assert not path.exists()  # the probe made no empty ledger in its place
    finally:
        moved.rename(path)
    assert api.client.get("/healthz").status_code == 200


def database_name(api: Api) -> str:
    return api.url.rsplit("/", 1)[-1]


def as_admin(statement: sql.Composable) -> None:
    with psycopg.connect(admin_url(), autocommit=True) as conn:
        conn.execute(statement)


def close_database(name: str, allow: bool) -> None:
    """Refuse (or allow again) new connections to ``name`` and end the ones it has."""
    value = sql.SQL("true" if allow else "false")
    as_admin(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS {}").format(sql.Identifier(name), value))
    if not allow:
        as_admin(
            sql.SQL(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = {}"
            ).format(sql.Literal(name))
        )


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_a_postgresql_outage_is_503_then_healthy_again_and_a_dropped_database_503(
    api: Api,
) -> None:
    name = database_name(api)
    assert api.client.get("/healthz").status_code == 200
    close_database(name, allow=False)
    try:
        started = time.monotonic()
        response = api.client.get("/healthz")
        assert time.monotonic() - started < 30  # bounded: it does not wait on the server
        body = assert_problem(response, 503, "STORAGE_UNAVAILABLE")
        assert body["store"] == "unavailable" and name not in response.text
    finally:
        close_database(name, allow=True)
    recovered = eventually(lambda: api.client.get("/healthz"), lambda r: r.status_code == 200)
    assert recovered.status_code == 200, recovered.text

    as_admin(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
    assert_problem(api.client.get("/healthz"), 503, "STORAGE_UNAVAILABLE")


# -- request ids and the log line -----------------------------------------------------------
def test_a_safe_request_id_is_echoed_and_any_other_replaced(api: Api) -> None:
    sent = api.client.get("/healthz", headers={"X-Request-Id": "lb-7f3a:0001"})
    assert sent.headers["X-Request-Id"] == "lb-7f3a:0001"
    made = {api.client.get("/healthz").headers["X-Request-Id"] for _ in range(3)}
    assert len(made) == 3 and all(len(rid) == 32 for rid in made)
    for unsafe in (NAME.encode(), b"a" * 65, b"two words", b"a/b", b""):
        answered = api.client.get("/healthz", headers={"X-Request-Id": unsafe})
        assert len(answered.headers["X-Request-Id"]) == 32


def request_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [vars(r)["fields"] for r in caplog.records if r.name == "api.request"]


def test_one_log_line_per_request_names_route_template_status_and_key_not_the_path(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    key_id = api.keys["admin"].split("_")[1]
    revoked = api.post(
        f"/v1/keys/{key_id}/revoke", {}, role="admin", key="r-1", headers={"X-Request-Id": "r-1"}
    )
    (line,) = [line for line in request_lines(caplog) if line["request_id"] == "r-1"]
    assert line["route"] == "/v1/keys/{key_id}/revoke" and line["method"] == "POST"
    assert line["status"] == revoked.status_code and line["duration_ms"] >= 0
    assert (line["key_id"], line["role"]) == (key_id, "admin")
    unknown = api.client.get("/v1/orders/HZ-77/anything", headers={"X-Request-Id": "u-1"})
    (line,) = [line for line in request_lines(caplog) if line["request_id"] == "u-1"]
    assert unknown.status_code == 404 and line["route"] == "unmatched"
    page = api.client.get(
        "/console/orders/HZ-77", headers={"X-Request-Id": "c-1"}, follow_redirects=False
    )
    (line,) = [line for line in request_lines(caplog) if line["request_id"] == "c-1"]
    assert page.status_code == 303 and line["route"] == "/console/orders/{order_no}"


def test_personal_data_in_a_body_query_or_header_never_reaches_the_log(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    personal = {**b.CONTACT, "recipient_name": NAME, "phone": PHONE, "address": ADDRESS}
    accepted = b.submit("PD1", contact=personal)
    refused = b.submit("PD2", contact={**personal, "phone": f"{PHONE}\u0000{NAME}"})
    query = {"name": NAME, "phone": PHONE}
    for command in (accepted, refused, accepted):
        body = {k: v for k, v in command.items() if k not in ("type", "command_id")}
        api.client.post(
            "/v1/commands/submit_order",
            params=query,
            json=body,
            headers={**api.auth("service"), "Idempotency-Key": command["command_id"]},
        )
    api.client.post(
        "/v1/commands/submit_order",
        content=f'{{"account_no": "{NAME}"'.encode(),  # malformed: cut off
        headers={**api.auth("service"), "Idempotency-Key": "pd-3", "Content-Type": JSON},
    )
    assert [line["status"] for line in request_lines(caplog)] == [200, 422, 200, 400]
    formatter = JsonFormatter()
    server = [r for r in caplog.records if not r.name.startswith("httpx")]  # not the client's
    written = [formatter.format(r) for r in server] + [f"{vars(r)}" for r in server]
    assert not [text for value in PERSONAL for text in written if value in text]


# -- /metrics -------------------------------------------------------------------------------
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(api: Api) -> Samples:
    response = api.client.get("/metrics", headers=api.auth("admin"))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.mark.parametrize("role", ["service", "auditor", "regulator"])
def test_metrics_are_for_admins(api: Api, role: str) -> None:
    assert_problem(api.client.get("/metrics", headers=api.auth(role)), 403, "FORBIDDEN")
    assert_problem(api.client.get("/metrics"), 401, "UNAUTHENTICATED")


def test_metrics_count_requests_by_route_template_and_commands_by_outcome_and_code(
    api: Api,
) -> None:
    submit = b.submit("M1")
    api.command(submit)
    api.command(submit)  # a retry
    api.command(b.pay("M1"))
    api.command(b.pay("M1"))  # ALREADY_PAID
    api.post("/v1/commands/receive_payment", {"order_no": "M1"}, key="m-bad")  # INVALID_COMMAND
    auditor = api.keys["auditor"].split("_")[1]
    revoked = api.post(f"/v1/keys/{auditor}/revoke", {}, role="admin", key="m-r").status_code
    found = scrape(api)
    requests = "ledger_http_requests_total"
    route = "/v1/commands/submit_order"
    assert value(found, requests, method="POST", route=route, status="200") == 2
    payment = "/v1/commands/receive_payment"
    assert value(found, requests, method="POST", route=payment, status="409") == 1
    revoke = "/v1/keys/{key_id}/revoke"
    assert value(found, requests, method="POST", route=revoke, status=str(revoked)) == 1
    assert not [labels for _, labels in found if "M1" in str(labels)]  # no ids in labels
    latency = "ledger_http_request_duration_seconds_count"
    assert value(found, latency, method="POST", route=route) == 2
    commands = "ledger_commands_total"
    pay = "receive_payment"
    assert value(found, commands, type="submit_order", outcome="accepted", code="none") == 1
    assert value(found, commands, type="submit_order", outcome="replayed", code="none") == 1
    assert value(found, commands, type=pay, outcome="accepted", code="none") == 1
    assert value(found, commands, type=pay, outcome="refused", code="ALREADY_PAID") == 1
    assert value(found, commands, type=pay, outcome="refused", code="INVALID_COMMAND") == 1


def test_metrics_give_each_projections_lag_at_scrape_time(api: Api) -> None:
    lag = "ledger_projection_lag_events"
    before = scrape(api)
    assert {dict(labels)["projection"] for name, labels in before if name == lag} == (
        PROJECTION_NAMES
    )
    catch_up(api)
    assert all(value(scrape(api), lag, projection=name) == 0 for name in PROJECTION_NAMES)
    written = head(api)
    api.command(b.submit("M2"))
    after = scrape(api)
    assert all(
        value(after, lag, projection=name) == head(api) - written for name in PROJECTION_NAMES
    )


def test_group_commit_batch_sizes_are_a_histogram(api: Api) -> None:
    metrics = api.client.app.state.metrics  # type: ignore[attr-defined]  # the app under test
    for size in (1, 3, 16):
        metrics.observe_batch(size)
    found = scrape(api)
    name = "ledger_group_commit_batch_size"
    assert value(found, f"{name}_count") == 3 and value(found, f"{name}_sum") == 20
    assert value(found, f"{name}_bucket", le="2.0") == 1
    assert value(found, f"{name}_bucket", le="16.0") == 3
