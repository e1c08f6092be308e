"""Regulators' exports over HTTP, on SQLite and PostgreSQL (api/exports.py): a regulator files a
request, produces its bag and downloads it as a tar; unpacked, the bag passes ``ledger
verify-export`` and its own bundled verifier. A regulator never sees another's requests or
bags (404, as for an id that does not exist), a service key is 403, personal data leaves in
clear only when the basis requires it, and the export is recorded as an event naming the key."""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api.app import ApiSettings, create_app
from cli.app import run as ledger_cli
from ledger.api_keys import create_key
from ledger.application import open_ledger
from ledger.clock import ManualClock
from ledger.domain.context import LOCAL_ACTOR
from ledger.domain.export_request import ExportWritten, export_stream
from projections.engine import open_runtime
from replay.seal import seal
from replay.signing_key import load_signer
from tests.fix_api import Api, issue_keys
from tests.workload import run_traffic, traffic

ORIGIN = "mall-ledger.test/log"
ORDERS = 24
BODY = {"authority": "上海市市场监督管理局", "reference": "SAMR-2026-0042", "basis": "ECL 25"}


@pytest.fixture
def exports_api(backend: str, clock: ManualClock, tmp_path: Path) -> Iterator[Api]:
    """The app over a ledger with traffic, sealed by the key the app signs bags with; a
    second regulator's key as ``regulator2``."""
    from fastapi.testclient import TestClient

    keys = issue_keys(backend)
    signer = load_signer(tmp_path / "signing.pem", ORIGIN)
    ledger, rt = open_ledger(backend), open_runtime(backend)
    try:
        keys["regulator2"] = create_key(ledger, "regulator", "test-regulator-2").key
        run_traffic(ledger, list(traffic(ORDERS, seed=5)))
        seal(ledger, rt, signer, None, LOCAL_ACTOR)
    finally:
        rt.close()
        ledger.close()
    (tmp_path / "vkey").write_text(signer.verifier().text())
    settings = ApiSettings(url=backend, clock=clock, key_cache_s=0, export_dir=tmp_path / "store",
                           signing_key_path=tmp_path / "signing.pem", log_name=ORIGIN)  # fmt: skip
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield Api(client, keys, backend)


def key_id(api: Api, role: str) -> str:
    return api.keys[role].split("_")[1]


def filed(api: Api, body: dict[str, Any], key: str, role: str = "regulator") -> Any:
    found = api.post("/v1/exports", body, role=role, key=key)
    assert found.status_code == 201, found.text
    return found.json()


def produced(api: Api, request_id: str, key: str, role: str = "regulator") -> Any:
    found = api.post(f"/v1/exports/{request_id}/bags", None, role=role, key=key)
    assert found.status_code == 201, found.text
    return found.json()


def unpacked(api: Api, bag: dict[str, Any], into: Path) -> Path:
    """The bag downloaded as a tar and unpacked under ``into``; its directory."""
    found = api.client.get(bag["download"], headers=api.auth("regulator"))
    assert found.status_code == 200, found.text
    assert found.headers["content-type"] == "application/x-tar"
    assert found.headers["cache-control"] == "no-store"
    with tarfile.open(fileobj=io.BytesIO(found.content), mode="r:") as archive:
        names = archive.getnames()
        archive.extractall(into, filter="data")
    return into / names[0]


def all_text(directory: Path) -> str:
    return "\n".join(p.read_text("utf-8-sig") for p in sorted(directory.rglob("*")) if p.is_file())


def contacts_of(url: str, directory: Path) -> set[str]:
    """The personal values (contacts in plaintext) of the orders in a bag, from the ledger."""
    import json

    lines = (directory / "data" / "orders.jsonl").read_text().splitlines()
    ledger = open_ledger(url)
    try:
        found = [ledger.contact(json.loads(line)["order_no"]) for line in lines]
    finally:
        ledger.close()
    return {v for c in found for v in c.values() if len(v) > 3}


def test_a_regulator_s_bag_downloads_as_a_tar_that_verifies_offline(
    exports_api: Api, tmp_path: Path
) -> None:
    api = exports_api
    request = filed(api, BODY, "samr-42")
    assert request["status"] == "requested" and request["bags"] == []
    assert request["filed_by"] == {"key_id": key_id(api, "regulator"), "role": "regulator"}
    again = api.post("/v1/exports", BODY, role="regulator", key="samr-42")
    assert again.status_code == 201 and again.json() == request
    assert again.headers["idempotent-replayed"] == "true"

    bag = produced(api, request["request_id"], "samr-42-bag")
    assert produced(api, request["request_id"], "samr-42-bag") == bag  # a retry: the same bag
    shown = api.get(f"/v1/exports/{request['request_id']}", role="regulator").json()
    assert shown["status"] == "produced" and shown["bags"] == [bag]
    ledger = open_ledger(api.url)
    try:
        events = list(ledger.app.events.get(export_stream(request["request_id"])))
    finally:
        ledger.close()
    written = [e for e in events if isinstance(e, ExportWritten)]
    assert [(e.manifest_sha256, e.actor["key_id"]) for e in written] == [
        (bag["bag_id"], key_id(api, "regulator"))
    ]

    directory = unpacked(api, bag, tmp_path / "got")
    vkey = str(tmp_path / "vkey")
    assert ledger_cli(["verify-export", str(directory), "--public-key", vkey]) == 0
    bundled = subprocess.run(
        [sys.executable, str(directory / "data" / "verify_export.py"), str(directory),
         "--public-key", vkey],
        capture_output=True, text=True, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert bundled.returncode == 0, bundled.stdout
    values = contacts_of(api.url, directory)
    assert values and not [v for v in values if v in all_text(directory)]


def test_personal_data_is_in_the_bag_only_when_the_basis_requires_it(
    exports_api: Api, tmp_path: Path
) -> None:
    api = exports_api
    request = filed(api, {**BODY, "personal_data": True}, "court-7")
    directory = unpacked(api, produced(api, request["request_id"], "court-7-bag"), tmp_path)
    values = contacts_of(api.url, directory)
    text = all_text(directory)
    assert values and all(v in text for v in values)


def test_a_regulator_never_sees_another_regulator_s_requests_or_bags(exports_api: Api) -> None:
    api = exports_api
    request = filed(api, BODY, "samr-1")
    bag = produced(api, request["request_id"], "samr-1-bag")
    other = {"Authorization": f"Bearer {api.keys['regulator2']}"}
    path = f"/v1/exports/{request['request_id']}"
    missing = api.client.get("/v1/exports/exp-000000000000", headers=other)
    assert missing.status_code == 404
    for found in (
        api.client.get(path, headers=other),
        api.client.get(bag["download"], headers=other),
        api.client.post(f"{path}/bags", headers={**other, "Idempotency-Key": "x-1"}),
    ):
        assert found.status_code == 404
        assert found.json()["detail"] in (missing.json()["detail"], "no such export request")
    assert api.client.get("/v1/exports", headers=other).json()["items"] == []
    for role in ("auditor", "admin"):  # they check bags as the regulator does (the console too)
        assert api.client.get(bag["download"], headers=api.auth(role)).status_code == 200
    assert api.client.get(bag["download"], headers=api.auth("service")).status_code == 403
    for role in ("auditor", "admin"):
        listed = api.get("/v1/exports", role=role).json()["items"]
        assert [r["request_id"] for r in listed] == [request["request_id"]]
    for found in (
        api.get("/v1/exports", role="service"),
        api.get(path, role="service"),
        api.post("/v1/exports", BODY, role="service", key="svc-1"),
    ):
        assert found.status_code == 403 and found.json()["code"] == "FORBIDDEN"


def test_requests_list_a_page_at_a_time_with_a_token_bound_to_the_viewer(
    exports_api: Api,
) -> None:
    api = exports_api
    ids = [filed(api, {**BODY, "reference": f"R-{n}"}, f"page-{n}")["request_id"] for n in range(3)]
    first = api.get("/v1/exports", role="regulator", page_size=2).json()
    assert [r["request_id"] for r in first["items"]] == ids[:2]
    rest = api.get("/v1/exports", role="regulator", page_token=first["next_page_token"]).json()
    assert [r["request_id"] for r in rest["items"]] == ids[2:]
    assert rest["next_page_token"] is None
    stolen = api.get("/v1/exports", role="auditor", page_token=first["next_page_token"])
    assert stolen.status_code == 400 and stolen.json()["code"] == "INVALID_PARAMETER"


@pytest.mark.parametrize(
    ("body", "headers", "status", "code"),
    [
        (BODY, {}, 400, "IDEMPOTENCY_KEY_REQUIRED"),
        ({**BODY, "since": "2026-04-01T00:00:00Z", "until": "2026-03-01T00:00:00Z"},
         {"Idempotency-Key": "bad-1"}, 422, "INVALID_COMMAND"),
        ({**BODY, "personal_data": "yes"}, {"Idempotency-Key": "bad-2"}, 422, "INVALID_COMMAND"),
        ({**BODY, "subject": "x"}, {"Idempotency-Key": "bad-3"}, 422, "INVALID_COMMAND"),
        ({"authority": "\x00", "reference": "R", "basis": "b"}, {"Idempotency-Key": "bad-4"},
         422, "INVALID_COMMAND"),
        # an account number is never personal data: the request keeps its scope in clear
        ({**BODY, "account": "13812345678"}, {"Idempotency-Key": "bad-5"}, 422, "INVALID_COMMAND"),
        ({**BODY, "account": "+8613812345678"}, {"Idempotency-Key": "bad-6"}, 422,
         "INVALID_COMMAND"),
        ({**BODY, "account": "wang.li@example.cn"}, {"Idempotency-Key": "bad-7"}, 422,
         "INVALID_COMMAND"),
        ({**BODY, "region": "beijing"}, {"Idempotency-Key": "bad-8"}, 422, "INVALID_COMMAND"),
    ],
)  # fmt: skip
def test_bad_requests_are_refused_and_write_nothing(
    exports_api: Api, body: Any, headers: dict[str, str], status: int, code: str
) -> None:
    api = exports_api
    found = api.client.post("/v1/exports", json=body,
                            headers={**api.auth("regulator"), **headers})  # fmt: skip
    assert (found.status_code, found.json()["code"]) == (status, code), found.text
    for value in ("13812345678", "wang.li@example.cn"):
        assert value not in found.text  # the answer never echoes it
    if "account" in body:
        assert found.json()["detail"].startswith("/account: an account number is the mall's")
    assert api.get("/v1/exports", role="auditor").json()["items"] == []


def test_the_same_idempotency_key_with_another_request_is_refused(exports_api: Api) -> None:
    api = exports_api
    filed(api, BODY, "samr-9")
    found = api.post("/v1/exports", {**BODY, "basis": "PIPL 13"}, role="regulator", key="samr-9")
    assert (found.status_code, found.json()["code"]) == (422, "COMMAND_ID_REUSED")


def test_a_bag_before_the_log_is_sealed_is_not_found(
    backend: str, clock: ManualClock, tmp_path: Path
) -> None:
    """A ledger never sealed has no checkpoint to export from, nor a signing key."""
    from fastapi.testclient import TestClient

    keys = issue_keys(backend)
    settings = ApiSettings(url=backend, clock=clock, export_dir=tmp_path / "store",
                           signing_key_path=tmp_path / "none.pem")  # fmt: skip
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        api = Api(client, keys, backend)
        request = filed(api, BODY, "early-1")
        found = api.post(f"/v1/exports/{request['request_id']}/bags", None, role="regulator",
                         key="early-1-bag")  # fmt: skip
    assert (found.status_code, found.json()["code"]) == (404, "NOT_FOUND")
    assert "ledger seal" in found.json()["detail"]
    assert not (tmp_path / "store").exists()


def test_a_new_idempotency_key_makes_a_new_bag_with_its_own_id_and_files(
    exports_api: Api, tmp_path: Path
) -> None:
    """New pseudonyms are new content: the bag id (the signed manifest's SHA-256, which lists
    every file's digest) differs, and both bags are there to download and verify."""
    api = exports_api
    request = filed(api, BODY, "samr-5")
    first = produced(api, request["request_id"], "samr-5-bag-1")
    second = produced(api, request["request_id"], "samr-5-bag-2")
    assert first["bag_id"] != second["bag_id"]
    shown = api.get(f"/v1/exports/{request['request_id']}", role="regulator").json()
    assert [b["bag_id"] for b in shown["bags"]] == [first["bag_id"], second["bag_id"]]
    vkey = str(tmp_path / "vkey")
    for number, bag in enumerate((first, second)):
        directory = unpacked(api, bag, tmp_path / str(number))
        assert ledger_cli(["verify-export", str(directory), "--public-key", vkey]) == 0
