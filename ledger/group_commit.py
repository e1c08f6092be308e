"""Group commit: concurrent commands share transactions, each still decided on its own.

The library's PostgreSQL recorder takes an exclusive lock on the events table for every
insert, so one transaction per HTTP request would serialise every writer on a disk flush
(issue 10, item 6). Here one writer thread owns the ``Ledger``'s writes: callers ``submit``
commands and get futures; the writer saves whatever is queued together through
``Ledger.execute_batch`` (one transaction; each command checked and refused on its own; the
batch re-run one command at a time if it cannot be saved whole).

- **The window adapts.** The writer takes every command queued when it wakes, without waiting.
  Only when its previous batch had more than one command (the ledger is under load) does it
  wait up to ``max_wait_s`` for more, up to ``max_batch``. An idle writer saves a lone command
  at once.
- **Acknowledged means durable.** A future resolves only after its transaction committed:
  with the ``CommandResult``, or failed with the ``LedgerError`` refusal (refusals by a rule
  are recorded as the command's outcome, ``remember_refusals``, so a retry with the same
  command id gets the same refusal; invalid input is never recorded:
  ``ledger/domain/command_record.py``).
- **Never half.** A shared save that fails (``STORAGE_UNAVAILABLE``) fails every command of
  the batch, each with its own copy of the error; none of them was acknowledged and each may
  be sent again with the same command id. An unforeseen exception fails each with
  ``COMMAND_FAILED`` and the writer goes on.
- **In flight.** A command id already queued or being saved in this process is refused at
  once with ``COMMAND_IN_PROGRESS`` (IETF Idempotency-Key draft: a concurrent retry is
  refused, not run twice). Once the first has finished, a retry runs and gets its first
  outcome (``duplicate=True``).
- **Bounded.** At most ``max_queue`` commands wait; beyond that ``submit`` fails at once with
  ``STORAGE_UNAVAILABLE`` (the API's 503 with ``Retry-After``: this server cannot take more
  now). So does a ``submit`` after ``close``.
- **Switched off** (``enabled=False``, ``LEDGER_GROUP_COMMIT=off``): the same writer thread
  runs each command in its own transaction (``Ledger.execute``). The thread stays so that
  ``submit`` never blocks its caller in either mode, and the in-flight check and the queue
  bound behave the same: the only difference is whether transactions are shared (the
  benchmark's baseline).

``submit`` only takes a lock for a moment and never waits on the database, so an asyncio
server may call it on its event loop: ``await asyncio.wrap_future(committer.submit(...))``.
A future cancelled while its command is still queued is dropped (nothing was written); once
the writer has taken it, the command runs to its outcome.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ledger.application import MAX_BATCH_COMMANDS, CommandResult, Ledger
from ledger.commands import Command
from ledger.domain.context import Actor
from ledger.domain.errors import CommandFailed, CommandInProgress, LedgerError, StorageUnavailable
from ledger.settings import (
    DEFAULT_GROUP_COMMIT_MAX_BATCH,
    DEFAULT_GROUP_COMMIT_MAX_QUEUE,
    DEFAULT_GROUP_COMMIT_WAIT_MS,
    GroupCommitSettings,
)

CLOSE_TIMEOUT_S = 30.0  # close() waits this long for the queue to drain

log = logging.getLogger("ledger.group_commit")

Outcome = CommandResult | LedgerError


@dataclass(frozen=True)
class _Pending:
    data: Any
    actor: Actor
    command_id: str | None  # None: no usable id (the writer refuses it as invalid input)
    expected_version: int | None  # If-Match: the version its subject stream must have
    future: Future[CommandResult]


class GroupCommitter:
    """One writer thread that saves submitted commands, sharing transactions under load.

    ``max_batch``: most commands per transaction (1 to ``MAX_BATCH_COMMANDS``).
    ``max_wait_s``: seconds the writer waits for more commands, only while under load.
    ``max_queue``: most commands accepted and not yet taken by the writer.
    ``enabled``: False runs each command in its own transaction (still on the writer).
    ``on_batch``: called on the writer thread with each batch's size (commands taken
    together, i.e. one transaction unless the batch had to be re-run one by one), before it
    is saved; an exception it raises is logged and ignored.

    The committer does not close the ``Ledger``; its owner does, after ``close``."""

    def __init__(
        self,
        ledger: Ledger,
        *,
        max_batch: int = DEFAULT_GROUP_COMMIT_MAX_BATCH,
        max_wait_s: float = DEFAULT_GROUP_COMMIT_WAIT_MS / 1000,
        max_queue: int = DEFAULT_GROUP_COMMIT_MAX_QUEUE,
        enabled: bool = True,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        assert 1 <= max_batch <= MAX_BATCH_COMMANDS, "execute_batch takes this many at most"
        assert max_queue >= 1 and max_wait_s >= 0, "bounds are positive"
        self.ledger = ledger
        self.max_batch = max_batch if enabled else 1
        self.max_wait_s = max_wait_s
        self.max_queue = max_queue
        self.enabled = enabled
        self.on_batch = on_batch
        self._queue: deque[_Pending] = deque()
        self._in_flight: set[str] = set()  # command ids queued or being saved
        self._changed = threading.Condition()
        self._closing = False
        # A daemon: a process leaving without close() does not hang on an idle writer, and
        # nothing is lost that was acknowledged (answers follow commits).
        self._writer = threading.Thread(target=self._run, name="ledger-group-commit", daemon=True)
        self._writer.start()

    @classmethod
    def from_settings(
        cls,
        ledger: Ledger,
        settings: GroupCommitSettings,
        on_batch: Callable[[int], None] | None = None,
    ) -> GroupCommitter:
        """A committer configured by ``LEDGER_GROUP_COMMIT*`` (ledger/settings.py)."""
        return cls(
            ledger,
            max_batch=settings.max_batch,
            max_wait_s=settings.wait_ms / 1000,
            max_queue=settings.max_queue,
            enabled=settings.enabled,
            on_batch=on_batch,
        )

    # -- callers ------------------------------------------------------------------------------
    def submit(
        self, data: Any, actor: Actor, expected_version: int | None = None
    ) -> Future[CommandResult]:
        """Queue one command (a dict as ``parse_command`` takes it) sent by ``actor``;
        ``expected_version``: the version its subject stream must still have when it is
        decided (an HTTP ``If-Match``, RFC 9110 section 13.1.1; else ``PRECONDITION_FAILED``).

        Returns at once, never waiting on the database. The future resolves after the
        command's transaction committed, with its ``CommandResult``; or fails with its
        ``LedgerError``: the refusal (recorded as its outcome when a rule refused it),
        ``COMMAND_IN_PROGRESS`` at once if its ``command_id`` is queued or being saved,
        ``STORAGE_UNAVAILABLE`` at once if the queue is full or the committer closed, or
        ``STORAGE_UNAVAILABLE`` / ``COMMAND_FAILED`` if its save failed (nothing of it was
        acknowledged; send it again with the same id)."""
        future: Future[CommandResult] = Future()
        command_id = _command_id_of(data)
        with self._changed:
            refusal = self._refusal(command_id)
            if refusal is None:
                self._queue.append(_Pending(data, actor, command_id, expected_version, future))
                if command_id is not None:
                    self._in_flight.add(command_id)
                self._changed.notify()
        if refusal is not None:
            future.set_exception(refusal)
        return future

    def _refusal(self, command_id: str | None) -> LedgerError | None:
        """Why a command cannot be queued now, if it cannot (the lock is held)."""
        if self._closing:
            return StorageUnavailable("the ledger's writer is shutting down; send it again")
        if command_id is not None and command_id in self._in_flight:
            return CommandInProgress(
                f"command {command_id} is still being saved; retry once it has finished"
            )
        if len(self._queue) >= self.max_queue:
            return StorageUnavailable(
                f"{self.max_queue} commands are already waiting to be saved "
                "(LEDGER_GROUP_COMMIT_MAX_QUEUE); retry shortly"
            )
        return None

    def close(self, timeout_s: float = CLOSE_TIMEOUT_S) -> None:
        """Take no more commands, save those already accepted, stop the writer.

        Waits up to ``timeout_s`` seconds; commands still queued then (the database is
        stuck) fail with ``STORAGE_UNAVAILABLE``, never written. Closing twice is harmless."""
        with self._changed:
            self._closing = True
            self._changed.notify_all()
        self._writer.join(timeout_s)
        with self._changed:
            abandoned = list(self._queue)
            self._queue.clear()
            self._release(abandoned)
        for pending in abandoned:
            _settle(
                pending.future,
                StorageUnavailable(
                    f"the ledger's writer did not finish within {timeout_s:g} s of shutting "
                    "down; the command was not written, send it again"
                ),
            )

    # -- the writer thread --------------------------------------------------------------------
    def _run(self) -> None:
        previous_size = 1
        while (batch := self._next_batch(under_load=previous_size > 1)) is not None:
            if batch:
                self._commit(batch)
            previous_size = len(batch)

    def _next_batch(self, under_load: bool) -> list[_Pending] | None:
        """The commands to save together: all queued now (up to ``max_batch``); under load,
        also those arriving within ``max_wait_s``. None once closing and drained. Commands
        whose future was cancelled are dropped here (an empty batch if all were)."""
        with self._changed:
            while not self._queue and not self._closing:
                self._changed.wait()
            if not self._queue:
                return None
            taken = self._take()
            if under_load and not self._closing:
                deadline = time.monotonic() + self.max_wait_s
                while len(taken) < self.max_batch and not self._closing:
                    remaining_s = deadline - time.monotonic()
                    if remaining_s <= 0:
                        break
                    if not self._queue:
                        self._changed.wait(remaining_s)
                    taken.extend(self._take(self.max_batch - len(taken)))
            live: list[_Pending] = []
            cancelled: list[_Pending] = []
            for pending in taken:
                (live if pending.future.set_running_or_notify_cancel() else cancelled).append(
                    pending
                )
            self._release(cancelled)
        return live

    def _take(self, most: int | None = None) -> list[_Pending]:
        """Up to ``most`` (``max_batch``) queued commands, oldest first (the lock is held)."""
        count = min(len(self._queue), self.max_batch if most is None else most)
        return [self._queue.popleft() for _ in range(count)]

    def _commit(self, batch: list[_Pending]) -> None:
        """Save the batch, then settle each future; never raises."""
        self._report_size(len(batch))
        try:
            outcomes = self._save(batch)
        except LedgerError as shared:  # the shared save failed: each command fails alike
            outcomes = [_copy(shared) for _ in batch]
        except Exception as exc:  # noqa: BLE001 - a defect must not stop the writer
            _log_unforeseen(exc)
            outcomes = [_unforeseen(exc, pending) for pending in batch]
        with self._changed:
            self._release(batch)  # before settling: a retry after the answer is not in flight
        for pending, outcome in zip(batch, outcomes, strict=True):
            _settle(pending.future, outcome)

    def _save(self, batch: list[_Pending]) -> list[Outcome]:
        if not self.enabled:
            (only,) = batch
            return [self._save_alone(only)]
        items: list[tuple[Any, datetime | None]] = [(p.data, None) for p in batch]
        return self.ledger.execute_batch(
            items,
            remember_refusals=True,
            actors=[p.actor for p in batch],
            expected_versions=[p.expected_version for p in batch],
        )

    def _save_alone(self, pending: _Pending) -> Outcome:
        """One command, one transaction (group commit switched off)."""
        try:
            return self.ledger.execute(
                pending.data,
                remember_refusals=True,
                actor=pending.actor,
                expected_version=pending.expected_version,
            )
        except LedgerError as refusal:
            return refusal

    def _report_size(self, size: int) -> None:
        if self.on_batch is None:
            return
        try:
            self.on_batch(size)
        except Exception as exc:  # noqa: BLE001 - a metrics hook must not stop the writer
            log.warning("group commit: on_batch failed with %s; ignored", type(exc).__name__)

    def _release(self, batch: list[_Pending]) -> None:
        """Those commands are no longer in flight (the lock is held)."""
        for pending in batch:
            if pending.command_id is not None:
                self._in_flight.discard(pending.command_id)


def _command_id_of(data: Any) -> str | None:
    """The command id a caller gave (a parsed command's, or a dict's if a non-empty string;
    else parsing refuses it)."""
    if isinstance(data, Command):
        return data.command_id
    command_id = data.get("command_id") if isinstance(data, dict) else None
    return command_id if isinstance(command_id, str) and command_id else None


def _settle(future: Future[CommandResult], outcome: Outcome) -> None:
    if isinstance(outcome, LedgerError):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


def _copy(error: LedgerError) -> LedgerError:
    """The same error as another object: each future gets its own, since raising an
    exception object writes its traceback into it."""
    twin = type(error).__new__(type(error), *error.args)
    twin.__dict__.update(error.__dict__)
    return twin


def _log_unforeseen(exc: Exception) -> None:
    """The traceback, to the debug log as frames and the exception's type only (its text may
    quote the input, which may be personal data)."""
    frames = "".join(traceback.format_list(traceback.extract_tb(exc.__traceback__)))
    log.debug("group commit failed with %s at\n%s", type(exc).__name__, frames)


def _unforeseen(exc: Exception, pending: _Pending) -> LedgerError:
    """``COMMAND_FAILED`` for one command of a batch whose save raised something no one
    foresaw; the message names the command and the exception's type, never its text."""
    name = f"command {pending.command_id}" if pending.command_id else "a command"
    return CommandFailed(
        f"{name} was not saved: its batch failed unexpectedly ({type(exc).__name__}); "
        "send it again with the same command id"
    )
