"""The verifiable history over HTTP, on SQLite and PostgreSQL: checkpoints, an inclusion proof
a client checks with the public key alone, a consistency proof, a stream as of a position;
auditors and regulators only, bad parameters as 400/404/422, never a 5xx."""

from __future__ import annotations

import base64

import pytest

from ledger.application import open_ledger
from ledger.domain.context import LOCAL_ACTOR
from projections.engine import open_runtime
from replay.merkle import leaf_hash, verify_consistency
from replay.seal import SealReport, seal
from replay.signed_note import Signer
from replay.tlog_proof import TlogProof
from tests import builders as b
from tests.fix_api import Api

ORIGIN = "mall-ledger.test/log"


def sealed(api: Api, signer: Signer) -> SealReport:
    ledger, rt = open_ledger(api.url), open_runtime(api.url)
    try:
        return seal(ledger, rt, signer, None, LOCAL_ACTOR)
    finally:
        rt.close()
        ledger.close()


@pytest.fixture
def signer() -> Signer:
    return Signer.generate(ORIGIN)


def test_a_command_s_position_has_an_inclusion_proof_once_sealed(api: Api, signer: Signer) -> None:
    paid = api.command(b.submit("H-1")).json()
    first = sealed(api, signer)
    found = api.get(f"/v1/log/proofs/inclusion/{paid['position']}", role="auditor")
    assert found.status_code == 200, found.text
    body = found.json()
    assert body["size"] == first.size
    proof = TlogProof.parse(body["tlog_proof"])
    assert proof.extra is not None
    assert proof.verify(leaf_hash(proof.extra), [signer.verifier()], ORIGIN).size == first.size

    api.command(b.pay("H-1"))
    second = sealed(api, signer)
    listed = api.get("/v1/log/checkpoints", role="regulator").json()["checkpoints"]
    assert [c["size"] for c in listed] == [first.size, second.size]
    both = api.get("/v1/log/proofs/consistency", role="auditor", old_size=first.size,
                   new_size=second.size).json()  # fmt: skip
    hashes = [base64.b64decode(h) for h in both["hashes"]]
    verify_consistency(first.size, second.size, first.root_hash, second.root_hash, hashes)


def test_an_order_as_of_its_submission(api: Api) -> None:
    submitted = api.command(b.submit("H-2")).json()
    paid = api.command(b.pay("H-2")).json()
    found = api.get("/v1/history/order/H-2", role="auditor", position=submitted["position"])
    assert found.status_code == 200, found.text
    body = found.json()
    assert body["version"] == 1 and body["state"]["status"] == "awaiting_payment"
    now = api.get("/v1/history/order/H-2", role="auditor", position=paid["position"]).json()
    assert now["state"]["status"] == "paid"
    beyond = api.get("/v1/history/order/H-2", role="auditor", position=10**9)
    assert (beyond.status_code, beyond.json()["code"]) == (400, "INVALID_PARAMETER")
    assert beyond.json()["detail"].startswith("position: is beyond the log's head, position ")


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        ("/v1/log/proofs/inclusion/1", {}, 404),  # nothing sealed yet
        ("/v1/log/proofs/inclusion/0", {}, 400),
        ("/v1/log/proofs/consistency", {"old_size": 5, "new_size": 4}, 422),
        ("/v1/history/order/H-3", {}, 400),  # neither at nor position
        ("/v1/history/order/H-3", {"position": 1, "at": "2026-03-01T00:00:00Z"}, 400),
        ("/v1/history/invoice/H-3", {"position": 1}, 400),
        ("/v1/history/order/NO-SUCH", {"position": 1}, 404),
        ("/v1/log/checkpoints", {"bogus": 1}, 400),
    ],
)
def test_bad_requests_are_problems_never_5xx(
    api: Api, path: str, params: dict[str, object], status: int
) -> None:
    found = api.get(path, role="auditor", **params)
    assert found.status_code == status, found.text
    assert found.headers["content-type"] == "application/problem+json"


def test_services_may_not_read_the_history(api: Api) -> None:
    assert api.get("/v1/log/checkpoints", role="service").status_code == 403
