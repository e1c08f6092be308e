"""``ledger serve [--host] [--port] [--workers]``: the HTTP API under uvicorn.

With no settings it serves the default SQLite ledger (``var/ledger.db``) on 127.0.0.1:8000.
Each worker is a process with its own connection pool (``LEDGER_POOL_SIZE``). Logs are JSON
lines on stderr (api/logs.py), one per request among them (api/observe.py); with several
workers, ``/metrics`` adds up all of them (api/metrics.py). Ctrl-C or SIGTERM stops it
gracefully: requests in flight finish, then the writer drains.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from cli.args import add_database_url, int_range
from cli.exits import Exit
from ledger.domain import codes
from ledger.domain.errors import LedgerError
from ledger.settings import Settings

DEFAULT_PORT = 8000


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve the HTTP API (uvicorn)",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument(
        "--port", type=int_range(1, 65535), default=DEFAULT_PORT, help="port (8000)"
    )
    parser.add_argument("--workers", type=int_range(1, 64), default=1, help="worker processes (1)")
    add_database_url(parser)
    parser.set_defaults(run=cmd_serve)


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn  # loaded only to serve: every other command starts faster without it

    from api.logs import log_config
    from ledger.application import open_ledger

    # Open the ledger once here, so that a database that cannot be used is one line and exit 1
    # before a worker starts (uvicorn would log a traceback per worker and exit 3).
    open_ledger(settings.database_url, policy=settings.policy).close()
    check_address(args.host, args.port)
    if args.database_url is not None:  # checked already; the workers read the environment
        os.environ["LEDGER_DATABASE_URL"] = args.database_url
    with shared_metrics(args.workers):
        uvicorn.run(
            "api.app:app_from_env",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            http="api.transport:NoDelayH11Protocol",  # uvicorn loses TCP_NODELAY with workers
            log_config=log_config(settings.log_level),  # JSON lines, in every worker
            log_level=settings.log_level.lower(),
            access_log=False,  # api/observe.py logs each request, without its path or query
        )
    return Exit.OK


@contextmanager
def shared_metrics(workers: int) -> Iterator[None]:
    """With several workers, a directory they all count in (prometheus-client's multiprocess
    mode: a scrape of any worker reports them all), made for this run and removed after it;
    one set by the operator in PROMETHEUS_MULTIPROC_DIR is used as it is (and must be emptied
    between runs, as prometheus-client asks)."""
    from api.metrics import MULTIPROC_ENV

    if workers == 1 or os.environ.get(MULTIPROC_ENV):
        yield
        return
    path = tempfile.mkdtemp(prefix="ledger-metrics-")
    os.environ[MULTIPROC_ENV] = path
    try:
        yield
    finally:
        del os.environ[MULTIPROC_ENV]
        shutil.rmtree(path, ignore_errors=True)


class AddressUnavailable(LedgerError):
    catalogued = codes.ADDRESS_UNAVAILABLE


def check_address(host: str, port: int) -> None:
    """Bind ``host:port`` once and let it go, so that a taken port or a foreign host is one
    line and exit 1 here, not uvicorn's log line and exit 3 (which means a stopped
    projection). A race with another process taking the port afterwards stays uvicorn's."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise AddressUnavailable(f"cannot listen on {host}:{port}: {reason}") from None
