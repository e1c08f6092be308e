"""``ledger projections run|status|rebuild|check|skip``.

- ``run [NAME…] [--once]``: the worker, in the foreground until SIGTERM (exit 0) or Ctrl-C
  (exit 130), the batch under way committed first; ``--once`` stops when the projections have
  caught up.
- ``status [--json]``: position, head, lag in events and seconds, and the last check's result,
  per projection.
- ``rebuild [NAME…]``: rebuild from zero and swap in atomically, with a progress bar.
- ``check [NAME…] [--json]``: rebuild in scratch tables and compare row by row; exit 1 on any
  difference. The result is recorded (``projections.check_results``): ``status`` shows it.
- ``skip NAME POSITION``: leave the poison event a projection is stopped on out of it.

Exit codes (cli.exits.Exit): 0 fine; 1 a check found a difference (or a ``LedgerError``); 2 bad
usage; 3 a projection is stopped on a poison event (``run`` when it ends, ``status``, a ``rebuild``
that swapped in the others, a ``check`` that compared the others); 130 interrupted (Ctrl-C),
143 terminated (SIGTERM; but ``run`` takes SIGTERM as the way to stop it: exit 0) — a rebuild or
check drops its unfinished copies first.

Also runnable as ``python -m cli.projections …`` (same arguments, without ``projections``).
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any

from cli.args import (
    add_batch_size,
    add_database_url,
    add_json,
    int_range,
    one_of,
    seconds_at_least,
)
from cli.exits import Exit
from ledger.settings import Settings
from projections.check import MAX_DIFFS_SHOWN, ProjectionCheck, check
from projections.engine import Runtime, open_runtime
from projections.parallel import DEFAULT_JOBS, MAX_JOBS
from projections.rebuild import REBUILD_BATCH, rebuild
from projections.registry import BY_NAME, select
from projections.skip import skip
from projections.status import status
from projections.worker import IDLE_S, LIVE_BATCH, Worker

log = logging.getLogger("projections")
MAX_BATCH = 50_000
# The worker re-checks for new events at least this often; below the floor it would spin.
MIN_IDLE_S = 0.05


def _add_jobs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--jobs",
        type=int_range(1, MAX_JOBS),
        default=DEFAULT_JOBS,
        help=f"processes building the copies, PostgreSQL only (1..{MAX_JOBS}, default "
        f"{DEFAULT_JOBS})",
    )


def _add_names(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        type=one_of(list(BY_NAME)),
        help=f"projections (default all: {', '.join(BY_NAME)})",
    )


def _builds_copies(
    sub: Any, name: str, help_text: str, run: Callable[[argparse.Namespace, Settings], int]
) -> argparse.ArgumentParser:
    """``rebuild`` and ``check``: both build copies of projections from zero, so they take
    the same options."""
    parser: argparse.ArgumentParser = sub.add_parser(name, help=help_text)
    _add_names(parser)
    add_batch_size(parser, what="events", high=MAX_BATCH, default=REBUILD_BATCH)
    _add_jobs(parser)
    add_json(parser)
    add_database_url(parser)
    parser.set_defaults(run=run)
    return parser


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "projections",
        help="read models: run, status, rebuild, check, skip",
        description="Keep the read models (pj_* tables) current, and rebuild or check them.",
    )
    add_commands(parser)


def add_commands(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="projections_command", required=True, metavar="ACTION")

    run = sub.add_parser(
        "run", help="apply new events until stopped (SIGTERM: exit 0; Ctrl-C: exit 130)"
    )
    _add_names(run)
    add_batch_size(run, what="events", high=MAX_BATCH, default=LIVE_BATCH)
    run.add_argument(
        "--idle",
        type=seconds_at_least(MIN_IDLE_S),
        default=IDLE_S,
        help=f"re-check for new events at least this often, in seconds (at least {MIN_IDLE_S}, "
        f"default {IDLE_S})",
    )
    run.add_argument("--once", action="store_true", help="stop once caught up")
    add_database_url(run)
    run.set_defaults(run=cmd_run)

    st = sub.add_parser("status", help="position, head and lag of each projection")
    add_json(st)
    add_database_url(st)
    st.set_defaults(run=cmd_status)

    rb = _builds_copies(sub, "rebuild", "rebuild from zero and swap in atomically", cmd_rebuild)
    rb.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")

    add_check(sub, "compare each projection with a rebuild; exit 1 if any differ")

    sk = sub.add_parser(
        "skip", help="leave the poison event a projection is stopped on out of it, for good"
    )
    sk.add_argument(
        "name", metavar="NAME", type=one_of(list(BY_NAME)), help="the stopped projection"
    )
    sk.add_argument(
        "position",
        metavar="POSITION",
        type=int_range(1),
        help="the position it is stopped at (ledger projections status shows it)",
    )
    add_database_url(sk)
    sk.set_defaults(run=cmd_skip)


def add_check(sub: Any, help_text: str) -> argparse.ArgumentParser:
    """The ``check`` subcommand under ``sub`` (``projections check``, ``replay check``)."""
    ck = _builds_copies(sub, "check", help_text, cmd_check)
    ck.add_argument(
        "--max-diffs",
        type=int_range(0),
        default=MAX_DIFFS_SHOWN,
        help=f"differing rows shown per table (default {MAX_DIFFS_SHOWN})",
    )
    return ck


@contextmanager
def _runtime(
    settings: Settings, *, create: bool = False, terminable: bool = False
) -> Iterator[Runtime]:
    """The projections' runtime for the block, closed after it. Only ``run`` (a writer)
    makes a missing database; the others report it. ``terminable``: SIGTERM unwinds the
    block as Ctrl-C does (``terminable_block``)."""
    rt = open_runtime(settings.database_url, create=create)
    try:
        with terminable_block() if terminable else nullcontext():
            yield rt
    finally:
        rt.close()


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    """Run until caught up (``--once``) or stopped. SIGTERM, how a service manager stops a
    worker, stops it cleanly: the batch under way commits, exit 0 (3 if a projection is
    stopped on a poison event). Ctrl-C (SIGINT) stops it the same way, then exits 130 as
    every interrupted command does."""
    projections = select(args.names)
    stop = threading.Event()
    received: set[signal.Signals] = set()

    def on_signal(signum: int, _frame: Any) -> None:
        received.add(signal.Signals(signum))
        log.info("signal %s: finishing the current batch", signal.Signals(signum).name)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        with _runtime(settings, create=True) as rt, _sealing(settings, stop, args.once):
            worker = Worker(rt, projections, batch=args.batch_size, idle_s=args.idle)
            log.info("running %s", ", ".join(p.name for p in projections))
            stats = worker.run(stop, until_caught_up=args.once)
            halts = worker.halts()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log.info("stopped at position %s after %s batches", stats.position, stats.batches)
    for name, halt in sorted(halts.items()):
        log.error("%s is stopped at position %s: %s", name, halt.position, halt.reason)
    if signal.SIGINT in received:
        raise KeyboardInterrupt  # cli.main: "ledger: interrupted", exit 130
    return Exit.STOPPED if halts else Exit.OK


@contextmanager
def _sealing(settings: Settings, stop: threading.Event, once: bool) -> Iterator[None]:
    """With ``LEDGER_SEAL_INTERVAL_S`` set (and not ``--once``), a thread seals the log on that
    timer while the worker runs, and once more when it stops (replay/periodic.py)."""
    if not settings.seal_interval_s or once:
        yield
        return
    from replay.periodic import PeriodicSealer
    from replay.signing_key import load_signer

    signer = load_signer(settings.signing_key_path, settings.log_name)
    sealer = PeriodicSealer(
        settings.database_url, signer, settings.checkpoint_dir, settings.seal_interval_s, stop
    )
    sealer.start()
    try:
        yield
    finally:
        stop.set()
        sealer.join()


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    with _runtime(settings) as rt:
        report = status(rt)
    stopped = Exit.STOPPED if report["stopped"] else Exit.OK
    if args.json:
        print(json.dumps(report, indent=2))
        return stopped
    print(f"head {report['head']} ({report['head_at'] or 'empty log'})")
    print(f"{'projection':14}{'position':>10}{'lag events':>12}{'lag s':>12}  last batch")
    for row in report["projections"]:
        print(
            f"{row['name']:14}{row['position']:>10}{row['lag_events']:>12}"
            f"{row['lag_seconds']:>12.0f}  {row['last_batch_at'] or '-'}{_notes(row)}"
        )
    return stopped


def _notes(row: dict[str, Any]) -> str:
    note = " (needs rebuild)" if row["needs_rebuild"] else ""
    note += " (rebuilding)" if row["rebuilding"] else ""
    if row["rebuild_leftovers"]:
        note += " (an interrupted rebuild's copies: the next run or rebuild removes them)"
    halt = row["stopped"]
    if halt:
        note += (
            f" STOPPED at position {halt['position']} ({halt['topic']}): {halt['reason']}, "
            f"{halt['attempts']} attempt(s)"
        )
    if row["skipped"]:
        note += f" (skipped: {', '.join(map(str, row['skipped']))})"
    return note + _last_check(row["last_check"])


def _last_check(last: dict[str, Any] | None) -> str:
    """The projection's last ``check`` result, as a note of the status line."""
    if last is None:
        return " (never checked)"
    if last["outcome"] == "same":
        verdict = "same"
    elif last["outcome"] == "differs":
        verdict = f"{last['differences']} difference(s) in {', '.join(last['tables'])}"
    else:
        verdict = f"not compared, stopped at position {last['stopped']['position']}"
    return f" (last check {last['at']}: {verdict} at position {last['position']})"


@contextmanager
def terminable_block() -> Iterator[None]:
    """SIGTERM unwinds the stack as Ctrl-C does, so a rebuild or check drops its unfinished
    copies before it exits (with 128 + SIGTERM)."""

    def on_term(signum: int, _frame: Any) -> None:
        raise SystemExit(Exit.TERMINATED)

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    except SystemExit:
        print("ledger: terminated", file=sys.stderr)
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)


def cmd_rebuild(args: argparse.Namespace, settings: Settings) -> int:
    projections, progress = select(args.names), not args.no_progress
    with _runtime(settings, terminable=True) as rt:
        report = rebuild(
            rt, projections, batch=args.batch_size, jobs=args.jobs, show_progress=progress
        )
    rebuilt = [name for name in report.projections if name not in report.stopped]
    summary = {
        "rebuilt": rebuilt,
        "stopped": {name: halt.as_dict() for name, halt in report.stopped.items()},
        "events": report.events,
        "position": report.position,
        "seconds": round(report.seconds, 3),
        "events_per_second": round(report.events_per_second),
        "jobs": report.jobs,
        "worker_peak_rss_mb": report.worker_peak_rss_mb,
    }
    if args.json:
        print(json.dumps(summary))
    else:
        print(
            f"rebuilt {', '.join(rebuilt) or 'nothing'}: {report.events} events in "
            f"{report.seconds:.1f}s ({report.events_per_second:.0f} events/s, "
            f"{report.jobs} process{'es' if report.jobs > 1 else ''}), "
            f"swapped in at position {report.position}"
        )
        for name, halt in report.stopped.items():
            print(
                f"not rebuilt {name}: stopped at position {halt.position} ({halt.topic}): "
                f"{halt.reason}; its live tables are unchanged"
            )
    return Exit.STOPPED if report.stopped else Exit.OK


def _print_check(results: list[ProjectionCheck]) -> None:
    for result in results:
        if result.stopped:
            halt = result.stopped
            print(
                f"{result.name}: not compared, its rebuild stopped at position {halt.position} "
                f"({halt.topic}): {halt.reason}"
            )
            continue
        verdict = "same" if not result.differences else f"{result.differences} difference(s)"
        print(f"{result.name} at position {result.position}: {verdict}")
        for table in result.tables:
            if not table.differences:
                continue
            print(
                f"  {table.table}: {table.differences} (live {table.rows_live} rows, "
                f"rebuilt {table.rows_rebuilt})"
            )
            for note in table.shown:
                print(f"    {json.dumps(note, ensure_ascii=False, default=str)}")


def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    projections = select(args.names)
    with _runtime(settings, terminable=True) as rt:
        results = check(
            rt, projections, batch=args.batch_size, shown=args.max_diffs, jobs=args.jobs
        )
    if args.json:
        print(json.dumps([_as_dict(r) for r in results], ensure_ascii=False, default=str))
    else:
        _print_check(results)
    if any(r.differences for r in results):
        return Exit.PROBLEM
    return Exit.STOPPED if any(r.stopped for r in results) else Exit.OK


def _as_dict(result: ProjectionCheck) -> dict[str, Any]:
    return {
        "name": result.name,
        "position": result.position,
        "differences": result.differences,
        "tables": [vars(t) for t in result.tables],
        "stopped": None if result.stopped is None else result.stopped.as_dict(),
    }


def cmd_skip(args: argparse.Namespace, settings: Settings) -> int:
    projection = select([args.name])[0]
    with _runtime(settings) as rt:
        halt = skip(rt, projection, args.position)
    print(
        f"{projection.name}: left out the event at position {halt.position} ({halt.topic}); "
        "it carries on after it"
    )
    return Exit.OK


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m cli.projections ACTION …``: the same as ``ledger projections ACTION …``,
    through the one entry point that maps errors and interruptions to exit codes."""
    from cli import main as ledger_main

    return ledger_main(["projections", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
