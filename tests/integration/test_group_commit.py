"""Group commit (issue 10, item 6): concurrent commands share transactions, each decided on
its own; an acknowledged command is in the log; a failed shared save acknowledges nothing.

To make batches certain rather than likely, most tests hold the writer in its ``on_batch``
hook (called on the writer thread before a batch is saved) while they queue commands behind
it: once released, the writer takes everything queued as the next batch.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest

from ledger.application import CommandResult, Ledger
from ledger.domain.command_record import CommandRefused
from ledger.domain.context import Actor
from ledger.domain.errors import (
    CommandFailed,
    CommandInProgress,
    LedgerError,
    PreconditionFailed,
    StorageUnavailable,
)
from ledger.group_commit import GroupCommitter
from ledger.library.tables import PG_EVENTS_TABLE, SQLITE_EVENTS_TABLE
from ledger.storage_url import StorageUrl
from tests import builders as b
from tests.fix_api import Api

WAIT_S = 20  # bounded waits: a broken writer fails the test instead of hanging it
SERVICE = Actor("key-1", "service")


class Batches:
    """``on_batch`` for the tests: records each batch's size; when holding, the writer waits
    inside the hook for the first batch (before saving it) until ``release``."""

    def __init__(self, hold: bool = True) -> None:
        self.sizes: list[int] = []
        self.holding = hold
        self.entered = threading.Event()
        self.released = threading.Event()
        self.first = b.submit(f"HOLD-{id(self)}")  # what ``held`` keeps the writer busy with

    def __call__(self, size: int) -> None:
        self.sizes.append(size)
        if self.holding:
            self.holding = False
            self.entered.set()
            assert self.released.wait(WAIT_S), "the test never released the writer"

    def wait_held(self) -> None:
        assert self.entered.wait(WAIT_S), "the writer never took the first command"

    def release(self) -> None:
        self.released.set()


@contextmanager
def committer(ledger: Ledger, **options: Any) -> Iterator[GroupCommitter]:
    opened = GroupCommitter(ledger, **options)
    try:
        yield opened
    finally:
        opened.close(timeout_s=WAIT_S)


@contextmanager
def held(ledger: Ledger, **options: Any) -> Iterator[tuple[GroupCommitter, Batches]]:
    """A committer whose writer is busy with a first command (accepted; ``batches.first``)
    until released."""
    batches = Batches()
    with committer(ledger, on_batch=batches, **options) as opened:
        first = opened.submit(batches.first, SERVICE)
        batches.wait_held()
        try:
            yield opened, batches
        finally:
            batches.release()
            assert isinstance(first.result(WAIT_S), CommandResult)


def outcome(future: Future[CommandResult]) -> CommandResult | LedgerError:
    error = future.exception(WAIT_S)
    if error is None:
        return future.result()
    assert isinstance(error, LedgerError), repr(error)
    return error


def log_command_ids(ledger: Ledger) -> list[str]:
    """The command id of every event in the whole log, in order."""
    notifications = ledger.app.recorder.select_notifications(start=1, limit=100_000)
    return [ledger.app.mapper.to_domain_event(n).command_id for n in notifications]  # type: ignore[attr-defined]


def log_events_of(ledger: Ledger, command_id: str) -> list[Any]:
    notifications = ledger.app.recorder.select_notifications(start=1, limit=100_000)
    events = [ledger.app.mapper.to_domain_event(n) for n in notifications]
    return [e for e in events if getattr(e, "command_id", None) == command_id]


# -- sharing transactions ----------------------------------------------------------------------
def test_many_threads_share_transactions_and_each_command_gets_its_own_result(
    ledger_app: Ledger,
) -> None:
    threads, per_thread = 16, 4
    commands = [[b.submit(f"T{t}-{i}") for i in range(per_thread)] for t in range(threads)]
    futures: dict[str, Future[CommandResult]] = {}
    start = threading.Barrier(threads, timeout=WAIT_S)

    def send(mine: list[dict[str, Any]], committer_: GroupCommitter) -> None:
        start.wait()
        for command in mine:
            futures[command["command_id"]] = committer_.submit(command, SERVICE)

    with held(ledger_app) as (gc, batches):
        workers = [threading.Thread(target=send, args=(mine, gc)) for mine in commands]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(WAIT_S)
    sent = threads * per_thread
    assert len(futures) == sent
    for command_id, future in futures.items():
        result = outcome(future)
        assert isinstance(result, CommandResult) and not result.duplicate
        assert result.command_id == command_id and result.events == ["order/Submitted"]
        assert command_id in log_command_ids(ledger_app)  # acknowledged: in the log
    assert sum(batches.sizes) == sent + 1  # and the holding command
    assert len(batches.sizes) < sent, batches.sizes  # fewer transactions than commands


def test_an_idle_writer_saves_each_command_at_once_on_its_own(ledger_app: Ledger) -> None:
    batches = Batches(hold=False)
    with committer(ledger_app, on_batch=batches, max_wait_s=0.5) as gc:
        for n in range(3):
            result = gc.submit(b.submit(f"IDLE-{n}"), SERVICE).result(WAIT_S)
            assert result.position == ledger_app.head_position()
    assert batches.sizes == [1, 1, 1]


def test_each_command_of_a_batch_is_decided_on_its_own(ledger_app: Ledger) -> None:
    accepted, twin = b.submit("MIX-1"), b.submit("MIX-1")  # the second is ORDER_EXISTS
    unknown = b.pay("MIX-NONE")  # no such order: NOT_FOUND
    invalid = {**b.submit("MIX-2"), "lines": []}
    other = b.submit("MIX-3")
    with held(ledger_app) as (gc, batches):
        futures = [gc.submit(c, SERVICE) for c in (accepted, unknown, invalid, twin, other)]
    results = [outcome(f) for f in futures]
    assert batches.sizes == [1, 5]
    assert [r.command_id for r in results if isinstance(r, CommandResult)] == [
        accepted["command_id"],
        other["command_id"],
    ]
    refusals = {r.code for r in results if isinstance(r, LedgerError)}
    assert refusals == {"NOT_FOUND", "INVALID_COMMAND", "ORDER_EXISTS"}
    # A refusal by the ledger's state is the command's outcome: its record, nothing else.
    for refused in (unknown, twin):
        written = log_events_of(ledger_app, refused["command_id"])
        assert [type(e) for e in written] == [CommandRefused]
        assert written[0].actor == SERVICE.as_dict()
    assert log_events_of(ledger_app, invalid["command_id"]) == []  # input errors: never


@pytest.mark.parametrize("enabled", [True, False], ids=["shared", "alone"])
def test_each_command_is_checked_against_its_own_expected_version(
    ledger_app: Ledger, enabled: bool
) -> None:
    versions = [ledger_app.execute(b.submit(f"IFM-{n}")).version for n in (1, 2)]
    with held(ledger_app, enabled=enabled) as (gc, batches):
        current = gc.submit(b.pay("IFM-1"), SERVICE, expected_version=versions[0])
        stale = gc.submit(b.pay("IFM-2"), SERVICE, expected_version=99)
    assert isinstance(outcome(current), CommandResult)
    error = outcome(stale)
    assert isinstance(error, PreconditionFailed) and error.code == "PRECONDITION_FAILED"
    assert batches.sizes == ([1, 2] if enabled else [1, 1, 1])


# -- in flight, and retries ---------------------------------------------------------------------
def test_a_command_sent_again_while_in_flight_is_refused_in_progress(ledger_app: Ledger) -> None:
    queued = b.submit("FLY-1")
    with held(ledger_app) as (gc, batches):
        first = gc.submit(queued, SERVICE)
        again = gc.submit(dict(queued), SERVICE)
        error = again.exception(timeout=0)  # refused at once, not queued
        assert isinstance(error, CommandInProgress) and error.code == "COMMAND_IN_PROGRESS"
        being_saved = gc.submit(dict(batches.first), SERVICE)
        assert isinstance(being_saved.exception(timeout=0), CommandInProgress)
    assert isinstance(outcome(first), CommandResult)
    assert log_command_ids(ledger_app).count(queued["command_id"]) == 2  # order + record


def test_a_retry_after_the_answer_gets_the_same_outcome_and_writes_nothing(
    ledger_app: Ledger,
) -> None:
    submit, unknown = b.submit("RE-1"), b.pay("RE-NONE")
    with committer(ledger_app) as gc:
        first = outcome(gc.submit(submit, SERVICE))
        refused = outcome(gc.submit(unknown, SERVICE))
        logged = log_command_ids(ledger_app)
        again = outcome(gc.submit(dict(submit), SERVICE))
        refused_again = outcome(gc.submit(dict(unknown), SERVICE))
        assert log_command_ids(ledger_app) == logged
    assert isinstance(first, CommandResult) and isinstance(again, CommandResult)
    assert again.duplicate and (again.events, again.result) == (first.events, first.result)
    assert isinstance(refused, LedgerError) and isinstance(refused_again, LedgerError)
    assert (refused_again.code, refused_again.clause) == (refused.code, refused.clause)


def test_a_command_cancelled_while_queued_is_never_written(ledger_app: Ledger) -> None:
    dropped = b.submit("CANCEL-1")
    with held(ledger_app) as (gc, _):
        future = gc.submit(dropped, SERVICE)
        assert future.cancel()
    with committer(ledger_app) as gc:
        gc.submit(b.submit("CANCEL-2"), SERVICE).result(WAIT_S)  # the writer went past it
        assert dropped["command_id"] not in log_command_ids(ledger_app)
        sent_again = gc.submit(dropped, SERVICE).result(WAIT_S)
    assert not sent_again.duplicate


# -- failures ---------------------------------------------------------------------------------
def run_sql(url: str, statement: str) -> None:
    """One statement on its own connection (not the ledger's), committed."""
    where = StorageUrl.parse(url)
    if where.sqlite_path is None:
        with psycopg.connect(url, autocommit=True) as pg:
            pg.execute(statement)
        return
    lite = sqlite3.connect(where.sqlite_path, isolation_level=None)
    try:
        lite.execute(statement)
    finally:
        lite.close()


@contextmanager
def inserts_failing(url: str) -> Iterator[None]:
    """Every insert into the events table fails in the database: a trigger writes to an
    audit table that is not there (as after an operator dropped it). Reads still work."""
    if StorageUrl.parse(url).is_postgres:
        run_sql(
            url,
            "CREATE FUNCTION audit() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN INSERT INTO audit_gone VALUES (1); RETURN NEW; END $$",
        )
        run_sql(
            url,
            f"CREATE TRIGGER audit BEFORE INSERT ON {PG_EVENTS_TABLE} "
            "FOR EACH ROW EXECUTE FUNCTION audit()",
        )
    else:
        run_sql(
            url,
            f"CREATE TRIGGER audit BEFORE INSERT ON {SQLITE_EVENTS_TABLE} "
            "BEGIN INSERT INTO audit_gone VALUES (1); END",
        )
    yield
    on_table = f" ON {PG_EVENTS_TABLE}" if StorageUrl.parse(url).is_postgres else ""
    run_sql(url, f"DROP TRIGGER audit{on_table}")


def test_a_failed_shared_save_fails_every_command_and_writes_none(
    ledger_app: Ledger, backend: str
) -> None:
    commands = [b.submit("FAIL-1"), b.pay("FAIL-1"), b.submit("FAIL-2"), b.submit("FAIL-3")]
    batches = Batches(hold=True)
    with committer(ledger_app, on_batch=batches) as gc:
        logged = log_command_ids(ledger_app)
        with inserts_failing(backend):
            futures = [gc.submit(commands[0], SERVICE)]  # taken alone and held
            batches.wait_held()
            futures += [gc.submit(c, SERVICE) for c in commands[1:]]  # queued together
            batches.release()
            errors = [f.exception(WAIT_S) for f in futures]
        assert batches.sizes == [1, 3]
        for error in errors:
            assert isinstance(error, StorageUnavailable) and error.code == "STORAGE_UNAVAILABLE"
        assert len({id(e) for e in errors}) == len(errors)  # each future its own error
        assert log_command_ids(ledger_app) == logged  # not one event of either batch
        # Nothing was acknowledged or recorded: sent again, each runs afresh.
        again = [gc.submit(c, SERVICE).result(WAIT_S) for c in commands]
    assert not any(r.duplicate for r in again)
    assert all(c["command_id"] in log_command_ids(ledger_app) for c in commands)


def test_an_unforeseen_failure_fails_its_batch_typed_and_the_writer_goes_on(
    ledger_app: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    save = ledger_app.execute_batch

    def broken_once(*args: Any, **kwargs: Any) -> Any:
        monkeypatch.setattr(ledger_app, "execute_batch", save)
        raise RuntimeError("a defect quoting 王小明")

    monkeypatch.setattr(ledger_app, "execute_batch", broken_once)
    command = b.submit("DEFECT-1")
    with committer(ledger_app) as gc:
        error = gc.submit(command, SERVICE).exception(WAIT_S)
        assert isinstance(error, CommandFailed) and error.code == "COMMAND_FAILED"
        assert "RuntimeError" in error.message and "王小明" not in error.message
        assert not gc.submit(command, SERVICE).result(WAIT_S).duplicate


def test_a_failing_batch_hook_does_not_stop_the_writer(ledger_app: Ledger) -> None:
    def failing(size: int) -> None:
        raise ValueError(size)

    with committer(ledger_app, on_batch=failing) as gc:
        results = [gc.submit(b.submit(f"HOOK-{n}"), SERVICE).result(WAIT_S) for n in range(2)]
    assert all(r.command_id in log_command_ids(ledger_app) for r in results)


# -- bounds and shutdown ------------------------------------------------------------------------
def test_a_full_queue_refuses_at_once_as_storage_unavailable(ledger_app: Ledger) -> None:
    with held(ledger_app, max_queue=2) as (gc, _):
        queued = [gc.submit(b.submit(f"Q-{n}"), SERVICE) for n in range(2)]
        over = gc.submit(b.submit("Q-over"), SERVICE)
        error = over.exception(timeout=0)  # at once
        assert isinstance(error, StorageUnavailable)
        assert "LEDGER_GROUP_COMMIT_MAX_QUEUE" in error.message
    assert all(isinstance(outcome(f), CommandResult) for f in queued)


def test_close_saves_what_was_accepted_then_takes_nothing(ledger_app: Ledger) -> None:
    batches = Batches()
    gc = GroupCommitter(ledger_app, on_batch=batches)
    futures = [gc.submit(b.submit(f"CLOSE-{n}"), SERVICE) for n in range(5)]
    batches.wait_held()
    closing = threading.Thread(target=gc.close)
    closing.start()
    batches.release()
    closing.join(WAIT_S)
    assert not closing.is_alive()
    logged = log_command_ids(ledger_app)
    for future in futures:
        result = outcome(future)
        assert isinstance(result, CommandResult) and result.command_id in logged
    late = gc.submit(b.submit("CLOSE-late"), SERVICE)
    assert isinstance(late.exception(timeout=0), StorageUnavailable)


# -- switched off --------------------------------------------------------------------------------
def test_switched_off_each_command_has_its_own_transaction(ledger_app: Ledger) -> None:
    unknown = b.pay("OFF-NONE")
    with held(ledger_app, enabled=False) as (gc, batches):
        futures = [gc.submit(b.submit(f"OFF-{n}"), SERVICE) for n in range(3)]
        refused = gc.submit(unknown, SERVICE)
        in_flight = gc.submit(dict(unknown), SERVICE).exception(timeout=0)
        assert isinstance(in_flight, CommandInProgress)
    assert all(isinstance(outcome(f), CommandResult) for f in futures)
    error = outcome(refused)
    assert isinstance(error, LedgerError) and error.code == "NOT_FOUND"
    assert [type(e) for e in log_events_of(ledger_app, unknown["command_id"])] == [CommandRefused]
    assert batches.sizes == [1, 1, 1, 1, 1]


# -- asyncio -------------------------------------------------------------------------------------
def test_an_event_loop_awaits_commands_without_being_blocked(ledger_app: Ledger) -> None:
    batches = Batches()
    commands = [b.submit(f"LOOP-{n}") for n in range(3)]

    async def client(gc: GroupCommitter) -> list[CommandResult | BaseException]:
        first = asyncio.wrap_future(gc.submit(commands[0], SERVICE))
        await asyncio.to_thread(batches.wait_held)
        # The writer is busy with the first: submits return at once and the loop runs on.
        queued = [asyncio.wrap_future(gc.submit(c, SERVICE)) for c in commands[1:]]
        busy = asyncio.wrap_future(gc.submit(dict(commands[0]), SERVICE))
        await asyncio.sleep(0)
        assert not first.done() and not any(q.done() for q in queued)
        batches.release()
        return await asyncio.gather(first, *queued, busy, return_exceptions=True)

    with committer(ledger_app, on_batch=batches) as gc:
        *saved, busy = asyncio.run(client(gc))
    assert [r.command_id for r in saved if isinstance(r, CommandResult)] == [
        c["command_id"] for c in commands
    ]
    assert isinstance(busy, CommandInProgress)
    assert batches.sizes == [1, 2]


# -- through the HTTP API ------------------------------------------------------------------------
def test_a_retry_over_http_while_the_first_is_saved_is_409_then_gets_the_first_answer(
    api: Api,
) -> None:
    """The API's writer is this committer: a concurrent retry is 409 COMMAND_IN_PROGRESS
    (IETF Idempotency-Key draft), a retry after the answer replays it."""
    batches = Batches()
    writer = api.client.app.state.writer  # type: ignore[attr-defined]
    assert isinstance(writer, GroupCommitter) and writer.enabled
    writer.on_batch = batches
    submit = b.submit("HTTP-1")
    first: list[Any] = []
    sending = threading.Thread(target=lambda: first.append(api.command(submit)))
    sending.start()
    batches.wait_held()  # the first request's command is being saved
    concurrent = api.command(submit)
    assert concurrent.status_code == 409, concurrent.text
    assert concurrent.json()["code"] == "COMMAND_IN_PROGRESS"
    batches.release()
    sending.join(WAIT_S)
    assert first[0].status_code == 200, first[0].text
    again = api.command(submit)
    assert (again.status_code, again.content) == (200, first[0].content)
    assert again.headers["Idempotent-Replayed"] == "true"
