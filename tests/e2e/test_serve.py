"""``ledger serve`` as operators run it, in a real process over real HTTP: JSON log lines,
``/metrics`` adding up every worker of ``--workers 2``, and one process's PostgreSQL
connections (event store, key store, status probe together) within ``LEDGER_POOL_SIZE``
while it serves concurrent requests (the API issue, items 7 and 8)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg
from prometheus_client.parser import text_string_to_metric_families

from ledger.storage_url import DEFAULT_POOL_SIZE
from tests import builders as b
from tests.fix_api import issue_keys
from tests.fix_pg import admin_url

START_S = 60  # a worker imports FastAPI and opens the ledger before it answers
CLIENTS = 16


@dataclass
class Server:
    base: str
    keys: dict[str, str]
    log: Path

    def lines(self) -> list[dict[str, Any]]:
        """Every line of the server's stderr, each a JSON object (or this fails)."""
        return [orjson.loads(line) for line in self.log.read_text().splitlines() if line]

    def headers(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}


def server_env() -> dict[str, str]:
    """This environment without its ledger settings (so the defaults apply: the pool size
    among them), logging at INFO."""
    kept = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    return {**kept, "LEDGER_LOG_LEVEL": "INFO"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@contextmanager
def serving(tmp_path: Path, url: str, *args: str) -> Iterator[Server]:
    """``ledger serve`` on ``url`` with a key per role, until it answers; stopped by SIGTERM."""
    keys = issue_keys(url)
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as err:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cli",
                "serve",
                "--port",
                str(port),
                "--database-url",
                url,
                *args,
            ],
            cwd=tmp_path,
            env=server_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    server = Server(f"http://127.0.0.1:{port}", keys, log)
    try:
        wait_until(lambda: answers(server.base), f"ledger serve on port {port}", log)
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=START_S)


def answers(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=5).status_code == 200
    except httpx.TransportError:
        return False


def wait_until(done: Callable[[], bool], what: str, log: Path) -> None:
    deadline = time.monotonic() + START_S
    while not done():
        assert time.monotonic() < deadline, f"{what} never came: {log.read_text()[-2000:]}"
        time.sleep(0.2)


def counter(text: str, name: str, **labels: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


def test_two_workers_log_json_lines_and_metrics_add_up_both(tmp_path: Path) -> None:
    with serving(tmp_path, f"sqlite:///{tmp_path / 'ledger.db'}", "--workers", "2") as server:
        sent = 0
        while len({line["pid"] for line in health_lines(server)}) < 2:
            assert sent < 500, "one worker answered every request"
            httpx.get(f"{server.base}/healthz", timeout=10)  # a connection of its own
            sent += 1
        scraped = httpx.get(f"{server.base}/metrics", headers=server.headers("admin"), timeout=10)
        assert scraped.status_code == 200, scraped.text
        requests = "ledger_http_requests_total"
        answered = counter(scraped.text, requests, route="/healthz", status="200")
        assert answered == len(health_lines(server))  # every worker's, whichever was asked
        assert 'projection="orders"' in scraped.text
    for line in server.lines():
        assert {"ts", "level", "logger", "pid", "message"} <= set(line)


def health_lines(server: Server) -> list[dict[str, Any]]:
    return [line for line in server.lines() if line.get("route") == "/healthz"]


def connections(name: str) -> int:
    with psycopg.connect(admin_url(), autocommit=True) as conn:
        found = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (name,)
        ).fetchone()
    return int(found[0]) if found else 0


def busy(server: Server, client: int) -> list[int]:
    """One client's share of the load: commands, health checks, scrapes, key listings."""
    statuses = []
    with httpx.Client(base_url=server.base, timeout=60) as http:
        for step in range(6):
            order = b.submit(f"C{client}-{step}")
            body = {k: v for k, v in order.items() if k not in ("type", "command_id")}
            key = {"Idempotency-Key": order["command_id"]}
            statuses.append(
                http.post(
                    "/v1/commands/submit_order",
                    json=body,
                    headers={**server.headers("service"), **key},
                ).status_code
            )
            statuses.append(http.get("/healthz").status_code)
            statuses.append(http.get("/metrics", headers=server.headers("admin")).status_code)
            statuses.append(http.get("/v1/keys", headers=server.headers("admin")).status_code)
    return statuses


def test_one_process_holds_at_most_its_pool_of_postgresql_connections(
    tmp_path: Path, pg_url: str
) -> None:
    name = pg_url.rsplit("/", 1)[-1]
    seen: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            seen.append(connections(name))
            time.sleep(0.01)

    with serving(tmp_path, pg_url) as server:
        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            with ThreadPoolExecutor(CLIENTS) as clients:
                answered = [
                    s
                    for done in clients.map(lambda c: busy(server, c), range(CLIENTS))
                    for s in done
                ]
        finally:
            stop.set()
            sampler.join()
    assert set(answered) == {200}, sorted(set(answered))
    # server_env leaves LEDGER_POOL_SIZE unset: the default is what was measured.
    assert len(seen) > 10 and 1 <= max(seen) <= DEFAULT_POOL_SIZE, (max(seen), seen[-20:])


def test_a_taken_port_or_a_foreign_host_is_one_line_and_exit_1(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for where in (["--port", str(port)], ["--host", "nohost.invalid"]):
            done = subprocess.run(
                [sys.executable, "-m", "cli", "serve", *where],
                cwd=tmp_path,
                env=server_env(),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert done.returncode == 1, done.stderr
            lines = done.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith(
                "ledger: ADDRESS_UNAVAILABLE: cannot listen"
            )
