"""The ledger application: commands in, events out, one transaction per command.

``Ledger`` is the service layer every entry point uses (CLI, importer, demo). It parses a
command, checks idempotency, runs the handler, records the command and writes all of the
command's events in one transaction; library and driver errors are translated here
(``CONFLICT``, ``STORAGE_UNAVAILABLE``).
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import IntegrityError, Recording, Transcoder

from ledger import payload_digest as digests
from ledger.clock import Clock, SystemClock, check_command_time
from ledger.commands import (
    Command,
    DefinePromotion,
    OrderCommand,
    RestoreEntitlement,
    parse_command,
)
from ledger.domain.command_record import REMEMBERED_REFUSALS, CommandRecord
from ledger.domain.context import LOCAL_ACTOR, Actor, Ctx
from ledger.domain.entitlement import Entitlement
from ledger.domain.errors import (
    CommandFailed,
    Conflict,
    InvalidCommand,
    LedgerError,
    NotFound,
    PreconditionFailed,
)
from ledger.domain.ids import command_record_id, entitlement_id, order_id
from ledger.domain.journal import journal
from ledger.domain.order.aggregate import Order
from ledger.domain.policy import Policy
from ledger.domain.promotion import promotion_subject
from ledger.domain.repeats import RepeatedFact
from ledger.driver_errors import DRIVER_ERRORS, storage_errors
from ledger.erasure import settle
from ledger.handlers import dispatch, streams_read_by, subject_stream
from ledger.key_wrapping import NoMasterKey
from ledger.keystore import KeyStore, open_keystore
from ledger.library.bulk_read import load_streams
from ledger.library.positions import position_of, version_at
from ledger.library.read_check import READ_VERSIONS, StaleRead
from ledger.library.settings import library_env
from ledger.library.transcoder import OrjsonTranscoder
from ledger.open_orders import open_orders_by_subject
from ledger.sealing import Sealer
from ledger.storage import APPLICATION_NAME, opening
from ledger.storage_url import StorageUrl
from ledger.stream_cache import StreamCache
from ledger.unit_of_work import UnitOfWork

# One import transaction holds at most this many commands (memory and lock time are bounded).
MAX_BATCH_COMMANDS = 5000
# A single command decided again because a stream it only read changed before its save;
# past this many, other writers keep winning and the caller gets CONFLICT.
MAX_RERUNS_ON_STALE_READ = 3

log = logging.getLogger("ledger.application")


class LedgerApplication(Application[UUID]):
    name = APPLICATION_NAME

    def construct_transcoder(self) -> Transcoder:
        return OrjsonTranscoder()


@dataclass(frozen=True)
class CommandResult:
    command_id: str
    command_type: str
    position: int | None
    events: list[str]
    result: dict[str, Any] = field(default_factory=dict)
    duplicate: bool = False
    # The version of the stream the command is about (``subject_stream``) after it; None for
    # a record written before versions were recorded.
    version: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "command_id": self.command_id,
            "type": self.command_type,
            "position": self.position,
            "version": self.version,
            "events": self.events,
            "result": self.result,
            "duplicate": self.duplicate,
        }


@dataclass(frozen=True)
class Staged:
    """A command run into a unit of work, not yet saved, with its events in trigger order."""

    command: Command
    record: CommandRecord
    events: list[Any]
    # A refusal that is an outcome: only the command's record is saved, then this is raised.
    refusal: LedgerError | None = None

    def outcome(self, positions: dict[int, int]) -> CommandResult | LedgerError:
        """After the save: the result, or the refusal whose record was saved."""
        if self.refusal is None:
            return self.result(positions)
        self.refusal.recorded = self.refusal.remembered = True
        return self.refusal

    def result(self, positions: dict[int, int], duplicate: bool = False) -> CommandResult:
        """The position is the last of the command's events in the log (read-your-writes)."""
        written = [positions[id(event)] for event in self.events if id(event) in positions]
        assert self.record.outcome is not None, "a refused command has no result"
        return CommandResult(
            command_id=self.command.command_id,
            command_type=self.record.command_type,
            position=max(written) if written else None,
            events=list(self.record.outcome["events"]),
            result=dict(self.record.outcome["result"]),
            duplicate=duplicate,
            version=self.record.outcome.get("version"),
        )


@dataclass(frozen=True)
class Senders:
    """Per command of a batch: who sent it and the version its subject stream must have."""

    actors: list[Actor]
    versions: list[int | None]

    @classmethod
    def of(
        cls, count: int, actors: list[Actor] | None, versions: list[int | None] | None
    ) -> Senders:
        senders = cls(actors or [LOCAL_ACTOR] * count, versions or [None] * count)
        assert len(senders.actors) == len(senders.versions) == count, "one per command"
        return senders


def check_version(command: Command, current: int, expected: int) -> None:
    """``If-Match`` (RFC 9110 section 13.1.1): the subject stream must still be at
    ``expected``; raises ``PreconditionFailed`` naming both versions, never the stream's data."""
    if current != expected:
        raise PreconditionFailed(
            f"{command.type} {command.command_id}: the stream is at version {current}, "
            f"not {expected}; read it again"
        )


class Ledger:
    def __init__(
        self,
        app: LedgerApplication,
        keystore: KeyStore,
        clock: Clock,
        policy: Policy,
    ) -> None:
        self.app = app
        self.keystore = keystore
        self.sealer = Sealer(keystore)
        self.clock = clock
        self.policy = policy
        self.stream_cache = StreamCache()

    # -- commands -------------------------------------------------------------------------
    def execute(
        self,
        data: Any,
        at: datetime | None = None,
        *,
        actor: Actor = LOCAL_ACTOR,
        remember_refusals: bool = False,
        expected_version: int | None = None,
    ) -> CommandResult:
        """Run one command; a refusal raises and writes nothing (with ``remember_refusals``,
        only its record: see ``execute_batch``). ``at`` replaces the clock for commands that
        carry their own time (an import of history); ``actor`` is who sent it, recorded on
        the command's record; ``expected_version``, the version its subject stream must
        still have (``PreconditionFailed`` otherwise: an HTTP ``If-Match``)."""
        with storage_errors():
            return self._execute(data, at, remember_refusals, actor, expected_version)

    def _execute(
        self,
        data: Any,
        at: datetime | None,
        remember: bool = False,
        actor: Actor = LOCAL_ACTOR,
        expected_version: int | None = None,
    ) -> CommandResult:
        """A stream the command only read (its account, a promotion, a limit rule) changed
        before the save: the command is decided again on fresh reads, as if it had come
        after that change. A stream it writes changed: another command did what this one
        meant to, so it is refused ``CONFLICT`` (or given that command's outcome if it was
        this same command). With ``remember``, a refusal is recorded under the command id
        and then raised (imports: a re-run gets the same refusal)."""
        command = parse(data)
        for _ in range(MAX_RERUNS_ON_STALE_READ + 1):
            uow = self.unit_of_work()
            staged = self.stage(uow, command, at, remember, actor, expected_version)
            if isinstance(staged, CommandResult):
                return self.settled(self.positioned(staged))
            try:
                recordings = self.save(uow, staged.events)
            except StaleRead:
                continue
            except IntegrityError:
                return self.settled(self.positioned(self.after_conflict(command, at)))
            for event in staged.events:
                self.stream_cache.take(event.originator_id)  # that copy is now behind
            if staged.refusal is not None:
                staged.refusal.recorded = staged.refusal.remembered = True
                raise staged.refusal
            return self.settled(staged.result(self.positions(recordings)))
        raise Conflict(
            f"{command.type} {command.command_id}: what it read kept changing under other "
            "writers; nothing was written, retry"
        )

    def save(self, uow: UnitOfWork, events: list[Any]) -> list[Recording[UUID]]:
        """One transaction: the events, provided no stream the unit of work read and did not
        write has moved since it was read (StaleRead; ledger/library/read_check.py)."""
        reads = uow.reads_not_written(events)
        return self.app.events.put(events, **{READ_VERSIONS: reads})

    def execute_batch(
        self,
        items: list[tuple[Any, datetime | None]],
        *,
        remember_refusals: bool = False,
        actors: list[Actor] | None = None,
        expected_versions: list[int | None] | None = None,
    ) -> list[CommandResult | LedgerError]:
        """Many commands, one transaction: each refused command is left out, the rest are
        saved together. If the batch cannot be saved whole (a concurrent writer, or a
        command that failed half-way), every command is run again on its own.

        ``remember_refusals`` (an import of history): a command refused by a rule is
        recorded under its command id, so that sending it again is refused the same way
        (``ledger.domain.command_record``); otherwise a refusal writes nothing.

        ``actors``: who sent each command (one per item, recorded on its record); all
        ``local`` when not given. ``expected_versions``: each command's ``If-Match`` (None:
        any version)."""
        with storage_errors():
            return self._execute_batch(
                items, remember_refusals, Senders.of(len(items), actors, expected_versions)
            )

    def _execute_batch(
        self, items: list[tuple[Any, datetime | None]], remember: bool, senders: Senders
    ) -> list[CommandResult | LedgerError]:
        if len(items) > MAX_BATCH_COMMANDS:
            raise InvalidCommand("batch", f"at most {MAX_BATCH_COMMANDS} commands per batch")
        parsed = [self.parse_or_error(data) for data, _ in items]
        commands = [p for p in parsed if isinstance(p, Command)]
        uow = self.unit_of_work(self.stream_cache)
        wanted = {i for cmd in commands for i in streams_read_by(cmd)}
        uow.prefetch(load_streams(self.app, uow.take_cached(wanted)))
        staged: list[Staged | CommandResult | LedgerError] = []
        for i, (command, (_, at)) in enumerate(zip(parsed, items, strict=True)):
            if isinstance(command, LedgerError):
                staged.append(command)
                continue
            try:
                staged.append(
                    self.stage(uow, command, at, remember, senders.actors[i], senders.versions[i])
                )
            except LedgerError as refusal:
                staged.append(refusal)
            if uow.dirty:
                return self.one_by_one(items, remember, senders)
        # Events go to the log command by command, so a position inside the batch never
        # shows half a command; the transaction is still one.
        events = [event for s in staged if isinstance(s, Staged) for event in s.events]
        try:
            recordings = self.save(uow, events)
        except IntegrityError:
            return self.one_by_one(items, remember, senders)
        self.stream_cache.keep(uow.aggregates())
        positions = self.positions(recordings)
        results = [s.outcome(positions) if isinstance(s, Staged) else s for s in staged]
        if any(isinstance(r, CommandResult) and r.position is None for r in results):
            results = [self.positioned(r) if isinstance(r, CommandResult) else r for r in results]
        return [settle(self.keystore, r) if isinstance(r, CommandResult) else r for r in results]

    def settled(self, result: CommandResult) -> CommandResult:
        """A saved command's result after its effects outside the log (an erasure's keys
        destroyed); raises the refusal a result names (an erasure refused or deferred:
        ledger/erasure.py), whose events are nonetheless saved."""
        found = settle(self.keystore, result)
        if isinstance(found, LedgerError):
            raise found
        return found

    def positioned(self, result: CommandResult) -> CommandResult:
        """A repeated command wrote nothing now: its position is the one its first send was
        given, the position of its record (the last event of its transaction), so a retry
        answers as the first send did (IETF Idempotency-Key draft). The head of the log, at
        or after it, if the record is not there (it always is once seen)."""
        if result.position is not None:
            return result
        first = position_of(self.app, command_record_id(result.command_id), 1)
        return replace(result, position=first if first is not None else self.head_position())

    def one_by_one(
        self, items: list[tuple[Any, datetime | None]], remember: bool, senders: Senders
    ) -> list[CommandResult | LedgerError]:
        """A batch that cannot be saved whole: each command on its own, from fresh reads."""
        self.stream_cache.clear()
        return [
            self.execute_or_error(data, at, remember, actor, version)
            for (data, at), actor, version in zip(
                items, senders.actors, senders.versions, strict=True
            )
        ]

    @staticmethod
    def parse_or_error(data: Any) -> Command | LedgerError:
        try:
            return parse(data)
        except LedgerError as refusal:
            return refusal

    def execute_or_error(
        self,
        data: Any,
        at: datetime | None,
        remember: bool,
        actor: Actor,
        expected_version: int | None = None,
    ) -> CommandResult | LedgerError:
        try:
            with storage_errors():
                return self._execute(data, at, remember, actor, expected_version)
        except LedgerError as refusal:
            return refusal

    def stage(
        self,
        uow: UnitOfWork,
        command: Command,
        at: datetime | None,
        remember: bool = False,
        actor: Actor = LOCAL_ACTOR,
        expected_version: int | None = None,
    ) -> CommandResult | Staged:
        """Run the handler into the unit of work and add the command's record; or return
        the earlier outcome of the same command. Any failure of the handler raises as a
        typed error; with ``remember``, one that is an outcome (``REMEMBERED_REFUSALS``) is
        staged instead, as the command's record alone, to be saved and then raised."""
        uow.begin(Ctx(command.command_id, self.moment(at), actor))
        earlier = self.earlier_outcome(uow, command)
        if earlier is not None:
            return earlier
        subject = subject_stream(command)
        if expected_version is not None:
            check_version(command, uow.version(subject), expected_version)
        with journal() as triggered:
            try:
                dispatch(command, uow)
            except RepeatedFact as repeat:
                return self.first_outcome(uow, command, repeat.first_command_id)
            except Exception as exc:  # noqa: BLE001 - one command's failure, typed
                uow.dirty = bool(uow.kept(triggered))
                error = unexpected_as_typed(exc, command.type, command.command_id)
                if not (remember and isinstance(error, REMEMBERED_REFUSALS)):
                    raise error from None
                digest = self.payload_digest(command, uow)
                refused = CommandRecord.refuse(uow.now, command.type, digest, error)
                uow.add(refused)
                return Staged(command, refused, list(refused.pending_events), error)
        written = uow.kept(triggered)
        topics = [type(e).TOPIC.removeprefix("mall-ledger/") for e in written]
        outcome = {"events": topics, "result": dict(uow.result), "version": uow.version(subject)}
        # After the handler: a submission's sealing has made the subject's key by now.
        digest = self.payload_digest(command, uow)
        record = CommandRecord.record(uow.now, command.type, digest, outcome)
        uow.add(record)
        return Staged(command, record, [*written, *record.pending_events])

    def moment(self, at: datetime | None) -> datetime:
        """The command's time in UTC, as events store it: its own (within the range
        ``check_command_time`` allows), or the clock's."""
        now = self.clock.now()
        return now.astimezone(UTC) if at is None else check_command_time(at, now)

    @staticmethod
    def positions(recordings: list[Recording[UUID]]) -> dict[int, int]:
        """Log position of each saved event object, by the object's identity."""
        return {id(r.domain_event): r.notification.id for r in recordings}

    def unit_of_work(self, cache: StreamCache | None = None) -> UnitOfWork:
        return UnitOfWork(
            self.app.repository, self.sealer, self.policy, cache, open_orders=self.open_orders_of
        )

    def open_orders_of(self, subject_id: str) -> set[str]:
        """The subject's orders submitted and not completed, from the log (one pass over the
        ledger's submissions and completions: ledger/open_orders.py)."""
        return open_orders_by_subject(self.app).get(subject_id, set())

    def payload_digest(self, command: Command, uow: UnitOfWork) -> str:
        """The command record's digest (ledger/payload_digest.py): personal fields keyed
        under the data subject's key, so erasing the subject leaves nothing to test a guess
        against."""
        subject = digest_subject(command, uow) if about_a_subject(command) else None
        direct = None
        if subject is not None and digests.personal_fields(command, digests.DIRECT_KIND):
            current = self.keystore.current_direct(subject, create=False)
            if current is not None:
                direct = (current[0], digests.subject_digest_key(current[1]))
        return digests.payload_digest(command, self.digest_key(command, uow), direct)

    def direct_digest_key(self, command: Command, uow: UnitOfWork) -> Callable[[str], bytes | None]:
        """The digest key of a direct-identifier generation of the command's subject, by kind
        (``d``, ``d2``, …): None once that generation is destroyed (de-identified, erased)."""
        subject = digest_subject(command, uow) if about_a_subject(command) else None

        def key_of(kind: str) -> bytes | None:
            found = None if subject is None else self.keystore.existing_key(subject, kind)
            return None if found is None else digests.subject_digest_key(found)

        return key_of

    def digest_key(self, command: Command, uow: UnitOfWork) -> bytes | None:
        """The key a command's personal fields are digested under: derived from its data
        subject's main key (None if it has none yet or was erased), or from the application
        secret for a command that names no subject. Never creates a key."""
        if not about_a_subject(command):
            return digests.application_digest_key(self.keystore.linkage_key())
        subject = digest_subject(command, uow)
        main = None if subject is None else self.keystore.existing_key(subject)
        return None if main is None else digests.subject_digest_key(main)

    def earlier_outcome(self, uow: UnitOfWork, command: Command) -> CommandResult | None:
        record = uow.get(CommandRecord, command_record_id(command.command_id))
        if record is None:
            return None
        key = self.digest_key(command, uow)
        legacy = None if record.payload_digest.startswith("v") else self.keystore.linkage_key()
        record.check_same_payload(
            command.command_id,
            digests.same_payload(
                record.payload_digest, command, key, legacy, self.direct_digest_key(command, uow)
            ),
        )
        refused = record.refused_again(command.command_id)
        if refused is not None:
            raise refused
        return Staged(command, record, []).result({}, duplicate=True)

    @staticmethod
    def first_outcome(uow: UnitOfWork, command: Command, first_command_id: str) -> CommandResult:
        """A fact stated again under its external id (a payment id, say) by another
        command: the outcome of the command that first stated it; nothing is written."""
        record = uow.get(CommandRecord, command_record_id(first_command_id))
        assert record is not None, f"{first_command_id} wrote a fact but no command record"
        return Staged(command, record, []).result({}, duplicate=True)

    def after_conflict(self, command: Command, at: datetime | None) -> CommandResult:
        """Lost a race: if the winner was this same command, return its outcome."""
        uow = self.unit_of_work()
        uow.begin(Ctx(command.command_id, self.moment(at)))
        earlier = self.earlier_outcome(uow, command)
        if earlier is not None:
            return earlier
        raise Conflict(
            f"{command.type} {command.command_id}: another command changed the same records "
            "first; nothing was written, read again and retry"
        ) from None

    # -- queries ----------------------------------------------------------------------------
    def order(self, order_no: str) -> Order:
        uow = self.unit_of_work()
        found = uow.get(Order, order_id(order_no))
        if found is None:
            raise NotFound(f"no order {order_no}")
        return found

    def reveal(self, token: str, field_name: str, stream: str) -> str:
        """Plaintext of a sealed field of ``stream`` (an order number) for a role allowed to
        see it, or the erased marker; SealInvalid if the token belongs elsewhere."""
        return self.sealer.unseal(token, field_name, stream=stream)

    def contact(self, order_no: str) -> dict[str, str]:
        """An order's contact details in plaintext; ``[erased]`` once the subject's key is gone."""
        sealed = self.order(order_no).contact
        return {name: self.reveal(token, name, order_no) for name, token in sealed.items()}

    def stream_version(self, stream_id: UUID, position: int) -> int | None:
        """The version stream ``stream_id`` had at log ``position`` (a read model's answer's
        position): the ``ETag`` of what that answer shows. None if it had no event then."""
        with storage_errors():
            return version_at(self.app, stream_id, position)

    def head_position(self) -> int:
        return self.app.recorder.max_notification_id() or 0

    def close(self) -> None:
        self.app.close()
        self.keystore.close()


def about_a_subject(command: Command) -> bool:
    """Whether a command's personal fields belong to a data subject: it names an account or
    an order (whose account is the subject), restores a coupon (the account whose order used
    it) or defines a promotion (the promotion's own text key, ``promotion_subject``)."""
    return isinstance(command, (OrderCommand, RestoreEntitlement, DefinePromotion)) or isinstance(
        getattr(command, "account_no", None), str
    )


def digest_subject(command: Command, uow: UnitOfWork) -> str | None:
    """The data subject whose key digests a command's personal fields (``about_a_subject``);
    None for an order or a coupon's user not (yet) in the ledger."""
    account_no = getattr(command, "account_no", None)
    if isinstance(account_no, str):
        return account_no
    if isinstance(command, OrderCommand):
        order = uow.get(Order, order_id(command.order_no))
        return None if order is None else order.account_no
    if isinstance(command, RestoreEntitlement):
        coupon = uow.get(Entitlement, entitlement_id(command.code))
        return None if coupon is None else coupon.consumer_account
    if isinstance(command, DefinePromotion):
        return promotion_subject(command.promotion_no)
    return None


def parse(data: Any) -> Command:
    """``parse_command``, with an unforeseen failure typed like any other refusal."""
    try:
        return parse_command(data)
    except Exception as exc:  # noqa: BLE001 - typed as the command's failure
        # The input's "type" is not named: it is not known to be one of ours.
        raise unexpected_as_typed(exc, "command", "") from None


def unexpected_as_typed(exc: Exception, command_type: str, command_id: str) -> Exception:
    """The error one command's failure is reported as: a ``LedgerError`` or a storage
    failure as it is (the caller translates the latter); anything else as ``CommandFailed``,
    whose traceback goes to the debug log as frames and exception type only (the exception's
    text may quote the input, which may be personal data)."""
    if isinstance(exc, (LedgerError, *DRIVER_ERRORS)):
        return exc
    frames = "".join(traceback.format_list(traceback.extract_tb(exc.__traceback__)))
    name = f"{command_type} {command_id}".strip()
    log.debug("%s failed with %s at\n%s", name, type(exc).__name__, frames)
    return CommandFailed(
        f"{name} failed unexpectedly ({type(exc).__name__}); nothing of it was written"
    )


def open_ledger(
    url: StorageUrl | str | None,
    *,
    create: bool = True,
    clock: Clock | None = None,
    policy: Policy | None = None,
    keys: bool = True,
) -> Ledger:
    """Open the ledger on ``url`` (None: the default SQLite file; a string is parsed as
    ``LEDGER_DATABASE_URL``). With ``create`` a missing SQLite file is made; without it,
    a missing database is ``STORAGE_UNAVAILABLE`` and nothing is created (ledger/storage.py).
    Without ``keys`` the master key file is not read (work that touches no personal data:
    sealing, API keys); a key asked for is then MasterKeyError.
    Raises InvalidCommand for a malformed URL, MasterKeyError (with ``keys``)."""
    where = StorageUrl.of(url)
    with opening(where, create=create):
        app = LedgerApplication(env=library_env(where))
        try:
            keystore = open_keystore(where, None if keys else NoMasterKey())
        except LedgerError:
            app.close()
            raise
    return Ledger(app, keystore, clock or SystemClock(), policy or Policy())
