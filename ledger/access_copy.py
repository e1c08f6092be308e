"""A data subject's copy of their personal data and orders (PIPL 45; issue 11 item 9).

``give_access_copy`` is the service ``ledger access SUBJECT --out DIR`` runs and an HTTP
route can call (``access_copy_content`` gives the same content as JSON, without files). It

1. reads, from the event store itself (not the read models, which may lag), every order the
   subject's account submitted and the subject's own streams (its ``DataSubject`` lifecycle
   stream, its account), each as of one log position: the head when the copy began;
2. unseals every sealed field of those events under the subject's key (``[erased]`` once the
   key is destroyed: the sealer says so), and renders them readable (ledger/access_files.py):
   amounts in fen and yuan, times in China time, CSV with Chinese and English headers;
3. records the copy as ``AccessCopyGiven`` on the subject's lifecycle stream (who asked, the
   reference, the files' names, digests and sizes; never a value copied) *before* the copy
   leaves the ledger, as a read of personal data is recorded before it is revealed
   (ledger/contact_reads.py);
4. moves the finished directory into place in one rename (ledger/access_files.py).

A subject whose processing is restricted (PIPL 47 para 2) still gets their copy: the
restriction stops the ledger's own processing, not the subject's right to see what is kept
about them (PIPL 45 para 1, which PIPL 47 does not suspend); the copy states the restriction.
An erased subject's copy shows the records the law keeps (goods, amounts, times) and
``[erased]`` in every personal field.

Who the subject is: whom the key store keys (ledger/keystore.py), today the account holder, so
the subject id is the account number and its orders are those the account submitted.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

import orjson
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError
from tqdm import tqdm

from ledger.access_files import (
    FileEntry,
    check_output_dir,
    file_entries,
    render_files,
    written_atomically,
)
from ledger.access_view import SubjectData, order_view, subject_view
from ledger.application import Ledger
from ledger.domain.context import Actor, Ctx
from ledger.domain.data_subject import DataSubject
from ledger.domain.errors import Conflict, NotFound
from ledger.domain.ids import account_id, data_subject_id
from ledger.domain.order.events import OrderSubmitted
from ledger.driver_errors import storage_errors
from ledger.keystore import validate_subject_id
from ledger.library.bulk_read import events_upto
from ledger.library.positions import version_at

T = TypeVar("T")
SUBMITTED = str(OrderSubmitted.TOPIC)  # type: ignore[attr-defined]  # set by @topic
# Submissions read from the log per query while looking for the subject's orders.
SCAN_PAGE = 2000
# An access copy recorded on a lifecycle stream another writer moved: tried again this often.
MAX_RECORD_TRIES = 5
# More orders than this show a progress bar (on a terminal).
PROGRESS_FROM_ORDERS = 20


def ledger_version() -> str:
    """The installed mall-ledger's version (``unknown`` from an uninstalled source tree)."""
    try:
        return version("mall-ledger")
    except PackageNotFoundError:
        return "unknown"


@dataclass(frozen=True)
class AccessCopy:
    """What a copy holds before it is written: ``subject`` (subject.json), ``orders``
    (orders.json, one readable dict per order) and ``files`` (every file's name and bytes,
    manifest.json last), as of log ``position``, made at ``made_at`` (the ledger's clock)."""

    subject_id: str
    position: int
    made_at: datetime
    subject: dict[str, Any]
    orders: list[dict[str, Any]]
    files: dict[str, bytes]
    manifest: dict[str, Any]

    @property
    def entries(self) -> list[FileEntry]:
        """Name, SHA-256 and size of every file, manifest.json included."""
        return file_entries(self.files)


@dataclass(frozen=True)
class AccessCopyReceipt:
    """What ``give_access_copy`` made: the directory, its files, the counts, the position
    the copy reflects and the log position of its ``AccessCopyGiven`` record."""

    out_dir: Path
    subject_id: str
    position: int
    recorded_at_position: int
    files: list[FileEntry]
    counts: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The ``--json`` summary (no personal value: names, digests, counts, positions)."""
        return {
            "out": str(self.out_dir),
            "subject_id": self.subject_id,
            "position": self.position,
            "recorded_at_position": self.recorded_at_position,
            "counts": self.counts,
            "files": [entry.as_dict() for entry in self.files],
        }


# -- the service ------------------------------------------------------------------------------
def give_access_copy(
    ledger: Ledger,
    subject_id: str,
    out_dir: Path,
    actor: Actor,
    *,
    reference: str | None = None,
    progress: bool = False,
) -> AccessCopyReceipt:
    """Write the subject's copy into the new directory ``out_dir`` and record it (PIPL 45).

    ``out_dir`` must not exist, or be an empty directory, in an existing directory; else
    ``OutputRefused`` (``IO_ERROR``), checked before the ledger is read and again at the
    rename. The files are written into a temporary directory beside it and renamed into place
    once complete and recorded: on any failure or interruption the temporary directory is
    removed and ``out_dir`` is untouched. Raises ``InvalidCommand`` (a malformed subject id),
    ``NotFound`` (a subject the ledger knows nothing of; the message never repeats the id),
    ``RuleViolation`` ``TIME_BEFORE_STREAM`` (a clock behind the subject's stream),
    ``Conflict``, ``StorageUnavailable``.
    """
    check_output_dir(out_dir)
    copy = collect(ledger, subject_id, progress=progress)
    recorded: list[int] = []

    def record() -> None:
        recorded.append(record_access_copy(ledger, copy, actor, reference))

    written_atomically(out_dir, copy.files, before_rename=record)
    return AccessCopyReceipt(
        out_dir=out_dir,
        subject_id=copy.subject_id,
        position=copy.position,
        recorded_at_position=recorded[0],
        files=copy.entries,
        counts=dict(copy.manifest["counts"]),
    )


def access_copy_content(
    ledger: Ledger, subject_id: str, actor: Actor, *, reference: str | None = None
) -> dict[str, Any]:
    """The copy as one JSON object, ``{"subject", "orders", "manifest", "recorded_at_position"}``,
    recorded first like ``give_access_copy`` (for an HTTP route: nothing is written to disk).
    The manifest's digests are those of the files ``give_access_copy`` would write."""
    copy = collect(ledger, subject_id)
    position = record_access_copy(ledger, copy, actor, reference)
    return {
        "subject": copy.subject,
        "orders": copy.orders,
        "manifest": copy.manifest,
        "recorded_at_position": position,
    }


# -- reading the ledger -----------------------------------------------------------------------
def collect(ledger: Ledger, subject_id: str, *, progress: bool = False) -> AccessCopy:
    """Read and render the subject's copy as of the head of the log now (see the module).
    Raises InvalidCommand, NotFound, StorageUnavailable; writes nothing."""
    validate_subject_id(subject_id)
    with storage_errors():
        position = ledger.head_position()
        made_at = ledger.moment(None)
        order_ids = subject_order_ids(ledger, subject_id, position)
        subject_stream = stream_as_of(ledger, data_subject_id(subject_id), position)
        account = stream_as_of(ledger, account_id(subject_id), position)
        erased = ledger.keystore.is_destroyed(subject_id)
        has_key = erased or ledger.keystore.existing_key(subject_id) is not None
        if not (order_ids or subject_stream or account or has_key):
            raise NotFound(
                "no such data subject: the ledger holds no order, key or lifecycle stream "
                "for that subject_id"
            )
        data = SubjectData(subject_id, ledger.sealer, erased)
        streams = events_upto(ledger.app, order_ids, position)
        orders = [
            order_view(streams[stream], data)
            for stream in _with_progress(order_ids, len(order_ids), progress)
        ]
    subject = subject_view(data, subject_stream, account, made_at)
    files, manifest = render_files(
        subject,
        orders,
        subject_id=subject_id,
        position=position,
        made_at=made_at,
        version=ledger_version(),
    )
    return AccessCopy(subject_id, position, made_at, subject, orders, files, manifest)


def subject_order_ids(ledger: Ledger, subject_id: str, position: int) -> list[UUID]:
    """The streams of the orders ``subject_id``'s account submitted up to ``position``, in
    the order they were submitted. Read from the log's submissions (the library's topic
    filter: a scan of the log, paged), each decoded only if its stored state names the
    account at all."""
    recorder = ledger.app.recorder
    needle = orjson.dumps(subject_id)  # as the transcoder writes it: quoted, escaped
    found: list[UUID] = []
    start = 1
    while start <= position:
        page = recorder.select_notifications(start, SCAN_PAGE, stop=position, topics=[SUBMITTED])
        for notification in page:
            if needle not in notification.state:
                continue
            event: Any = ledger.app.mapper.to_domain_event(notification)
            if event.account_no == subject_id:
                found.append(event.originator_id)
        if len(page) < SCAN_PAGE:
            break
        start = page[-1].id + 1
    return found


def stream_as_of(ledger: Ledger, stream: UUID, position: int) -> Any | None:
    """The aggregate ``stream`` folded from its events up to log ``position``; None if it
    had none then."""
    upto = version_at(ledger.app, stream, position)
    if not upto:
        return None
    aggregate: Any = None
    event: Any
    for event in ledger.app.events.get(stream, lte=upto):
        aggregate = event.mutate(aggregate)
    return aggregate


def _with_progress(items: Iterable[T], total: int, progress: bool) -> Iterator[T]:
    """``items``, with a bar on stderr when asked and the subject has many orders."""
    shown = progress and total >= PROGRESS_FROM_ORDERS
    with tqdm(
        items, total=total, desc="access", unit="order", disable=not shown, leave=False
    ) as bar:
        yield from bar


# -- the record -------------------------------------------------------------------------------
def record_access_copy(
    ledger: Ledger, copy: AccessCopy, actor: Actor, reference: str | None
) -> int:
    """Save ``AccessCopyGiven`` on the subject's lifecycle stream (made if it has none);
    the log position of the record. A stream another writer moved meanwhile is read again
    (``Conflict`` after ``MAX_RECORD_TRIES``)."""
    files = [entry.as_dict() for entry in copy.entries]
    with storage_errors():
        for _ in range(MAX_RECORD_TRIES):
            ctx = Ctx(f"access-copy-{secrets.token_hex(8)}", ledger.moment(None), actor)
            subject = _lifecycle_stream(ledger, copy.subject_id, ctx)
            subject.give_access_copy(ctx, reference, copy.position, files)
            try:
                recordings = ledger.app.save(subject)
            except IntegrityError:
                continue
            return max(r.notification.id for r in recordings)
    raise Conflict("the data subject's stream kept changing under other writers; retry")


def _lifecycle_stream(ledger: Ledger, subject_id: str, ctx: Ctx) -> DataSubject:
    try:
        found: DataSubject = ledger.app.repository.get(data_subject_id(subject_id))
    except AggregateNotFoundError:
        return DataSubject.register(ctx, subject_id)
    return found
