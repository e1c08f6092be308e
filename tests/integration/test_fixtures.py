"""The PostgreSQL test fixtures themselves (tests/fix_pg.py).

Some of these run an inner pytest in a subprocess on a small generated test file, so that what
is checked is what a real run sees: the database exists during a test and is gone after it, and
an unreachable server means "skipped" on a laptop but "failed" under CI=true.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import psycopg
import pytest

from tests import fix_pg

ROOT = Path(__file__).resolve().parents[2]
CLOSED_PORT_URL = "postgresql://postgres@127.0.0.1:1/test"

INNER_TESTS = textwrap.dedent(
    """
    from __future__ import annotations

    import os
    from pathlib import Path

    import psycopg

    OUT = Path(os.environ["FIXTURE_PROBE_OUT"])


    def test_no_database_needed() -> None:
        assert True


    def test_function_database(pg_url: str) -> None:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            name = conn.execute("SELECT current_database()").fetchone()[0]
            conn.execute("CREATE TABLE probe (x int)")
        with (OUT / "function.txt").open("a") as out:
            out.write(name + "\\n")


    def test_module_database(pg_url_module: str) -> None:
        with psycopg.connect(pg_url_module, autocommit=True) as conn:
            name = conn.execute("SELECT current_database()").fetchone()[0]
        (OUT / "module.txt").write_text(name)
    """
)


def run_inner(
    tmp_path: Path, server_url: str, *, ci: bool, extra: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """Run the generated tests in a separate pytest, isolated from this repo's config."""
    test_dir = tmp_path / "inner"
    test_dir.mkdir(exist_ok=True)
    (test_dir / "test_inner.py").write_text(INNER_TESTS)
    (test_dir / "pytest.ini").write_text("[pytest]\n")  # stops the search for pyproject.toml
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.pop("CI", None)
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # hypothesis & co: slow to load, not needed
    if ci:
        env["CI"] = "true"
    env[fix_pg.URL_ENV_VAR] = server_url
    env["FIXTURE_PROBE_OUT"] = str(test_dir)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "tests.fix_pg",
            "-p",
            "no:cacheprovider",
            "-q",
            "-rs",
            "--rootdir",
            str(test_dir),
            "-c",
            str(test_dir / "pytest.ini"),
            *extra,
            str(test_dir / "test_inner.py"),
        ],
        cwd=test_dir,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def outcome_counts(output: str) -> dict[str, int]:
    last = output.strip().splitlines()[-1] if output.strip() else ""
    return {word: int(n) for n, word in re.findall(r"(\d+) (\w+)", last)}


def test_unreachable_server_skips_outside_ci(tmp_path: Path) -> None:
    result = run_inner(tmp_path, CLOSED_PORT_URL, ci=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert outcome_counts(result.stdout) == {"passed": 1, "skipped": 2}, output
    assert "PostgreSQL not reachable at postgresql://postgres@127.0.0.1:1/test" in output


def test_unreachable_server_fails_under_ci(tmp_path: Path) -> None:
    result = run_inner(tmp_path, CLOSED_PORT_URL, ci=True)
    output = result.stdout + result.stderr
    assert result.returncode == pytest.ExitCode.TESTS_FAILED, output
    counts = outcome_counts(result.stdout)
    assert counts.get("passed") == 1, output
    assert counts.get("skipped", 0) == 0, output
    assert counts.get("failed", 0) + counts.get("errors", counts.get("error", 0)) == 2, output
    assert "PostgreSQL not reachable" in output
    assert "CI=true" in output


def test_postgres_marker_is_applied(tmp_path: Path) -> None:
    # Collection only: needs no server, proves `-m "not postgres"` leaves the PG tests out.
    result = run_inner(tmp_path, CLOSED_PORT_URL, ci=False, extra=("-m", "not postgres"))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert outcome_counts(result.stdout) == {"passed": 1, "deselected": 2}, output


def test_databases_exist_during_and_are_dropped_after(tmp_path: Path, pg_server_url: str) -> None:
    result = run_inner(tmp_path, pg_server_url, ci=True)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert outcome_counts(result.stdout) == {"passed": 3}, output

    function_db = (tmp_path / "inner" / "function.txt").read_text().split()
    module_db = (tmp_path / "inner" / "module.txt").read_text()
    for name in [*function_db, module_db]:
        assert re.fullmatch(r"ledger_test_[0-9a-f]{12}", name), name
        assert not fix_pg.database_exists(pg_server_url, name), f"{name} was not dropped"


def test_pg_url_is_a_fresh_database(pg_url: str, pg_server_url: str) -> None:
    name = pg_url.rsplit("/", 1)[1]
    assert re.fullmatch(r"ledger_test_[0-9a-f]{12}", name), name
    assert pg_url == fix_pg.database_url(pg_server_url, name)
    assert fix_pg.database_exists(pg_server_url, name)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == (name,)
        tables = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()
    assert tables == (0,)


def test_temporary_database_drops_even_with_open_connection(pg_server_url: str) -> None:
    with fix_pg.temporary_database(pg_server_url) as url:
        name = url.rsplit("/", 1)[1]
        assert fix_pg.database_exists(pg_server_url, name)
        leftover = psycopg.connect(url, autocommit=True)  # a test that forgot to close
    try:
        assert not fix_pg.database_exists(pg_server_url, name)
    finally:
        leftover.close()


def test_database_url_keeps_everything_but_the_name() -> None:
    assert (
        fix_pg.database_url("postgresql://u:pw@db.example:6543/admin?sslmode=require", "x1")
        == "postgresql://u:pw@db.example:6543/x1?sslmode=require"
    )
    assert fix_pg.database_url("postgresql://postgres@127.0.0.1:5432", "x2") == (
        "postgresql://postgres@127.0.0.1:5432/x2"
    )
