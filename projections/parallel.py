"""Building copies in several processes at once.

A rebuild is CPU-bound in Python (decoding, handlers, COPY encoding), and one Python process
uses one core. Each projection's copy is independent of the others (its own tables, its own
tracking row), so the copies are split into groups balanced by ``Projection.rebuild_cost``
and each group is built by a process of its own: it reads the log on its own connection,
applies it with a row cache and read-ahead exactly as a single process would
(``projections.copies``), builds its group's secondary indexes, and reports its position
through a pipe after every batch.

The processes are forked, so they start with the code already loaded; each opens its own
connection after the fork and never touches the parent's. Forking is only done on
PostgreSQL (SQLite has a single writer: processes would queue for it) and on Linux;
elsewhere the copies are built in this process. A child that fails
or dies fails the whole build; its copies are left for the next rebuild to drop, as when a
single process dies. A child whose parent is gone stops at its next batch, when reporting
its progress finds the pipe closed.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import resource
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from ledger.domain import codes
from ledger.domain.errors import LedgerError
from projections.copies import AfterPage, catch_up, create_indexes, owned
from projections.engine import Runtime, StepResult, Target

MAX_JOBS = 16
# The cores this process may run on (a container's CPU set, not the host's count).
DEFAULT_JOBS = (
    len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
)
WAIT_SLICE_S = 1.0
JOIN_TIMEOUT_S = 30.0

OnProgress = Callable[[int], None]  # the lowest position the copies have reached


class ProjectionBuildFailed(LedgerError):
    """A process building copies of projections failed; the copies are incomplete."""

    catalogued = codes.PROJECTION_BUILD_FAILED


@dataclass(frozen=True)
class BuildPlan:
    """How to build a set of copies: batch size, index generation, where to stop (None: the
    head of the log), and whether to build the secondary indexes at the end."""

    batch: int
    gen: str
    stop: int | None = None
    indexes: bool = True


@dataclass
class Built:
    """What building a set of copies did."""

    jobs: int = 1  # processes that built them
    read: int = 0  # log rows read (by the process that read most)
    position: int = 0  # lowest position the copies reached
    peak_rss_mb: list[float] = field(default_factory=list)  # of each child process


def peak_rss_mb() -> float:
    """This process's peak resident memory. Linux's ``VmHWM`` starts afresh at exec and at
    fork, whereas ``ru_maxrss`` carries over the parent's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def usable_jobs(rt: Runtime, targets: Sequence[Target], jobs: int) -> int:
    # Fork only on Linux: macOS system libraries are not safe to use in a forked child.
    if rt.db.kind != "postgres" or not sys.platform.startswith("linux"):
        return 1
    return max(1, min(jobs, len(targets), MAX_JOBS))


def split(targets: Sequence[Target], jobs: int) -> list[list[Target]]:
    """Groups of near-equal cost: costliest first, each to the group with least so far."""
    groups: list[list[Target]] = [[] for _ in range(jobs)]
    costs = [0] * jobs
    for target in sorted(targets, key=lambda t: -t.projection.rebuild_cost):
        least = costs.index(min(costs))
        groups[least].append(target)
        costs[least] += target.projection.rebuild_cost
    return [g for g in groups if g]


def build_here(
    rt: Runtime, targets: Sequence[Target], plan: BuildPlan, after_page: AfterPage
) -> StepResult:
    """Build ``targets`` in this process: catch up with the log, then the indexes."""
    with owned(rt, targets):
        result = catch_up(rt, targets, plan.batch, stop=plan.stop, after_page=after_page)
    if plan.indexes:
        create_indexes(rt, targets, plan.gen)
    return result


def build_copies(
    rt: Runtime, targets: Sequence[Target], plan: BuildPlan, *, jobs: int, on_progress: OnProgress
) -> Built:
    """Build the (freshly prepared, empty) copies ``targets`` as ``plan`` says."""
    jobs = usable_jobs(rt, targets, jobs)
    if jobs == 1:
        built = Built()

        def after_page(result: StepResult) -> None:
            built.read += result.read
            built.position = result.position
            on_progress(result.position)

        build_here(rt, targets, plan, after_page)
        return built
    return _build_forked(rt, split(targets, jobs), plan, on_progress)


def _build_forked(
    rt: Runtime, groups: list[list[Target]], plan: BuildPlan, on_progress: OnProgress
) -> Built:
    context = multiprocessing.get_context("fork")
    children: dict[Connection, tuple[int, Any]] = {}
    try:
        for number, group in enumerate(groups):
            reader, writer = context.Pipe(duplex=False)
            parents_ends = [*children, reader]  # the fork copies them: the child closes them
            child = context.Process(
                target=_child,
                args=(rt, group, plan, writer, parents_ends),
                name=f"build-{number}",
            )
            child.start()
            writer.close()  # the child's end: when the child exits, reads here see EOF
            children[reader] = (number, child)
        return _follow(children, groups, on_progress)
    finally:
        for _, child in children.values():
            if child.is_alive():
                child.terminate()
            child.join(JOIN_TIMEOUT_S)


def _follow(
    children: dict[Connection, tuple[int, Any]], groups: list[list[Target]], on_progress: OnProgress
) -> Built:
    """Read the children's reports until each has said it is done."""
    positions = [0] * len(groups)
    reads = [0] * len(groups)
    built = Built(jobs=len(groups))
    pending = dict(children)
    while pending:
        for ready in wait(list(pending), timeout=WAIT_SLICE_S):
            assert isinstance(ready, Connection)
            number, child = pending[ready]
            names = ", ".join(t.projection.name for t in groups[number])
            try:
                report = ready.recv()
            except EOFError:
                child.join(JOIN_TIMEOUT_S)
                raise ProjectionBuildFailed(
                    f"the process building {names} died (exit code {child.exitcode})"
                ) from None
            if report[0] == "failed":
                raise ProjectionBuildFailed(f"the process building {names} failed: {report[1]}")
            positions[number], reads[number] = report[1], report[2]
            if report[0] == "done":
                built.peak_rss_mb.append(report[3])
                del pending[ready]
            on_progress(min(positions))
    built.read, built.position = max(reads), min(positions)
    return built


def _child(
    rt: Runtime,
    group: list[Target],
    plan: BuildPlan,
    out: Connection,
    parents_ends: list[Connection],
) -> None:
    """In the forked process: build ``group`` on a connection of its own. The process ends
    when its copies are built, so it neither runs the cyclic collector (its rows make no
    cycles) nor frees its row caches one row at a time: exiting returns the memory."""
    for end in parents_ends:
        end.close()  # else the pipe stays open after the parent dies, and sends never fail
    gc.disable()
    # Ctrl-C reaches the whole process group: the parent stops the build (and these
    # processes), so a child does not die on it with a traceback of its own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The parent ends these processes with SIGTERM: die at once, not by its own handler
    # (which the fork copied), which unwinds to drop the copies.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    parent = os.getppid()
    mine = rt.reconnected()
    for target in group:
        mine.engine.own(target)
    read = 0

    def after_page(result: StepResult) -> None:
        nonlocal read
        read += result.read
        out.send(("page", result.position, read))

    try:
        result = catch_up(mine, group, plan.batch, stop=plan.stop, after_page=after_page)
        if plan.indexes:
            create_indexes(mine, group, plan.gen)
        out.send(("done", result.position, read, peak_rss_mb()))
    except LedgerError as exc:
        out.send(("failed", f"{exc.code}: {exc.message}"))
    except BrokenPipeError:
        return  # the parent is gone (killed): nobody will use these copies, stop here
    except Exception:
        if os.getppid() != parent:
            return  # the parent is gone and a later run removed these copies under us
        raise
    finally:
        mine.close()
        out.close()
