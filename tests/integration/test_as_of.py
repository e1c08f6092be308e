"""Time travel on SQLite and PostgreSQL: a scripted order's state as of every step, by log
position and by moment, equals the state it had then; other streams' events in between change
nothing; a moment before the first event is NOT_FOUND."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from ledger.application import Ledger
from ledger.clock import ManualClock
from ledger.domain.errors import InvalidCommand, NotFound
from ledger.domain.ids import order_id
from replay.as_of import replay_as_of
from tests import builders as b


def fields(aggregate: Any) -> dict[str, Any]:
    return {k: v for k, v in vars(aggregate).items() if not k.startswith("_")}


def test_an_order_as_of_each_step_is_the_state_it_had_then(
    ledger_app: Ledger, clock: ManualClock
) -> None:
    steps = []
    script = [b.submit("ASOF-1"), b.submit("OTHER-1"), b.pay("ASOF-1"), b.pay("OTHER-1"),
              b.ship("ASOF-1"), b.deliver("ASOF-1")]  # fmt: skip
    for command in script:
        clock.advance(timedelta(minutes=5))
        result = ledger_app.execute(command)
        if command["order_no"] == "ASOF-1":
            state = fields(ledger_app.app.repository.get(order_id("ASOF-1")))
            steps.append((result.position, clock.now(), state))
    for position, moment, state in steps:
        by_position = replay_as_of(ledger_app, "order", "ASOF-1", position=position)
        by_moment = replay_as_of(ledger_app, "order", "ASOF-1", at=moment + timedelta(minutes=1))
        assert by_position.state == by_moment.state == state
        assert by_position.events == by_moment.events
        assert by_position.events[-1]["position"] <= position
    last = replay_as_of(ledger_app, "order", "ASOF-1", at=clock.now())
    assert [e["event"] for e in last.events][:2] == ["OrderSubmitted", "PaymentReceived"]
    assert last.state["status"] == steps[-1][2]["status"]


def test_before_the_first_event_there_is_nothing(ledger_app: Ledger, clock: ManualClock) -> None:
    ledger_app.execute(b.submit("ASOF-2"))
    with pytest.raises(NotFound):
        replay_as_of(ledger_app, "order", "ASOF-2", at=clock.now() - timedelta(seconds=1))
    with pytest.raises(NotFound):
        replay_as_of(ledger_app, "order", "NO-SUCH", position=1)
    with pytest.raises(InvalidCommand):
        replay_as_of(ledger_app, "order", "ASOF-2")


def test_a_position_beyond_the_log_is_refused_naming_it_and_the_head(
    ledger_app: Ledger, clock: ManualClock
) -> None:
    """The state there would be today's, given as if settled: refused, naming the option
    and the log's head; the head itself is answered."""
    head = ledger_app.execute(b.submit("ASOF-3")).position
    assert replay_as_of(ledger_app, "order", "ASOF-3", position=head).version == 1
    with pytest.raises(InvalidCommand) as beyond:
        replay_as_of(ledger_app, "order", "ASOF-3", position=head + 1)
    assert (beyond.value.field, beyond.value.rule) == (
        "--position",
        f"is beyond the log's head, position {head}",
    )
