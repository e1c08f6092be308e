"""Demo runs into one database claim their run ids in the ledger (both backends).

Two runs that start together must not take the same run id. The race is made certain here:
the second run claims while the first is between reading that the id is free and saving
its claim.
"""

from __future__ import annotations

from typing import Any

from ledger.application import open_ledger
from ledger.clock import ManualClock
from ledger.demo import DemoOptions, claim_run
from ledger.demo.traffic import START

ORDERS, SEED = 40, 3


def test_two_runs_claiming_the_same_id_at_once_get_different_ids(backend: str) -> None:
    options = DemoOptions(orders=ORDERS, seed=SEED, database_url=backend)
    first_clock, second_clock = ManualClock(START), ManualClock(START)
    first = open_ledger(backend, clock=first_clock)
    second = open_ledger(backend, clock=second_clock)
    try:
        put = first.app.events.put
        claimed: list[str] = []

        def second_claims_first(*args: Any, **kwargs: Any) -> Any:
            if not claimed:  # the first run has read that demo3 is free, not yet saved
                claimed.append(claim_run(second, second_clock, options)[0].run_id)
            return put(*args, **kwargs)

        first.app.events.put = second_claims_first  # type: ignore[method-assign]
        traffic, _, outcome = claim_run(first, first_clock, options)
    finally:
        second.close()
        first.close()
    assert claimed == [f"demo{SEED}"]
    assert traffic.run_id == f"demo{SEED}r2"
    assert not outcome.duplicate and outcome.events == ["promotion/Defined"]
