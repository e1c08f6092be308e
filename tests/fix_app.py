"""Pytest plugin: the application on both backends (DESIGN.md, Tests).

Loaded with ``-p tests.fix_app`` (pyproject addopts). ``backend`` runs each test that uses it
once on SQLite and once on PostgreSQL; the PostgreSQL run asks for ``pg_url`` (tests/fix_pg.py)
only when it actually runs, so SQLite runs never need a server.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from ledger.clock import ManualClock

if TYPE_CHECKING:
    from ledger.application import Ledger
    from projections.engine import Runtime
    from projections.queries import ReadModels

CLOCK_START = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)

_KEY_HOME: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    """Tests never touch the user's home: ``XDG_DATA_HOME`` and the master key file
    (``LEDGER_MASTER_KEY``) point into a directory made for this run, inherited by every
    subprocess a test starts; the key is made now, so no test sees the first-use warning."""
    from ledger.key_wrapping import write_new_master_key

    home = tempfile.mkdtemp(prefix="ledger-test-keys-")
    _KEY_HOME.append(home)
    os.environ["XDG_DATA_HOME"] = home
    os.environ["LEDGER_MASTER_KEY"] = str(Path(home) / "mall-ledger" / "master.key")
    write_new_master_key(Path(os.environ["LEDGER_MASTER_KEY"]))


def pytest_unconfigure(config: pytest.Config) -> None:
    for home in _KEY_HOME:
        shutil.rmtree(home, ignore_errors=True)


def master_key_env() -> dict[str, str]:
    """The settings a subprocess started with a bare environment needs to find the test
    run's master key."""
    return {name: os.environ[name] for name in ("XDG_DATA_HOME", "LEDGER_MASTER_KEY")}


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


@contextmanager
def opened_ledger(url: str, clock: ManualClock | None = None) -> Iterator[Ledger]:
    """The application opened on ``url`` (with ``clock``, else the system's) for the block;
    closed after it."""
    # Imported here, not at module top, so the plugin loads even where the application
    # module is missing or broken; only tests that use it are affected.
    from ledger.application import open_ledger

    ledger = open_ledger(url, clock=clock)
    try:
        yield ledger
    finally:
        ledger.close()


@contextmanager
def opened_runtime(url: str) -> Iterator[Runtime]:
    """The projections' runtime on ``url`` for the block; closed after it."""
    from projections.engine import open_runtime

    runtime = open_runtime(url)
    try:
        yield runtime
    finally:
        runtime.close()


@pytest.fixture
def ledger_app(backend: str, clock: ManualClock) -> Iterator[Ledger]:
    """The application opened on ``backend`` with the manual ``clock``; closed afterwards."""
    with opened_ledger(backend, clock) as ledger:
        yield ledger


@pytest.fixture
def ledger(ledger_app: Ledger) -> Ledger:
    """``ledger_app``, by the name the import and projection tests give it."""
    return ledger_app


@pytest.fixture
def read_models(backend: str) -> Iterator[ReadModels]:
    """The read models' queries on ``backend``; closed afterwards."""
    from projections.queries import ReadModels

    opened = ReadModels.open(backend)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def rt(backend: str) -> Iterator[Runtime]:
    """The projections' runtime on ``backend``; closed afterwards."""
    with opened_runtime(backend) as runtime:
        yield runtime
