"""Regulator exports (ECL 25; issue 12, item 7): a request recorded as an event, then the
records in its scope written as a BagIt bag (RFC 8493) that verifies offline.

One pass over the log, up to the latest checkpoint, in position order: an order is in scope
when its submission matches every filter of the request (``ExportScope``); from then on each
of its events goes out three ways:

- ``data/events.jsonl``: the stored row (position, leaf index, stream, version, topic, the
  stored state in base64) with its RFC 9162 inclusion proof against the checkpoint;
- ``data/payments``, ``logistics``, ``returns`` (returns and after-sales) ``.jsonl``/``.csv``:
  one record per event of that kind, its facts and its position;
- ``data/orders.jsonl``/``.csv``: one record per order (what it was as of the checkpoint), with
  the positions of all its events.

Personal fields (sealed tokens, linkage digests) are opened only when the request's basis
requires personal data; otherwise each becomes a pseudonym, an HMAC under a key made for this
export and never kept, so records of one person link within the export and to nothing else.
``data/manifest.json`` holds the request, scope, counts, the checkpoint and every record's
positions; ``data/manifest.sig`` is a C2SP signed note over its SHA-256; ``data/checkpoint``
is the signed checkpoint; ``data/verify_export.py`` checks all of it with Python and
``cryptography`` alone (``ledger verify-export`` runs the same file). The bag is built beside
``DIR`` and renamed into place: it is there whole or not at all.
"""

from __future__ import annotations

import base64
import csv
import errno
import hashlib
import hmac
import logging
import secrets
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from uuid import UUID

import bagit
import orjson
from eventsourcing.persistence import StoredEvent

from ledger.access_files import OutputRefused, check_output_dir
from ledger.application import Ledger
from ledger.commands import parse_account_no, parse_region
from ledger.domain.context import Actor, Ctx
from ledger.domain.errors import NotFound
from ledger.domain.export_request import ExportRequest, ExportScope, export_stream, scope_of
from ledger.domain.order import events as ev
from ledger.files import named_as
from ledger.sealing import ERASED, is_token, sealed_as
from projections.base import topic_of
from projections.engine import Runtime
from projections.events import RawEvent
from replay import export_verifier
from replay.checkpoint import Checkpoint
from replay.leaves import stored_state
from replay.merkle import Prover
from replay.signed_note import Signer, sign, split_note
from replay.tiles import TileSource, TileStore

EXPORT_PAGE_ROWS = 5_000
MAX_CACHED_HASHES = 4_096
PREFETCH_TILES = 64  # leaf tiles read at once: 16,384 leaves, 640 KB
# bagit logs a line per file at INFO: the progress bar says as much.
logging.getLogger("bagit").setLevel(logging.WARNING)
RECORD_FILES = ("orders", "payments", "logistics", "returns")
# Which record file each event goes to; what an order's record holds: the verifier's words.
KINDS = export_verifier.KINDS
SUBMITTED = topic_of(ev.OrderSubmitted)
# Fields every domain event has; a record shows its time once, as "at".
EVENT_HEADER = ("originator_id", "originator_version", "originator_topic", "timestamp")
SUBMISSION_FIELDS = export_verifier.SUBMISSION_FIELDS
ORDER_FIELDS = export_verifier.ORDER_FIELDS


@dataclass(frozen=True)
class ExportReport:
    """An export written: where, from which checkpoint, how many records per file."""

    request_id: str
    out: Path
    checkpoint_size: int
    counts: dict[str, int]
    manifest_sha256: str


def request_export(
    ledger: Ledger,
    actor: Actor,
    authority: str,
    reference: str,
    basis: str,
    scope: ExportScope,
    personal_data: bool,
    request_id: str | None = None,
) -> str:
    """Record a regulator's request (an ``export/Requested`` event naming ``actor``, the key
    that filed it); its id, ``request_id`` or a new one. Raises ``InvalidCommand`` for a
    period that ends before it starts, an account that is a phone number or email or a
    region that is not a region code (``scope.account``, ``scope.region``), the library's
    ``IntegrityError`` if ``request_id`` is taken."""
    if scope.account is not None:  # kept in clear: the commands' rule for account numbers
        parse_account_no(scope.account, "scope.account")
    if scope.region is not None:
        parse_region(scope.region, "scope.region")
    request_id = request_id or f"exp-{secrets.token_hex(6)}"
    ctx = Ctx(f"export-request-{request_id}", ledger.moment(None), actor)
    ledger.app.save(
        ExportRequest.request(ctx, request_id, authority, reference, basis, scope, personal_data)
    )
    return request_id


def load_request(ledger: Ledger, request_id: str) -> ExportRequest:
    """The request, or ``NotFound`` naming no value but its kind."""
    events = list(ledger.app.events.get(export_stream(request_id)))
    if not events:
        raise NotFound("no such export request")
    request: ExportRequest = ledger.app.repository.get(export_stream(request_id))
    return request


@dataclass
class _Pass:
    """One pass's state: the scope, the orders in it and the open record files."""

    ledger: Ledger
    request: ExportRequest
    scope: ExportScope
    key: bytes  # the pseudonyms' key, made for this export, never stored
    prover: Prover
    size: int
    files: dict[str, IO[bytes]]
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)  # stream → record
    folded: dict[str, Any] = field(default_factory=dict)  # stream → aggregate so far
    positions_of: dict[str, list[int]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    positions: dict[str, list[list[int]]] = field(default_factory=dict)
    subjects: set[str] = field(default_factory=set)  # whose keys are loaded
    base64_of: dict[bytes, str] = field(default_factory=dict)  # a block's proof hashes


def write_export(
    ledger: Ledger,
    rt: Runtime,
    request_id: str,
    out: Path,
    signer: Signer,
    actor: Actor,
    on_progress: Callable[[int], None] | None = None,
    command_id: str | None = None,
) -> ExportReport:
    """Write the export of request ``request_id`` to ``out`` (see the module docstring) and
    record it on the request (``export/Written``, under ``command_id`` if given).

    Raises ``NotFound`` for an unknown request or a log never sealed, ``OutputRefused``
    (``IO_ERROR``, as ``ledger access``) for an ``out`` that exists and is not an empty
    directory or whose directory does not exist, ``OSError`` naming ``out``."""
    request = load_request(ledger, request_id)
    check_output_dir(out)
    store = TileStore(rt.db)
    with rt.db.snapshot() as cur:
        kept = store.checkpoints(cur) if store.exists(cur) else []
        if not kept:
            raise NotFound("the log has no checkpoint yet: run `ledger seal` first")
        size, note = kept[-1]
        with _building(out) as build:
            data = build  # make_bag moves what is here into data/
            with _record_files(data) as files:
                prover = Prover(TileSource(store, cur, PREFETCH_TILES), size)
                state = _Pass(ledger, request, scope_of(request.scope), secrets.token_bytes(32),
                              prover, size, files)  # fmt: skip
                _walk(rt, cur, state, on_progress)
                _write_orders(state)
            # Every file counted, an empty one as 0: the record says what the bag holds.
            state.counts = {name: state.counts.get(name, 0) for name in (*RECORD_FILES, "events")}
            digest = _finish(data, state, note, signer)
            bagit.make_bag(str(build), _bag_info(request, size), checksums=["sha256"])
            command_id = command_id or f"export-{request_id}-{secrets.token_hex(4)}"
            _record(ledger, Ctx(command_id, ledger.moment(None), actor), request, size,
                    state.counts, digest)  # fmt: skip
    return ExportReport(request_id, out, size, dict(state.counts), digest)


@contextmanager
def _building(out: Path) -> Iterator[Path]:
    """A directory beside ``out``, renamed to it when the block ends well, removed if not.
    Errors name ``out``, never the hidden directory."""
    build = out.parent / f".{out.name}.{secrets.token_hex(4)}.partial"
    with named_as(out):
        build.mkdir(mode=0o700)
    try:
        yield build
        check_output_dir(out)
        try:
            build.rename(out)
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
                raise OutputRefused(f"{out}: was taken while the export was written") from None
            raise OSError(exc.errno, exc.strerror, str(out)) from None
    finally:
        if build.exists():
            shutil.rmtree(build, ignore_errors=True)


@contextmanager
def _record_files(data: Path) -> Iterator[dict[str, IO[bytes]]]:
    files: dict[str, IO[bytes]] = {
        name: (data / f"{name}.jsonl").open("wb") for name in (*RECORD_FILES, "events")
    }
    try:
        yield files
    finally:
        for handle in files.values():
            handle.close()


def _walk(rt: Runtime, cur: Any, state: _Pass, on_progress: Callable[[int], None] | None) -> None:
    """Every row of the checkpoint, once, in position order, a page at a time."""
    after, index = 0, 0
    while index < state.size:
        rows = rt.db.fetch_rows(cur, after, min(EXPORT_PAGE_ROWS, state.size - index), None)
        if not rows:
            raise NotFound("the log is shorter than its checkpoint: run `ledger verify`")
        _page(state, rows, index)
        index += len(rows)
        after = rows[-1].position
        if on_progress is not None:
            on_progress(index)


def _page(state: _Pass, rows: list[RawEvent], first_index: int) -> None:
    """The rows in scope of one page decoded, their data subjects' keys loaded in one round
    trip (not one per subject), then written."""
    found = []
    for index, row in enumerate(rows, first_index):
        order = state.orders.get(row.stream)
        if order is None and row.topic != SUBMITTED:
            continue  # not an order in scope: nothing decoded
        event = decoded(state.ledger, row)
        if order is None:
            facts = _facts(event)
            if not _in_scope(facts, event.timestamp, state.scope):
                continue
            order = state.orders[row.stream] = {"account_no": facts.get("account_no"),
                                                "submission": (facts, event.timestamp)}  # fmt: skip
            state.folded[row.stream], state.positions_of[row.stream] = None, []
        found.append((row, index, event, order))
    subjects = {str(order["account_no"]) for *_, order in found} - state.subjects
    if subjects:
        state.ledger.keystore.load_existing(subjects)
        state.subjects |= subjects
    for row, index, event, order in found:
        _one_row(state, row, index, event, order)


def _one_row(
    state: _Pass, row: RawEvent, index: int, event: Any, order: dict[str, Any],
) -> None:  # fmt: skip
    if "submission" in order:  # the order's first event: its record opens here
        submission, at = order.pop("submission")
        submitted = {k: submission.get(k) for k in SUBMISSION_FIELDS}
        order.clear()
        order.update(_personal_out(state, submitted, str(submitted["order_no"])))
        order["submitted_at"] = at
    state.folded[row.stream] = event.mutate(state.folded[row.stream])
    state.positions_of[row.stream].append(row.position)
    _emit(state, "events", _event_row(state, row, index), [row.position])
    kind = KINDS.get(row.topic)
    if kind is not None:
        record = {"order_no": order["order_no"], "event": row.topic.rsplit("/", 1)[-1],
                  "at": event.timestamp, "position": row.position,
                  **_personal_out(state, _facts(event), order["order_no"])}  # fmt: skip
        _emit(state, kind, record, [row.position])


def decoded(ledger: Ledger, row: RawEvent) -> Any:
    """The row as its domain event (upcast), as the library's repository reads it."""
    stored = stored_state(row)
    mapper = ledger.app.mapper
    return mapper.to_domain_event(StoredEvent(UUID(row.stream), row.version, row.topic, stored))


def _in_scope(data: dict[str, Any], at: Any, scope: ExportScope) -> bool:
    """Every filter the request gives holds for this submission."""
    checks = [
        scope.since is None or at >= scope.since,
        scope.until is None or at < scope.until,
        scope.seller is None or data.get("seller_id") == scope.seller,
        scope.account is None or data.get("account_no") == scope.account,
        scope.region is None or data.get("shipping_region") == scope.region,
        scope.sku is None or any(line.get("sku") == scope.sku for line in data.get("lines", [])),
    ]
    return all(checks)


def _event_row(state: _Pass, row: RawEvent, index: int) -> dict[str, Any]:
    known = state.base64_of
    return {
        "position": row.position,
        "leaf": index,
        "stream": row.stream,
        "version": row.version,
        "topic": row.topic,
        "state": base64.b64encode(stored_state(row)).decode(),
        "proof": [known.get(h) or _base64(state, h) for h in state.prover.inclusion(index)],
    }


def _base64(state: _Pass, digest: bytes) -> str:
    """A proof's hash in base64, encoded once: the proofs of one block share most hashes."""
    found = state.base64_of.get(digest)
    if found is None:
        if len(state.base64_of) >= MAX_CACHED_HASHES:
            state.base64_of.clear()
        found = state.base64_of[digest] = base64.b64encode(digest).decode()
    return found


def _emit(state: _Pass, name: str, record: dict[str, Any], positions: list[int]) -> None:
    state.files[name].write(orjson.dumps(record, default=str) + b"\n")
    state.counts[name] = state.counts.get(name, 0) + 1
    state.positions.setdefault(name, []).append(positions)


def _facts(event: Any) -> dict[str, Any]:
    """An event's own fields: what it says, without the header every event has."""
    return {k: v for k, v in vars(event).items() if k not in EVENT_HEADER}


def _personal_out(state: _Pass, facts: dict[str, Any], order_no: str) -> dict[str, Any]:
    """The facts of order ``order_no`` with every personal value opened (the basis requires
    it) or pseudonymised."""
    return {k: _value_out(state, k, v, order_no) for k, v in facts.items() if k != "command_id"}


def _value_out(state: _Pass, name: str, value: Any, order_no: str) -> Any:
    if isinstance(value, dict):
        if name == "linkage":
            return {k: _pseudonym(state, k, str(v)) for k, v in value.items()}
        return {k: _value_out(state, k, v, order_no) for k, v in value.items()}
    if isinstance(value, list):
        return [_value_out(state, name, v, order_no) for v in value]
    if is_token(value):
        plain = state.ledger.reveal(value, sealed_as(name), order_no)
        if plain == ERASED or state.request.personal_data:
            return plain
        return _pseudonym(state, name, plain)
    return value


def _pseudonym(state: _Pass, name: str, value: str) -> str:
    digest = hmac.new(state.key, f"{name}|{value}".encode(), hashlib.sha256).digest()
    return "p-" + base64.urlsafe_b64encode(digest[:12]).decode()


def _write_orders(state: _Pass) -> None:
    """One record per order in scope, as it was at its last event in the checkpoint."""
    for stream, order in state.orders.items():
        aggregate = state.folded[stream]
        fields = {k: getattr(aggregate, k, None) for k in ORDER_FIELDS}
        fields["paid_fen"] = sum((fields["paid_fen"] or {}).values())
        fields["refunded_fen"] = sum((fields["refunded_fen"] or {}).values())
        positions = state.positions_of[stream]
        record = {**order, **fields, "version": len(positions), "positions": positions}
        _emit(state, "orders", record, list(positions))


def _finish(data: Path, state: _Pass, note: str, signer: Signer) -> str:
    """CSV beside each record file, the checkpoint, the verifier, then the manifest (with
    the SHA-256 of each of those files) and its signature; the manifest's SHA-256 (hex)."""
    for name in RECORD_FILES:
        _to_csv(data / f"{name}.jsonl", data / f"{name}.csv")
    (data / "checkpoint").write_text(note, encoding="utf-8")
    shutil.copyfile(export_verifier.__file__, data / "verify_export.py")
    checkpoint = Checkpoint.parse(split_note(note)[0])
    manifest = {
        "format": export_verifier.MANIFEST_FORMAT,
        "request": {k: getattr(state.request, k) for k in
                    ("request_id", "authority", "reference", "basis", "personal_data")},
        "scope": state.request.scope,
        "checkpoint": {"origin": checkpoint.origin, "size": checkpoint.size,
                       "root_hash": base64.b64encode(checkpoint.root_hash).decode()},
        "counts": {name: state.counts.get(name, 0) for name in (*RECORD_FILES, "events")},
        "positions": {name: state.positions.get(name, []) for name in RECORD_FILES},
        "personal_data": "clear" if state.request.personal_data else "pseudonyms",
        # Every other file's digest under the signature: the bag's id names its content.
        "files": export_verifier.data_files(data),
    }  # fmt: skip
    body = orjson.dumps(manifest, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2)
    (data / "manifest.json").write_bytes(body)
    digest = hashlib.sha256(body).hexdigest()
    text = export_verifier.manifest_note_text(state.request.request_id, digest)
    (data / "manifest.sig").write_text(sign(text, [signer]), encoding="utf-8")
    return digest


def _to_csv(jsonl: Path, out: Path) -> None:
    """The records as CSV (UTF-8 with BOM, for spreadsheets): columns the union of keys,
    nested values as JSON text."""
    records = [orjson.loads(line) for line in jsonl.read_bytes().splitlines()]
    columns = sorted({k for r in records for k in r})
    with out.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for r in records:
            writer.writerow([_cell(r.get(c)) for c in columns])


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    return str(value)


def _bag_info(request: ExportRequest, size: int) -> dict[str, str]:
    return {
        "Source-Organization": request.authority,
        "External-Identifier": request.reference,
        "External-Description": f"mall-ledger export {request.request_id} from checkpoint {size}",
    }


def _record(
    ledger: Ledger, ctx: Ctx, request: ExportRequest, size: int, counts: dict[str, int],
    digest: str,
) -> None:  # fmt: skip
    request.written(ctx, size, counts, digest)
    ledger.app.save(request)
