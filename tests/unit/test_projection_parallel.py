"""How a rebuild splits projections between processes."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from projections.base import Projection
from projections.engine import Target
from projections.parallel import split
from projections.registry import PROJECTIONS
from projections.schema import BUILD


def costed(costs: list[int]) -> list[Target]:
    return [
        Target(Projection(f"p{n}", 1, "", (), {}, rebuild_cost=cost), BUILD)
        for n, cost in enumerate(costs)
    ]


def test_the_six_projections_split_into_two_near_equal_halves() -> None:
    groups = split([Target(p, BUILD) for p in PROJECTIONS], 2)
    costs = sorted(sum(t.projection.rebuild_cost for t in g) for g in groups)
    total = sum(p.rebuild_cost for p in PROJECTIONS)
    largest = max(p.rebuild_cost for p in PROJECTIONS)
    assert len(groups) == 2 and costs[1] - costs[0] <= largest
    assert sum(costs) == total


@given(st.lists(st.integers(1, 50), min_size=1, max_size=12), st.integers(1, 8))
def test_every_projection_lands_in_exactly_one_group(costs: list[int], jobs: int) -> None:
    targets = costed(costs)
    groups = split(targets, jobs)
    placed = [t.name for g in groups for t in g]
    assert sorted(placed) == sorted(t.name for t in targets)
    assert len(groups) == min(jobs, len(targets)) and all(groups)
    # Greedy by cost: no group exceeds the lightest by more than the costliest projection.
    sums = [sum(t.projection.rebuild_cost for t in g) for g in groups]
    assert max(sums) - min(sums) <= max(costs)
