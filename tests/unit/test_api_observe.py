"""The API's request observer (api/observe.py) and JSON log lines (api/logs.py), on a small
FastAPI app of the API's own parts whose route fails as a defect would: the client gets a 500
problem naming the request id, the log gets the failure's type and code locations, and
neither gets the exception's text, which here quotes personal data."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api import problems
from api.logs import JsonFormatter
from api.metrics import Metrics
from api.observe import Observe
from tests.pii_inputs import NAME, PHONE


@pytest.fixture
def client() -> Iterator[TestClient]:
    app = FastAPI()

    @app.get("/v1/boom/{order_no}")
    async def boom(order_no: str) -> Any:
        raise KeyError(f"{NAME} {PHONE}")  # a defect whose text quotes personal data

    problems.install(app)
    app.add_middleware(Observe, metrics=Metrics())
    with TestClient(app, raise_server_exceptions=True) as test_client:
        yield test_client


def test_a_defect_is_a_500_problem_with_the_request_id_and_nothing_of_its_text(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    response = client.get("/v1/boom/O-1", headers={"X-Request-Id": "req-500"})
    assert response.status_code == 500
    assert response.headers["content-type"] == problems.PROBLEM_MEDIA_TYPE
    assert response.headers["X-Request-Id"] == "req-500"
    body = response.json()
    assert body["code"] == "LEDGER_ERROR" and "req-500" in body["detail"]
    assert NAME not in response.text and PHONE not in response.text

    lines = [orjson.loads(JsonFormatter().format(r)) for r in caplog.records]
    failure = next(line for line in lines if line["message"] == "unexpected KeyError")
    assert failure["request_id"] == "req-500" and failure["level"] == "ERROR"
    assert any("boom" in frame for frame in failure["frames"])
    request = next(line for line in lines if line["message"] == "request")
    assert request["route"] == "/v1/boom/{order_no}" and request["status"] == 500
    assert not [line for line in lines if NAME in str(line) or PHONE in str(line)]


def test_an_exception_logged_by_anyone_shows_its_type_and_frames_not_its_text() -> None:
    try:
        raise ValueError(f"bad phone {PHONE}")
    except ValueError:
        record = logging.getLogger("x").makeRecord(
            "x", logging.ERROR, __file__, 1, "failed", (), exc_info=sys.exc_info()
        )
    line = orjson.loads(JsonFormatter().format(record))
    assert line["exception"] == "ValueError" and line["frames"]
    assert PHONE not in str(line)
