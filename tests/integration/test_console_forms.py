"""What the console's forms and pickers DO (issue 13), beyond who may use them
(tests/integration/test_console_access.py): releasing a hold lets the erasure through, the
access copy is made and recorded, a created key works and a revoked one stops, a time picked
on the timeline shows the order as of then, and the proofs the integrity page shows and
serves verify with the repository's own checks against the checkpoints' roots. Through the
real ASGI app, on both backends, with the test's manual clock.
"""

from __future__ import annotations

import base64
import html
import re
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from ledger.application import open_ledger
from ledger.clock import ManualClock
from ledger.domain.china_time import CHINA
from ledger.domain.context import LOCAL_ACTOR
from projections.check import check
from projections.engine import open_runtime
from projections.registry import PROJECTIONS, select
from projections.worker import Worker
from replay.merkle import leaf_hash, verify_consistency
from replay.seal import SealReport, seal
from replay.signed_note import Signer
from replay.tlog_proof import TlogProof
from tests import builders as b
from tests.console_client import sign_in
from tests.fix_api import Api
from tests.integration.test_api_queries import catch_up, head, ledger_on
from tests.integration.test_restricted_processing import reads
from tests.integration.test_returns import complete

ORIGIN = "mall-ledger.test/log"
OUTCOME = re.compile(r'id="outcome">(.*?)</p>', re.S)


def outcome_of(page: Any) -> str:
    """The text of a form's outcome line on ``page`` (tags dropped)."""
    assert page.status_code == 200, page.text
    found = OUTCOME.search(page.text)
    assert found is not None, page.text
    return html.unescape(re.sub(r"<[^>]+>", "", found.group(1)))


@pytest.fixture
def worker(api: Api) -> Iterator[None]:
    """A projections worker applying the log as it grows, as ``ledger serve`` runs beside
    one: the subject's page after a form reads the command's effect, not a wait's end."""
    stop = threading.Event()
    rt = open_runtime(api.url)
    thread = threading.Thread(target=Worker(rt, PROJECTIONS, idle_s=0.05).run, args=(stop,))
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        rt.close()


def sent(api: Api, data: dict[str, Any], role: str = "service") -> int:
    answer = api.command(data, role=role)
    assert answer.status_code == 200, answer.text
    position: int = answer.json()["position"]
    return position


# -- personal data ------------------------------------------------------------------------------
def test_releasing_a_hold_lets_the_erasure_the_hold_refused_go_through(
    api: Api, worker: None
) -> None:
    csrf = sign_in(api.client, api.keys["admin"])
    base = "/console/subjects/acct-9"  # no order of its own to perform or to keep
    placed = api.client.post(f"{base}/holds", data={"csrf": csrf, "reference": "CASE-9",
                                                    "reason": "dispute"})  # fmt: skip
    assert "recorded at position" in outcome_of(placed)
    refused = api.client.post(f"{base}/erasure", data={"csrf": csrf, "reference": ""})
    assert "LEGAL_HOLD" in outcome_of(refused)
    assert "CASE-9 (dispute" in refused.text  # the subject's holds, as the projection has them

    released = api.client.post(f"{base}/holds/release", data={"csrf": csrf,
                                                              "reference": "CASE-9"})  # fmt: skip
    assert "release_legal_hold" in outcome_of(released)
    assert "recorded at position" in outcome_of(released)
    assert "CASE-9" not in released.text.split('id="outcome"')[1]  # no hold listed any more
    again = api.client.post(f"{base}/erasure", data={"csrf": csrf, "reference": ""})
    assert "LEGAL_HOLD" not in outcome_of(again)
    assert "recorded at position" in outcome_of(again)


def test_the_access_copy_holds_the_subjects_orders_and_is_recorded(api: Api, worker: None) -> None:
    sent(api, b.submit("P3"))
    csrf = sign_in(api.client, api.keys["admin"])
    made = api.client.post("/console/subjects/acct-1/access-copy",
                           data={"csrf": csrf, "reference": "REQ-7"})  # fmt: skip
    copy_text = re.search(r'<pre id="access-copy">(.*?)</pre>', made.text, re.S)
    assert copy_text is not None, made.text
    copy = orjson.loads(html.unescape(copy_text.group(1)))
    assert copy["subject"]["subject_id"] == "acct-1"
    assert [o["order_no"] for o in copy["orders"]] == ["P3"]
    assert b.CONTACT["phone"] in copy_text.group(1)  # the subject's own data, in plaintext
    position = copy["recorded_at_position"]
    assert position == head(api)
    assert f"recorded at position {position}" in outcome_of(made).replace("\n", " ")
    with ledger_on(api) as ledger:
        (stored,) = ledger.app.recorder.select_notifications(position, 1)
    assert stored.topic == "mall-ledger/data-subject/AccessCopyGiven"
    state = orjson.loads(stored.state)
    assert state["actor"] == {"key_id": api.keys["admin"].split("_")[1], "role": "admin"}
    assert state["reference"] == "REQ-7"
    assert b.CONTACT["phone"] not in stored.state.decode()  # never in the log


# -- keys ---------------------------------------------------------------------------------------
def test_a_created_key_is_shown_once_works_for_its_role_and_stops_when_revoked(
    api: Api, clock: ManualClock
) -> None:
    csrf = sign_in(api.client, api.keys["admin"])
    created = api.client.post("/console/keys", data={"csrf": csrf, "role": "regulator",
                                                     "name": "cac-beijing"})  # fmt: skip
    shown = re.search(r'<pre id="new-key">([^<]+)</pre>', created.text)
    assert shown is not None, created.text
    key = shown.group(1)
    key_id = key.split("_")[1]
    listing = api.client.get("/console/keys").text
    row = re.search(rf"<tr><td><code>{key_id}</code></td>(.*?)</tr>", listing, re.S)
    assert row is not None and "cac-beijing" in row.group(1) and "regulator" in row.group(1)
    assert clock.now().isoformat().replace("+00:00", "Z") in row.group(1)  # the ledger's time
    assert key not in listing  # its secret was on the answer that made it only

    bearer = {"Authorization": f"Bearer {key}"}
    assert api.client.get("/v1/log/checkpoints", headers=bearer).status_code == 200
    assert api.client.get("/v1/orders/X1", headers=bearer).status_code == 403  # a regulator
    browser = TestClient(api.client.app)
    sign_in(browser, key)
    assert "/console/exports" in browser.get("/console/").text

    clock.advance(timedelta(minutes=1))
    revoked = api.client.post(f"/console/keys/{key_id}/revoke", data={"csrf": csrf})
    assert outcome_of(revoked).startswith(f"{key_id}: 已撤销")
    again = api.client.post(f"/console/keys/{key_id}/revoke", data={"csrf": csrf})
    assert "was already revoked" in outcome_of(again)
    assert api.client.get("/v1/log/checkpoints", headers=bearer).status_code == 401
    assert browser.get("/console/", follow_redirects=False).status_code == 303


def test_a_bad_key_name_is_refused_naming_the_field_and_creates_nothing(api: Api) -> None:
    csrf = sign_in(api.client, api.keys["admin"])
    before = api.client.get("/console/keys").text.count("<tr>")
    refused = api.client.post("/console/keys", data={"csrf": csrf, "role": "auditor",
                                                     "name": "two words"})  # fmt: skip
    assert refused.status_code == 200
    assert "INVALID_COMMAND" in refused.text and "name" in refused.text
    assert 'id="new-key"' not in refused.text
    assert api.client.get("/console/keys").text.count("<tr>") == before


# -- timeline -----------------------------------------------------------------------------------
def test_a_picked_time_shows_the_order_as_it_stood_then(api: Api, clock: ManualClock) -> None:
    submitted_at = clock.now()
    submitted = sent(api, b.submit("T1"))
    clock.advance(timedelta(minutes=20))
    paid = sent(api, b.pay("T1"))
    csrf = sign_in(api.client, api.keys["auditor"])
    assert csrf
    path = "/console/orders/T1/timeline"

    def state_at(at: str) -> tuple[int, str]:
        page = api.client.get(path, params={"at": at})
        assert page.status_code == 200, page.text
        current = re.search(r"State as of position (\d+)", page.text)
        status = re.search(r"<dt>status</dt><dd>([^<]*)</dd>", page.text)
        assert current is not None and status is not None, page.text
        return int(current.group(1)), status.group(1)

    between = (submitted_at + timedelta(minutes=10)).astimezone(CHINA)
    # A command's answer is its record's position; its order's events come just before.
    then = state_at(between.strftime("%Y-%m-%dT%H:%M:%S"))
    assert then[0] < submitted and then[1] == "awaiting_payment"
    after = (clock.now() + timedelta(minutes=1)).isoformat()  # an offset: taken as given
    now = state_at(after)
    assert submitted < now[0] < paid and now[1] == "paid"
    before = (submitted_at - timedelta(minutes=1)).astimezone(CHINA)
    none_yet = api.client.get(path, params={"at": before.strftime("%Y-%m-%dT%H:%M")})
    assert none_yet.status_code == 404 and "no event of it by then" in none_yet.text
    bad = api.client.get(path, params={"at": "yesterday"})
    assert bad.status_code == 400 and "at: must be a date and time" in bad.text
    beyond = api.client.get(path, params={"position": 10**9})  # as the API: not today's state
    assert beyond.status_code == 400 and "position: is beyond the log" in beyond.text


def test_the_timeline_state_reads_as_json_with_sealed_fields_marked(api: Api) -> None:
    sent(api, b.submit("T2"))
    sign_in(api.client, api.keys["auditor"])
    page = api.client.get("/console/orders/T2/timeline").text
    state = page[page.index('id="state"') : page.index("</dl>")]
    assert "[sealed 已加密]" in state  # the contact's fields
    assert "s2:" not in state and "s1:" not in state  # no ciphertext, no subject id
    assert "{&#39;" not in state and "None" not in state and "False" not in state
    assert "&#34;sku&#34;: " in state  # the lines as JSON


# -- integrity ----------------------------------------------------------------------------------
def sealed_now(api: Api, clock: ManualClock, signer: Signer) -> SealReport:
    ledger, rt = open_ledger(api.url, clock=clock), open_runtime(api.url)
    try:
        return seal(ledger, rt, signer, None, LOCAL_ACTOR)
    finally:
        rt.close()
        ledger.close()


def listed_roots(page_text: str) -> dict[int, bytes]:
    """The checkpoints' sizes and roots as the integrity page lists them."""
    rows = re.findall(r'<tr><td class="num">(\d+)</td><td><code>([^<]+)</code>', page_text)
    return {int(size): base64.b64decode(root) for size, root in rows}


def test_the_proofs_the_page_shows_verify_against_the_listed_roots(
    api: Api, clock: ManualClock
) -> None:
    signer = Signer.generate(ORIGIN)
    submitted = sent(api, b.submit("I1"))
    first = sealed_now(api, clock, signer)
    sent(api, b.pay("I1"))
    sent(api, b.submit("I2"))
    second = sealed_now(api, clock, signer)
    sign_in(api.client, api.keys["auditor"])
    roots = listed_roots(api.client.get("/console/integrity").text)
    assert roots == {first.size: first.root_hash, second.size: second.root_hash}

    asked = {"old_size": first.size, "new_size": second.size}
    page = api.client.get("/console/integrity", params=asked).text
    shown = re.search(r'<pre id="consistency-proof">(.*?)</pre>', page, re.S)
    assert shown is not None, page
    hashes = [base64.b64decode(h) for h in shown.group(1).split()]
    verify_consistency(first.size, second.size, roots[first.size], roots[second.size], hashes)

    for size in (first.size, second.size):
        answer = api.client.get(f"/console/integrity/inclusion/{submitted}", params={"size": size})
        assert answer.status_code == 200
        assert answer.headers["content-disposition"].endswith(f'"position-{submitted}.tlog-proof"')
        proof = TlogProof.parse(answer.text)
        assert proof.extra is not None
        checkpoint = proof.verify(leaf_hash(proof.extra), [signer.verifier()], ORIGIN)
        assert (checkpoint.size, checkpoint.root_hash) == (size, roots[size])
    with ledger_on(api) as ledger:
        (row,) = ledger.app.recorder.select_notifications(submitted, 1)
    assert row.topic.encode() in proof.extra  # the leaf is the submission's own row


# -- contact ------------------------------------------------------------------------------------
def test_a_restricted_contact_is_refused_without_a_basis_and_revealed_citing_one(
    api: Api,
) -> None:
    sent(api, b.submit("C1"))
    sent(api, b.order_cmd("cancel_order", "C1"))
    sent(api, complete("C1"))
    catch_up(api.url)
    admin = sign_in(api.client, api.keys["admin"])
    deferred = api.client.post("/console/subjects/acct-1/erasure", data={"csrf": admin})
    assert "RETENTION_REQUIRED" in outcome_of(deferred)  # restricted until the retention ends
    catch_up(api.url)
    csrf = sign_in(api.client, api.keys["auditor"])
    form = api.client.get("/console/orders/C1").text
    assert 'name="legal_basis"' in form and "judicial_order" in form
    before = head(api)

    refused = api.client.post("/console/orders/C1/contact", data={"csrf": csrf})
    assert refused.status_code == 409
    assert "PROCESSING_RESTRICTED" in refused.text and "legal_basis" in refused.text
    half = api.client.post("/console/orders/C1/contact",
                           data={"csrf": csrf, "legal_basis": "judicial_order"})  # fmt: skip
    assert half.status_code == 400 and "give legal_basis and reference together" in half.text
    assert head(api) == before  # nothing revealed, nothing recorded

    cited = api.client.post("/console/orders/C1/contact", data={
        "csrf": csrf, "legal_basis": "judicial_order", "reference": "COURT-2026-17"})  # fmt: skip
    assert cited.status_code == 200, cited.text
    assert html.escape(b.CONTACT["address"]) in cited.text
    assert "judicial_order · COURT-2026-17" in cited.text
    with ledger_on(api) as ledger:
        [read] = reads(ledger)
    assert (read.legal_basis, read.reference) == ("judicial_order", "COURT-2026-17")
    assert head(api) == before + 1


def test_a_service_is_not_offered_a_basis_and_reads_an_unrestricted_contact_unrecorded(
    api: Api,
) -> None:
    sent(api, b.submit("C2"))
    catch_up(api.url)
    csrf = sign_in(api.client, api.keys["service"])
    assert 'name="legal_basis"' not in api.client.get("/console/orders/C2").text
    before = head(api)
    shown = api.client.post("/console/orders/C2/contact", data={"csrf": csrf})
    assert shown.status_code == 200 and html.escape(b.CONTACT["address"]) in shown.text
    assert head(api) == before


# -- projections --------------------------------------------------------------------------------
def test_the_projections_page_shows_each_projections_last_check(
    api: Api, clock: ManualClock
) -> None:
    sent(api, b.submit("Q1"))
    catch_up(api.url)
    sign_in(api.client, api.keys["auditor"])
    assert api.client.get("/console/projections").text.count("never checked") == len(PROJECTIONS)
    rt = open_runtime(api.url)
    try:
        check(rt, PROJECTIONS, clock=clock)
        with rt.db.write() as cur:
            cur.execute(rt.db.sql("UPDATE pj_orders SET status = 'tampered'"))
        check(rt, select(["orders"]), clock=clock)
    finally:
        rt.close()
    page = api.client.get("/console/projections").text
    cells = dict(re.findall(r'<th scope="row">(\w+) <small>.*?<td class="last-check">(.*?)</td>',
                            page, re.S))  # fmt: skip
    assert "differs" in cells["orders"] and "(orders)" in cells["orders"]
    assert all("same" in cells[p.name] for p in PROJECTIONS if p.name != "orders")
    assert all(clock.now().isoformat().replace("+00:00", "Z") in c for c in cells.values())
    assert "never checked" not in page
