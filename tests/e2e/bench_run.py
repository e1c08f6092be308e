"""What the bench smoke tests share: run ``python -m bench.NAME`` as a user would, read its
JSON lines, and check no scratch database was left behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import psycopg

TIMEOUT_S = 300


def run_bench(module: str, args: list[str], server_url: str, cwd: Path) -> list[dict[str, Any]]:
    """The bench's JSON lines (it must exit 0), run on ``server_url`` in ``cwd``."""
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env={**os.environ, "LEDGER_DATABASE_URL": server_url},
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return [orjson.loads(line) for line in done.stdout.splitlines()]


def scratch_left(server_url: str, prefix: str) -> int:
    """Databases named ``prefix…`` on the server (a bench drops its own)."""
    with psycopg.connect(server_url) as conn:
        found = conn.execute(
            "SELECT count(*) FROM pg_database WHERE datname LIKE %s", (f"{prefix}%",)
        ).fetchone()
    return int(found[0]) if found else 0
