"""The `limits` view withdraws a restricted (PIPL 47 para 2) or erased (PIPL 47) subject from
linkage, on both backends: groups formed through it fall apart, the others still link, signal
digests no remaining account carries are deleted from every projection table, and the view
equals a rebuild. Erasure also destroys the linkage year keys due, so the digests the log and
the limit counters keep confirm no guess.

A (acct-w) shares a phone with B and an address with C; B shares an IP with D. So A, B, C, D
form one group, and only B-D stay linked once A is withdrawn."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ledger.application import Ledger
from ledger.clock import ManualClock
from ledger.erasure import ErasureRetentionRequired
from ledger.key_admin import LINKAGE_KEY_YEARS
from projections.engine import Runtime
from projections.queries import ReadModels
from tests import builders as b
from tests.integration.test_erasure import erase, linkage_of
from tests.integration.test_projections import assert_same_as_rebuild, catch_up
from tests.integration.test_retention import completed_unpaid
from tests.integration.test_shredding import all_stored_bytes

WITHDRAWN = "acct-w"


def contact(n: int, **shared: str) -> dict[str, str]:
    return b.own_contact(n, "1370000000", **shared)


def linked(ledger: Ledger) -> None:
    """A (withdrawn later), B, C, D linked as the module says; A's order completed."""
    completed_unpaid(ledger, "W-A", account_no=WITHDRAWN, contact=contact(1))
    ledger.execute(b.submit("W-B", account_no="acct-b", contact=contact(2, phone="13700000001")))
    ledger.execute(
        b.submit(
            "W-C", account_no="acct-c", contact=contact(3, address="北京市海淀区中关村大街1号")
        )
    )
    ledger.execute(b.submit("W-D", account_no="acct-d", contact=contact(4, ip="10.0.0.2")))


def assert_withdrawn(ledger: Ledger, rt: Runtime, read_models: ReadModels, backend: str) -> None:
    position = catch_up(rt, batch=1)  # a batch per event: the split must not depend on cuts
    assert read_models.linked_accounts("acct-b") == ["acct-b", "acct-d"]
    assert read_models.linked_accounts("acct-c") == ["acct-c"]
    assert read_models.linked_accounts(WITHDRAWN) == [WITHDRAWN]
    projected = all_stored_bytes(ledger, backend, prefix="pj_")
    for name, digest in linkage_of(ledger, "W-A").items():
        if name.startswith("phone@") or name.startswith("address@"):
            continue  # B carries the phone, C the address: theirs too, and linked to them only
        assert digest.encode() not in projected, name
    assert_same_as_rebuild(rt, position)


def test_an_erased_subject_leaves_the_groups_it_linked_and_its_digests_go(
    ledger_app: Ledger, clock: ManualClock, rt: Runtime, read_models: ReadModels, backend: str
) -> None:
    linked(ledger_app)
    catch_up(rt)
    assert read_models.linked_accounts("acct-c") == ["acct-b", "acct-c", "acct-d", WITHDRAWN]
    year = ledger_app.clock.now().year
    retain_until = ledger_app.order("W-A").retain_until
    assert retain_until is not None
    clock.set(retain_until + timedelta(days=1))

    assert ledger_app.execute(erase(subject_id=WITHDRAWN)).result["outcome"] == "erased"

    assert_withdrawn(ledger_app, rt, read_models, backend)
    # The digests the log and the limit counters keep were made under these year keys:
    for key_year in range(year - 1, year + LINKAGE_KEY_YEARS - 1):
        assert ledger_app.keystore.year_linkage_key(key_year, create=False) is None, key_year


def test_a_restricted_subject_leaves_the_groups_it_linked_and_its_new_orders_link_nobody(
    ledger_app: Ledger, rt: Runtime, read_models: ReadModels, backend: str
) -> None:
    linked(ledger_app)
    catch_up(rt)
    with pytest.raises(ErasureRetentionRequired):  # deferred: restricted meanwhile
        ledger_app.execute(erase(subject_id=WITHDRAWN))

    assert_withdrawn(ledger_app, rt, read_models, backend)
    ledger_app.execute(b.submit("W-E", account_no=WITHDRAWN, contact=contact(2)))
    ledger_app.execute(b.submit("W-F", account_no="acct-f", contact=contact(5, ip="10.0.0.1")))
    catch_up(rt)
    assert read_models.linked_accounts(WITHDRAWN) == [WITHDRAWN]
    assert read_models.linked_accounts("acct-f") == ["acct-f"]
    assert read_models.linked_accounts("acct-b") == ["acct-b", "acct-d"]


def test_a_purpose_that_ended_withdraws_the_old_orders_and_a_new_order_links_again(
    ledger_app: Ledger, clock: ManualClock, rt: Runtime, read_models: ReadModels
) -> None:
    from ledger.retention_run import run_retention

    linked(ledger_app)
    clock.set(clock.now() + timedelta(minutes=5))
    summary = run_retention(ledger_app)  # de-identified, restricted: purpose_ended
    assert summary.steps["restricted"] >= 1
    catch_up(rt)
    assert read_models.linked_accounts("acct-c") == ["acct-c"]

    ledger_app.execute(b.submit("W-G", account_no=WITHDRAWN, contact=contact(7, ip="10.0.0.3")))
    catch_up(rt)
    assert read_models.linked_accounts("acct-c") == ["acct-c", WITHDRAWN]
