"""Pytest plugin: the application on both backends (DESIGN.md, Tests).

Loaded with ``-p tests.fix_app`` (pyproject addopts). ``backend`` runs each test that uses it
once on SQLite and once on PostgreSQL; the PostgreSQL run asks for ``pg_url`` (tests/fix_pg.py)
only when it actually runs, so SQLite runs never need a server.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from ledger.clock import ManualClock

if TYPE_CHECKING:
    from ledger.application import Ledger
    from projections.engine import Runtime

CLOCK_START = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL for an empty ledger: ``sqlite:///…`` or a throwaway PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(CLOCK_START)


@pytest.fixture
def ledger_app(backend: str, clock: ManualClock) -> Iterator[Ledger]:
    """The application opened on ``backend`` with the manual ``clock``; closed afterwards."""
    # Imported here, not at module top, so the plugin loads even where the application
    # module is missing or broken; only tests that use the fixture are affected.
    from ledger.application import open_ledger

    ledger = open_ledger(backend, clock=clock)
    try:
        yield ledger
    finally:
        ledger.close()


@pytest.fixture
def rt(backend: str) -> Iterator[Runtime]:
    """The projections' runtime on ``backend``; closed afterwards."""
    from projections.engine import open_runtime

    opened = open_runtime(backend)
    try:
        yield opened
    finally:
        opened.close()
