"""A command's result carries the version of the stream it is about (the API's ETag), and a
command sent with the version it expects is refused PRECONDITION_FAILED once that stream has
moved on (the API's If-Match), writing nothing."""

from __future__ import annotations

import pytest

from ledger.application import Ledger
from ledger.domain.errors import PreconditionFailed
from ledger.domain.ids import order_id
from tests import builders as b
from tests.checks import run, stream


def test_a_result_carries_the_version_its_order_reached(ledger_app: Ledger) -> None:
    submitted = run(ledger_app, b.submit("E1"))
    assert submitted.version == len(stream(ledger_app, "E1"))
    paid = run(ledger_app, b.pay("E1"))
    assert paid.version == len(stream(ledger_app, "E1")) > submitted.version


def test_a_retry_gives_the_version_the_first_send_reached(ledger_app: Ledger) -> None:
    submit = b.submit("E2")
    first = run(ledger_app, submit)
    run(ledger_app, b.pay("E2"))
    again = ledger_app.execute(submit)
    assert again.duplicate and again.version == first.version


def test_a_command_expecting_the_current_version_goes_through(ledger_app: Ledger) -> None:
    submitted = run(ledger_app, b.submit("E3"))
    paid = ledger_app.execute(b.pay("E3"), expected_version=submitted.version)
    assert paid.version is not None and paid.version > (submitted.version or 0)


def test_a_command_expecting_an_old_version_is_refused_and_writes_nothing(
    ledger_app: Ledger,
) -> None:
    submitted = run(ledger_app, b.submit("E4"))
    run(ledger_app, b.order_cmd("notify_user", "E4", subject="stock", clause="3.1.5"))
    head = ledger_app.head_position()
    with pytest.raises(PreconditionFailed) as caught:
        ledger_app.execute(b.pay("E4"), expected_version=submitted.version)
    assert caught.value.code == "PRECONDITION_FAILED"
    assert f"not {submitted.version}" in caught.value.message
    assert ledger_app.head_position() == head


def test_a_new_stream_is_expected_at_version_zero(ledger_app: Ledger) -> None:
    assert ledger_app.execute(b.submit("E5"), expected_version=0).version == 1
    with pytest.raises(PreconditionFailed):
        ledger_app.execute(b.submit("E6"), expected_version=3)
    assert not list(ledger_app.app.events.get(order_id("E6")))


def test_each_command_of_a_batch_is_checked_against_its_own_expected_version(
    ledger_app: Ledger,
) -> None:
    run(ledger_app, b.submit("E7"))
    run(ledger_app, b.submit("E8"))
    results = ledger_app.execute_batch(
        [(b.pay("E7"), None), (b.pay("E8"), None)], expected_versions=[1, 99]
    )
    assert not isinstance(results[0], Exception)
    assert isinstance(results[1], PreconditionFailed)
