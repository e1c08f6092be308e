"""Regulators' export requests as a service (ECL 25; issue 12 item 7; the API issue's
``regulator`` role: "only its own export requests and their files").

What the HTTP API (api/exports.py) and the console call; ``ledger export`` writes a bag to a
directory of its caller's choosing with replay/export.py directly.

- ``file_request``: record a request under an idempotency key. Its id is derived from the
  filing key's id and that key (``request_id_for``), so a retry finds the request it made and
  writes nothing, the same key with other fields is ``CommandIdReused``, and two keys never
  share an id. The ``export/Requested`` event names the API key that filed it.
- ``visible_request``, ``list_requests``: a request as its viewer may see it. A regulator
  sees only the requests its own key filed; another's is ``NotFound``, worded as for an id
  that does not exist (never revealing that it does). Other roles see every request.
- ``produce_bag``: write the request's bag (replay/export.py: the latest checkpoint, recorded
  as ``export/Written``) into the export store, ``<store>/<request id>/<bag id>``, the bag id
  being the SHA-256 of its signed manifest (what the record holds). The same idempotency key
  again answers the bag it made. A crash between the record and the rename leaves a record
  without files: its download is ``NotFound``, and producing again makes a new bag.
- ``bag_path`` and ``tar_stream``: a produced bag, read back as a POSIX tar stream (ustar/pax,
  ``application/x-tar``) in chunks, memory flat whatever the bag's size.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import shutil
import tarfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from eventsourcing.persistence import IntegrityError
from pydantic import BaseModel, ConfigDict, Field, Strict, computed_field

from ledger.application import Ledger
from ledger.commands import AccountNo, Chars, Flag, Key, Model, Moment, Region
from ledger.domain.context import Actor
from ledger.domain.errors import CommandIdReused, Conflict, NotFound
from ledger.domain.export_request import (
    MAX_TEXT_CHARS,
    REQUEST_ID_RE,
    ExportRequested,
    ExportScope,
    ExportWritten,
    export_stream,
)
from ledger.files import private_directory
from projections.base import topic_of
from projections.engine import Runtime
from replay.export import decoded, request_export, write_export
from replay.signed_note import Signer

REGULATOR_ROLE = "regulator"  # sees only what its own key filed
BAG_ID_RE = re.compile(r"[0-9a-f]{64}")
TAR_CHUNK_BYTES = 1 << 20
TAR_BLOCK_BYTES = 512
NO_SUCH_REQUEST = "no such export request"
REQUESTED = topic_of(ExportRequested)
# One line of free text in any script (an authority's name, a legal basis).
AuthorityText = Annotated[str, Strict(), Field(min_length=1, max_length=MAX_TEXT_CHARS), Chars()]


class ExportRequestFields(Model):
    """What a regulator files: who asks, under which file reference and legal basis, for
    which orders (any combination of the filters; submitted in ``[since, until)``), and
    whether that basis requires personal data in clear (else pseudonyms keyed per export).
    The fields of ``ledger export request``."""

    authority: AuthorityText
    reference: Key
    basis: AuthorityText
    since: Moment | None = None
    until: Moment | None = None
    # Each filter as the commands take the field it matches (an account number: never a
    # phone number or email, since the request keeps it in clear).
    seller: Key | None = None
    account: AccountNo | None = None
    sku: Key | None = None
    region: Region | None = None
    personal_data: Flag = False

    def scope(self) -> ExportScope:
        return ExportScope(self.since, self.until, self.seller, self.account, self.sku,
                           self.region)  # fmt: skip


class BagInfo(BaseModel):
    """A bag produced for a request: its id (the SHA-256 of its signed manifest, hex, as the
    ``export/Written`` record holds it), the checkpoint it was taken from, its record counts
    per file, when and by which key (``key_id``, ``role``), and where to download it."""

    model_config = ConfigDict(frozen=True)

    request_id: str = Field(exclude=True)
    command_id: str = Field(exclude=True)  # the record's: it holds the idempotency key
    bag_id: str
    checkpoint_size: int
    counts: dict[str, int]
    produced_at: datetime
    produced_by: dict[str, str | None]

    @computed_field  # type: ignore[prop-decorator]  # pydantic's documented use
    @property
    def download(self) -> str:
        return f"/v1/exports/{self.request_id}/bags/{self.bag_id}"


class RequestView(BaseModel):
    """A request as filed (``filed_by``: the API key that filed it), its ``status``
    (``requested`` until the first bag, then ``produced``) and its bags, oldest first."""

    model_config = ConfigDict(frozen=True)

    request_id: str
    authority: str
    reference: str
    basis: str
    scope: dict[str, Any]
    personal_data: bool
    filed_at: datetime
    filed_by: dict[str, str | None]
    bags: list[BagInfo]

    @computed_field  # type: ignore[prop-decorator]  # pydantic's documented use
    @property
    def status(self) -> str:
        return "produced" if self.bags else "requested"

    def fields(self) -> dict[str, Any]:
        """What identifies the filing: compared when its idempotency key comes again."""
        return self.model_dump(include={"authority", "reference", "basis", "scope",
                                        "personal_data"})  # fmt: skip


def request_id_for(actor: Actor, idempotency_key: str) -> str:
    """The id of the request ``actor``'s key files under ``idempotency_key``: ``exp-`` and
    12 hex digits of a SHA-256 over both (a retry finds it; another key never does)."""
    text = f"mall-ledger/export-request/v1\n{actor.key_id}\n{idempotency_key}"
    return "exp-" + hashlib.sha256(text.encode()).hexdigest()[:12]


def file_request(
    ledger: Ledger, actor: Actor, fields: ExportRequestFields, idempotency_key: str
) -> tuple[RequestView, bool]:
    """File the request; ``(its view, whether it was filed before under this key)``.

    Raises ``CommandIdReused`` for the key used before with other fields, ``InvalidCommand``
    naming ``scope.until`` for a period that ends before it starts."""
    request_id = request_id_for(actor, idempotency_key)
    wanted = {**fields.model_dump(include={"authority", "reference", "basis", "personal_data"}),
              "scope": fields.scope().as_dict()}  # fmt: skip
    found = _view(ledger, request_id)
    if found is None:
        try:
            request_export(ledger, actor, fields.authority, fields.reference, fields.basis,
                           fields.scope(), fields.personal_data, request_id)  # fmt: skip
        except IntegrityError:  # a retry that ran at the same time saved it first
            pass
        else:
            return _loaded(ledger, request_id), False
        found = _loaded(ledger, request_id)
    if found.fields() != wanted:
        raise CommandIdReused("the Idempotency-Key was used for another export request")
    return found, True


def visible_request(ledger: Ledger, request_id: str, viewer: Actor) -> RequestView:
    """The request as ``viewer`` may see it; ``NotFound`` if it does not exist or is
    another regulator's (the same words: its existence is not revealed)."""
    found = _view(ledger, request_id) if REQUEST_ID_RE.fullmatch(request_id) else None
    if found is None or not _visible(found, viewer):
        raise NotFound(NO_SUCH_REQUEST)
    return found


def list_requests(
    ledger: Ledger, rt: Runtime, viewer: Actor, after_position: int, limit: int
) -> tuple[list[RequestView], int | None]:
    """The requests ``viewer`` may see filed after log position ``after_position``, oldest
    first, at most ``limit``; and the position to go on after (None on the last page). Reads
    the log's ``export/Requested`` rows (the events table by topic), then each listed request's
    stream."""
    with rt.db.snapshot() as cur:
        head = rt.db.head(cur)
        rows = rt.db.fetch_topics(cur, after_position, head, [REQUESTED])
    page: list[tuple[int, RequestView]] = []
    for row in rows:
        filed = decoded(ledger, row)
        if filed.actor.get("key_id") != viewer.key_id and viewer.role == REGULATOR_ROLE:
            continue
        if len(page) == limit:
            return [view for _, view in page], page[-1][0]
        page.append((row.position, _loaded(ledger, filed.request_id)))
    return [view for _, view in page], None


def produce_bag(
    ledger: Ledger,
    rt: Runtime,
    producer: Actor,
    request_id: str,
    signer: Signer,
    store: Path,
    idempotency_key: str,
) -> tuple[BagInfo, bool]:
    """Write the request's bag into ``store`` (see the module docstring); ``(the bag, whether
    this idempotency key had made it before)``. Raises ``NotFound`` for a request the
    producer may not see or a log never sealed, ``Conflict`` if another bag of the request
    was recorded meanwhile (nothing of this one is left), ``OSError``."""
    request = visible_request(ledger, request_id, producer)
    command_id = f"export-{request_id}-{idempotency_key}"
    for bag in request.bags:
        if bag.command_id == command_id:
            return bag, True
    home = store / request_id
    private_directory(home)
    out = home / f"new-{secrets.token_hex(8)}"  # a retry running at once builds its own
    try:
        report = write_export(ledger, rt, request_id, out, signer, producer, command_id=command_id)
    except IntegrityError:  # another bag was recorded first; this one's files are removed
        raise Conflict("another bag of this export request was recorded at the same time; "
                       "retry") from None  # fmt: skip
    final = home / report.manifest_sha256
    if final.exists():  # the same bag made before (the same checkpoint, data in clear)
        shutil.rmtree(out)
    else:
        out.rename(final)
    made = [b for b in _loaded(ledger, request_id).bags if b.command_id == command_id]
    return made[-1], False


def bag_path(ledger: Ledger, store: Path, request_id: str, bag_id: str, viewer: Actor) -> Path:
    """The directory of a produced bag; ``NotFound`` if the request is not the viewer's to
    see, the bag is not one of its records, or its files are gone."""
    request = visible_request(ledger, request_id, viewer)
    if not BAG_ID_RE.fullmatch(bag_id) or bag_id not in {b.bag_id for b in request.bags}:
        raise NotFound("no such bag of this export request")
    path = store / request_id / bag_id
    if not (path / "bagit.txt").is_file():
        raise NotFound("the bag's files are gone from the export store: produce it again")
    return path


def tar_stream(directory: Path, name: str) -> Iterator[bytes]:
    """The files under ``directory`` as a POSIX tar archive (pax headers), every entry
    under ``name/``, in chunks of at most 1 MiB: each header, then the file's bytes as read,
    so memory stays flat. Regular files and directories only, in sorted order."""
    for path in [directory, *sorted(directory.rglob("*"))]:
        relative = path.relative_to(directory)
        info = tarfile.TarInfo(name if not relative.parts else f"{name}/{relative.as_posix()}")
        stat = path.lstat()
        info.mtime, info.mode = int(stat.st_mtime), 0o755 if path.is_dir() else 0o644
        if path.is_dir():
            info.type = tarfile.DIRTYPE
            yield info.tobuf(tarfile.PAX_FORMAT)
            continue
        if not path.is_file():
            continue
        info.size = stat.st_size
        yield info.tobuf(tarfile.PAX_FORMAT)
        with path.open("rb") as source:
            while chunk := source.read(TAR_CHUNK_BYTES):
                yield chunk
        if info.size % TAR_BLOCK_BYTES:
            yield bytes(TAR_BLOCK_BYTES - info.size % TAR_BLOCK_BYTES)
    yield bytes(2 * TAR_BLOCK_BYTES)  # the end of the archive (POSIX: two zero blocks)


def _visible(view: RequestView, viewer: Actor) -> bool:
    return viewer.role != REGULATOR_ROLE or view.filed_by.get("key_id") == viewer.key_id


def _view(ledger: Ledger, request_id: str) -> RequestView | None:
    events = list(ledger.app.events.get(export_stream(request_id)))
    if not events or not isinstance(events[0], ExportRequested):
        return None
    filed = events[0]
    bags = [
        BagInfo(
            request_id=request_id,
            command_id=e.command_id,
            bag_id=e.manifest_sha256,
            checkpoint_size=e.checkpoint_size,
            counts=dict(e.counts),
            produced_at=e.timestamp,
            produced_by=dict(e.actor),
        )  # fmt: skip
        for e in events[1:]
        if isinstance(e, ExportWritten)
    ]
    return RequestView(request_id=filed.request_id, authority=filed.authority,
                       reference=filed.reference, basis=filed.basis, scope=dict(filed.scope),
                       personal_data=filed.personal_data, filed_at=filed.timestamp,
                       filed_by=dict(filed.actor), bags=bags)  # fmt: skip


def _loaded(ledger: Ledger, request_id: str) -> RequestView:
    found = _view(ledger, request_id)
    if found is None:
        raise NotFound(NO_SUCH_REQUEST)
    return found
