"""API benchmark: commands/s and latency of ``ledger serve`` with group commit on and off.

    python -m bench.api [--commands N] [--clients C] [--workers W] [--repeats R] [--seed S]

Runs on the PostgreSQL server of ``LEDGER_DATABASE_URL`` (default the local one). Each mode
runs ``R`` times, alternating, each run in a fresh scratch database ``bench_api_<pid>_<mode>``
that it creates and drops:

1. a service key is made with ``ledger keys create --role service --name bench --json``;
2. the real server is started in its own process: ``ledger serve`` (uvicorn, ``--workers W``)
   on a free local port, with ``LEDGER_GROUP_COMMIT=on`` (**ours**) or ``off`` (**baseline**:
   the same writer thread saving each command in its own transaction);
3. this process drives it with ``C`` concurrent clients (threads, one keep-alive HTTP/1.1
   connection each): each takes the next order and POSTs its ``submit_order`` then its
   ``receive_payment``, each with its own ``Idempotency-Key`` and the bearer key, until ``N``
   commands were sent. A few orders go first, untimed, as a warm-up.

The clients use the standard library's ``http.client``: on a 2-core machine the client shares
the cores with the server and PostgreSQL, and httpx cost five times its CPU per request
(0.8 ms against 0.16 ms), enough to cap the measured server.

The workload is the same in both modes: order ``i`` is for customer ``i % 200`` of the demo's
made-up people (``ledger.demo.people``: Chinese names, phones, addresses and IPs, sealed by the
ledger), one line, paid in full by Alipay, so every command is accepted. A run's throughput is
its timed commands over the wall-clock time from the first send to the last answer; a
request's latency is from its send to its whole answer, in the client. Each run is checked:
every answer 200, the same number of stored events, and how many transactions wrote them
(distinct ``xmin`` of the event rows, warm-up and key included).

Progress goes to stderr; stdout gets one JSON object per line (the workload, each run, a
summary), the last two being the results: the median rate of each mode, and percentiles over
every timed request of the mode's runs::

    {"bench": "api_commands", "ours": …, "baseline": …, "unit": "commands/s"}
    {"bench": "api_latency", "p50_ms": …, "p99_ms": …, "baseline_p99_ms": …}
"""

from __future__ import annotations

import argparse
import itertools
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.client import HTTPConnection
from pathlib import Path
from typing import Any

import orjson
import psycopg
from psycopg import sql

from bench.common import (
    CONNECT_TIMEOUT_S,
    checked_server,
    count_rows,
    emit,
    log,
    scratch_database,
)
from cli.args import int_range
from ledger.demo.people import People
from ledger.library.tables import PG_EVENTS_TABLE

BENCH = "api"
DEFAULT_COMMANDS = 4000
MAX_COMMANDS = 200_000
DEFAULT_CLIENTS = 16
CUSTOMERS = 200
WARMUP_ORDERS = 32
COMMANDS_PER_ORDER = 2
TARGET_OURS_VS_BASELINE = 5.0
HOST = "127.0.0.1"
SERVER_START_TIMEOUT_S = 60.0
SERVER_STOP_TIMEOUT_S = 30.0
REQUEST_TIMEOUT_S = 60.0
UNIT_PRICE_FEN = 399900
DEFAULT_REPEATS = 3
UNIT = "commands/s"


@dataclass(frozen=True)
class Mode:
    name: str  # "ours" or "baseline"
    group_commit: str  # LEDGER_GROUP_COMMIT


MODES = (Mode("ours", "on"), Mode("baseline", "off"))


@dataclass(frozen=True)
class Phase:
    mode: str
    commands: int
    seconds: float
    latencies_s: list[float]
    failed: int  # answers other than 200
    events: int
    transactions: int

    @property
    def rate(self) -> float:
        return self.commands / self.seconds if self.seconds > 0 else 0.0

    def record(self) -> dict[str, Any]:
        return {
            "bench": BENCH,
            "phase": self.mode,
            "commands": self.commands,
            "seconds": round(self.seconds, 3),
            "commands_per_s": round(self.rate, 1),
            "p50_ms": percentile_ms(self.latencies_s, 50),
            "p99_ms": percentile_ms(self.latencies_s, 99),
            "failed": self.failed,
            "events": self.events,
            "transactions": self.transactions,
        }


def percentile_ms(latencies_s: list[float], pct: int) -> float:
    """The ``pct``-th percentile of request latencies in seconds, in milliseconds."""
    if len(latencies_s) < 2:
        return round(latencies_s[0] * 1000, 2) if latencies_s else 0.0
    cuts = statistics.quantiles(latencies_s, n=100, method="inclusive")
    return round(cuts[pct - 1] * 1000, 2)


# The workload ---------------------------------------------------------------------------------
class Workload:
    """Order ``i``: its two commands as (route, body, idempotency key)."""

    def __init__(self, seed: int) -> None:
        self.people = People(seed)
        self.seed = seed
        self._lock = threading.Lock()  # People caches as it generates

    def order(self, i: int) -> list[tuple[str, dict[str, Any], str]]:
        customer = i % CUSTOMERS
        with self._lock:
            person = self.people.person(customer)
        order_no = f"BENCH-{self.seed}-{i:07d}"
        submit = {
            "order_no": order_no,
            "account_no": f"bench-acct-{customer}",
            "seller_id": "xiaomi-self",
            "shipping_region": person.region,
            "lines": [{"sku": "PHONE-14", "quantity": 1, "unit_price_fen": UNIT_PRICE_FEN}],
            "gifts": [],
            "contact": person.contact(),
        }
        pay = {
            "order_no": order_no,
            "payment_id": f"PAY-{order_no}",
            "method": "alipay",
            "payer_account": person.payer("alipay"),
            "amount_fen": UNIT_PRICE_FEN,
        }
        return [
            ("/v1/commands/submit_order", submit, f"{order_no}-submit"),
            ("/v1/commands/receive_payment", pay, f"{order_no}-pay"),
        ]


# The server -----------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
    return port


def ledger_cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=SERVER_START_TIMEOUT_S,
        check=False,
    )


def service_key(env: dict[str, str]) -> str:
    """A new service key, as an operator makes one."""
    made = ledger_cli(["keys", "create", "--role", "service", "--name", "bench", "--json"], env)
    if made.returncode != 0:
        raise RuntimeError(f"ledger keys create failed: {made.stderr.strip()}")
    key: str = orjson.loads(made.stdout)["key"]
    return key


@contextmanager
def serving(env: dict[str, str], workers: int, logs: Path) -> Iterator[str]:
    """``ledger serve`` in its own process; yields its base URL once it answers; stops it
    with SIGTERM (it drains its writer), killing it only if it does not stop in time."""
    port = free_port()
    args = ["serve", "--host", HOST, "--port", str(port), "--workers", str(workers)]
    with logs.open("wb") as log_file:
        server = subprocess.Popen(
            [sys.executable, "-m", "cli", *args], env=env, stdout=log_file, stderr=log_file
        )
        try:
            base = f"http://{HOST}:{port}"
            wait_until_answering(server, base, logs)
            yield base
        finally:
            server.terminate()
            try:
                server.wait(SERVER_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def wait_until_answering(server: subprocess.Popen[bytes], base: str, logs: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"ledger serve exited: {logs.read_text(errors='replace')[-2000:]}")
        try:
            with urllib.request.urlopen(f"{base}/openapi.json", timeout=1.0) as answer:
                if answer.status == 200:
                    return
        except OSError:  # not listening yet (URLError, connection refused or reset)
            pass
        time.sleep(0.1)
    raise RuntimeError(f"ledger serve did not answer within {SERVER_START_TIMEOUT_S:g} s")


# The clients ----------------------------------------------------------------------------------
@dataclass
class Tally:
    latencies_s: list[float]
    failed: int = 0
    first_failure: str | None = None


def drive(base: str, key: str, workload: Workload, orders: range, clients: int) -> Tally:
    """``clients`` threads share the orders; each sends an order's commands in turn."""
    next_order = iter(orders)
    take = threading.Lock()
    tallies = [Tally([]) for _ in range(clients)]
    port = int(base.rsplit(":", 1)[1])

    def client(tally: Tally) -> None:
        http = HTTPConnection(HOST, port, timeout=REQUEST_TIMEOUT_S)
        try:
            while True:
                with take:
                    i = next(next_order, None)
                if i is None:
                    return
                for route, body, idempotency_key in workload.order(i):
                    send(
                        http,
                        route,
                        body,
                        {**headers(key), "Idempotency-Key": idempotency_key},
                        tally,
                    )
        finally:
            http.close()

    threads = [threading.Thread(target=client, args=(t,)) for t in tallies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    latencies = list(itertools.chain.from_iterable(t.latencies_s for t in tallies))
    failures = [t.first_failure for t in tallies if t.first_failure]
    return Tally(latencies, sum(t.failed for t in tallies), failures[0] if failures else None)


def headers(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}


def send(
    http: HTTPConnection, route: str, body: dict[str, Any], sent: dict[str, str], tally: Tally
) -> None:
    """One POST on the client's keep-alive connection, timed from send to the whole answer."""
    content = orjson.dumps(body)
    started = time.perf_counter()
    http.request("POST", route, body=content, headers=sent)
    answer = http.getresponse()
    text = answer.read()
    tally.latencies_s.append(time.perf_counter() - started)
    if answer.status != 200:
        tally.failed += 1
        tally.first_failure = tally.first_failure or f"{answer.status} {text[:300]!r}"


# The phases -----------------------------------------------------------------------------------
def transactions(url: str) -> int:
    """How many transactions wrote the stored events (distinct ``xmin`` of their rows)."""
    query = sql.SQL("SELECT count(DISTINCT xmin::text) FROM {}").format(
        sql.Identifier(PG_EVENTS_TABLE)
    )
    with psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_S) as conn:
        found = conn.execute(query).fetchone()
    return int(found[0]) if found else 0


def run_mode(mode: Mode, url: str, args: argparse.Namespace, tmp: Path) -> Phase:
    env = {
        **os.environ,
        "LEDGER_DATABASE_URL": url,
        "LEDGER_GROUP_COMMIT": mode.group_commit,
        "LEDGER_LOG_LEVEL": "WARNING",
    }
    key = service_key(env)
    workload = Workload(args.seed)
    orders = args.commands // COMMANDS_PER_ORDER
    with serving(env, args.workers, tmp / f"serve-{mode.name}.log") as base:
        drive(base, key, workload, range(orders, orders + WARMUP_ORDERS), args.clients)
        started = time.perf_counter()
        tally = drive(base, key, workload, range(orders), args.clients)
        seconds = time.perf_counter() - started
    if tally.first_failure:
        log(f"{mode.name}: {tally.failed} answers not 200, the first: {tally.first_failure}")
    return Phase(
        mode.name,
        len(tally.latencies_s),
        seconds,
        tally.latencies_s,
        tally.failed,
        count_rows(url, PG_EVENTS_TABLE),
        transactions(url),
    )


def measure(args: argparse.Namespace, server: str, tmp: Path) -> dict[str, list[Phase]]:
    """Each mode ``args.repeats`` times, alternating, each run in a fresh database."""
    phases: dict[str, list[Phase]] = {mode.name: [] for mode in MODES}
    for run in range(1, args.repeats + 1):
        for mode in MODES:
            name = f"bench_api_{os.getpid()}_{mode.name}"
            with scratch_database(server, name) as url:
                log(f"{mode.name} {run}: ledger serve, LEDGER_GROUP_COMMIT={mode.group_commit}")
                phase = run_mode(mode, url, args, tmp)
            log(
                f"{mode.name} {run}: {phase.commands} commands in {phase.seconds:.2f} s = "
                f"{phase.rate:.0f} commands/s, p50 {percentile_ms(phase.latencies_s, 50)} ms, "
                f"p99 {percentile_ms(phase.latencies_s, 99)} ms, "
                f"{phase.transactions} transactions"
            )
            emit({**phase.record(), "run": run})
            phases[mode.name].append(phase)
    return phases


@dataclass(frozen=True)
class Outcome:
    """A mode over its runs: the median rate; percentiles over every request of every run."""

    rate: float
    p50_ms: float
    p99_ms: float

    @classmethod
    def of(cls, runs: list[Phase]) -> Outcome:
        latencies = list(itertools.chain.from_iterable(p.latencies_s for p in runs))
        return cls(
            round(statistics.median(p.rate for p in runs), 1),
            percentile_ms(latencies, 50),
            percentile_ms(latencies, 99),
        )


def problems_of(phases: dict[str, list[Phase]]) -> list[str]:
    """Every run ran the same commands: all accepted, the same rows stored."""
    runs = list(itertools.chain.from_iterable(phases.values()))
    found = [f"{p.mode}: {p.failed} answers not 200" for p in runs if p.failed]
    rows = {p.events for p in runs}
    if len(rows) > 1:
        found.append(f"stored rows differ between runs: {sorted(rows)}")
    return found


def report(args: argparse.Namespace, phases: dict[str, list[Phase]]) -> list[str]:
    """The summary line, then the two result lines; returns the problems found."""
    ours, baseline = Outcome.of(phases["ours"]), Outcome.of(phases["baseline"])
    ratio = ours.rate / baseline.rate if baseline.rate else 0.0
    problems = problems_of(phases)
    for problem in problems:
        log(f"warning: {problem}")
    emit(
        {
            "bench": BENCH,
            "phase": "summary",
            "ours_vs_baseline": round(ratio, 2),
            "target_ours_vs_baseline": TARGET_OURS_VS_BASELINE,
            "meets_target": ratio >= TARGET_OURS_VS_BASELINE and ours.p99_ms <= baseline.p99_ms,
            "baseline_p50_ms": baseline.p50_ms,
            "commands": args.commands,
            "clients": args.clients,
            "workers": args.workers,
            "repeats": args.repeats,
            "seed": args.seed,
            "problems": problems,
        }
    )
    emit({"bench": "api_commands", "ours": ours.rate, "baseline": baseline.rate, "unit": UNIT})
    emit(
        {
            "bench": "api_latency",
            "p50_ms": ours.p50_ms,
            "p99_ms": ours.p99_ms,
            "baseline_p99_ms": baseline.p99_ms,
        }
    )
    return problems


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.api", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--commands",
        type=int_range(COMMANDS_PER_ORDER, MAX_COMMANDS),
        default=DEFAULT_COMMANDS,
        help=f"timed commands per mode, half orders, half payments (default {DEFAULT_COMMANDS})",
    )
    parser.add_argument(
        "--clients",
        type=int_range(1, 256),
        default=DEFAULT_CLIENTS,
        help=f"concurrent clients (default {DEFAULT_CLIENTS})",
    )
    parser.add_argument(
        "--workers", type=int_range(1, 64), default=1, help="ledger serve --workers (default 1)"
    )
    parser.add_argument(
        "--repeats",
        type=int_range(1, 20),
        default=DEFAULT_REPEATS,
        help=f"runs of each mode, alternating; the median rate counts (default {DEFAULT_REPEATS})",
    )
    parser.add_argument("--seed", type=int, default=1, help="workload seed (default 1)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    server = checked_server()
    if server is None:
        return 2
    emit(
        {
            "bench": BENCH,
            "phase": "workload",
            "commands": args.commands,
            "clients": args.clients,
            "workload": "bench.api.Workload (submit_order + receive_payment per order)",
        }
    )
    with tempfile.TemporaryDirectory(prefix="bench_api_") as tmp:
        phases = measure(args, server, Path(tmp))
    return 1 if report(args, phases) else 0


if __name__ == "__main__":
    sys.exit(main())
