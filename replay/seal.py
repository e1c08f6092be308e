"""``ledger seal``: extend the Merkle log over the event rows committed since the last seal,
sign its head as a C2SP checkpoint, keep the checkpoint in the database, record it as a
``CheckpointSealed`` event and write it as a file (issue 12, items 3 and 4).

1. Under the ``seal`` lock (one sealer at a time, released if the process dies), the rows
   after the head's last position are read in pages of 10,000, each page one transaction:
   leaves appended to the right edge, full and partial tiles written, the head moved. Only
   rows no transaction can still add a row before are taken (``projections.engine.settled``):
   a position that may yet commit stops the page there, so the tree never skips a row that
   commits later. Positions a rolled-back transaction left out are simply not leaves.
2. The log gets its id if it has none (``replay.log_identity``; its own transaction, kept for
   good). The head is signed (the same key and tree always give the same note: Ed25519 is
   deterministic).
3. The file ``<LEDGER_CHECKPOINT_DIR>/<log id>/<size>.checkpoint`` is written, or found
   holding the same note, *before* anything of the checkpoint is stored: a different note
   there stops the seal with nothing kept. Then the checkpoint is stored in
   ``ledger_merkle_checkpoints`` (a failure there removes the file this seal made) and saved
   as an event (a later leaf). A crash between the steps leaves nothing wrong: a file left
   without its row is a true checkpoint of this log (its rows give its root), and the next
   seal finds the head, signs it again to the same bytes, and finishes what is missing.
"""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eventsourcing.persistence import IntegrityError

from ledger.application import Ledger
from ledger.domain.context import Actor, Ctx
from ledger.domain.log_checkpoint import LogCheckpoint
from ledger.files import create_new, private_directory
from projections.engine import Runtime, settled
from projections.events import RawEvent
from replay.checkpoint import Checkpoint, sign_checkpoint
from replay.leaves import row_leaf
from replay.log_identity import checkpoint_path, new_log_id
from replay.signed_note import NoteInvalid, Signer
from replay.tiles import TILE_HEIGHT, TILE_WIDTH, Head, Tile, TileStore

SEAL_PAGE_ROWS = 10_000
SEAL_LOCK = "seal"

Progress = Callable[[int], None]


@dataclass(frozen=True)
class SealReport:
    """What a seal did: the log's id, the tree's ``size`` and ``root`` (32 bytes), the last
    position it covers, how many rows this seal added, the signed note and where its file is."""

    log_id: str
    size: int
    root_hash: bytes
    last_position: int
    appended: int
    note: str
    file: Path | None


class Extender:
    """Appends rows to the tree from a head, collecting the tiles it changes."""

    def __init__(self, store: TileStore, cur: Any, head: Head) -> None:
        self.store, self.cur = store, cur
        self.compact = head.compact()
        self.last_position = head.last_position
        self.changed: dict[tuple[int, int], Tile] = {}

    def append(self, row: RawEvent) -> None:
        assert row.position > self.last_position, (row.position, self.last_position)
        index, leaf = self.compact.size, row_leaf(row)
        self._put(0, index, leaf).positions.append(row.position)
        for level, node_index, value in self.compact.append(leaf):
            if level % TILE_HEIGHT == 0:
                self._put(level, node_index, value)
        self.last_position = row.position

    def _put(self, level: int, index: int, value: bytes) -> Tile:
        """Node ``(level, index)`` into its tile (append-only); the tile."""
        tile = self._tile(level // TILE_HEIGHT, index >> TILE_HEIGHT)
        assert len(tile.hashes) == index % TILE_WIDTH, (level, index)
        tile.hashes.append(value)
        return tile

    def _tile(self, level: int, index: int) -> Tile:
        key = (level, index)
        if key not in self.changed:
            stored = self.store.tile(self.cur, level, index)
            self.changed[key] = stored if stored is not None else Tile(level, index)
        return self.changed[key]

    def head(self) -> Head:
        return Head(self.compact.size, self.last_position, tuple(self.compact.edge))


def extend(rt: Runtime, store: TileStore, on_progress: Progress | None = None) -> Head:
    """Append every settled row after the head to the tree, a page per transaction; the new
    head. Call with the ``seal`` lock held."""
    while True:
        head, read, blocked = _extend_page(rt, store)
        if on_progress is not None:
            on_progress(head.size)
        if blocked or read < SEAL_PAGE_ROWS:
            return head


def _extend_page(rt: Runtime, store: TileStore) -> tuple[Head, int, bool]:
    """One page, one transaction: the new head, the rows read, whether a hole that may still
    fill stopped it."""
    db = rt.db
    with db.write() as cur:
        store.create(cur)
        head = store.head(cur)
        after = head.last_position
        page = db.fetch_rows(cur, after, SEAL_PAGE_ROWS, None)
        rows, _, blocked = settled(
            db, cur, after, page, lambda last: db.fetch_rows(cur, after, last - after, last)
        )
        extender = Extender(store, cur, head)
        for row in rows:
            extender.append(row)
        if rows:
            store.save(cur, extender.changed.values(), extender.head())
        return extender.head(), len(page), blocked


def seal(
    ledger: Ledger,
    rt: Runtime,
    signer: Signer,
    checkpoint_dir: Path | None,
    actor: Actor,
    on_progress: Progress | None = None,
) -> SealReport:
    """Seal the log (see the module docstring). Raises ``ProjectionsBusy`` if another seal
    runs, ``NoteInvalid`` if a different checkpoint of the same size of this log is already
    on file or kept (the log was rewritten, or the key changed): then no checkpoint is kept,
    recorded or written. Also ``StorageUnavailable``, ``OSError``."""
    store = TileStore(rt.db)
    with rt.db.exclusive(SEAL_LOCK):
        with rt.db.snapshot() as cur:
            before = store.head(cur).size if store.exists(cur) else 0
        head = extend(rt, store, on_progress)
        with rt.db.write() as cur:
            log_id = store.claim_log_id(cur, new_log_id())
        root_hash = head.compact().root()
        note = sign_checkpoint(Checkpoint(signer.name, head.size, root_hash), signer)
        file = checkpoint_path(checkpoint_dir, log_id, head.size) if checkpoint_dir else None
        made = write_checkpoint_file(file, log_id, head.size, note) if file else False
        try:
            with rt.db.write() as cur:
                store.add_checkpoint(cur, head.size, head.last_position, note)
        except BaseException:
            if made and file is not None:  # nothing half-done: no file of an unkept checkpoint
                file.unlink(missing_ok=True)
            raise
        _record(ledger, actor, head, root_hash, note)
    return SealReport(
        log_id, head.size, root_hash, head.last_position, head.size - before, note, file
    )


def _record(ledger: Ledger, actor: Actor, head: Head, root_hash: bytes, note: str) -> None:
    """Save the checkpoint as an event, once per size (a second seal of the same size
    finds its stream there and records nothing)."""
    ctx = Ctx(f"seal-{secrets.token_hex(8)}", ledger.moment(None), actor)
    checkpoint = LogCheckpoint.seal(
        ctx, head.size, head.last_position, base64.b64encode(root_hash).decode(), note
    )
    with contextlib.suppress(IntegrityError):  # sealed at this size before: recorded already
        ledger.app.save(checkpoint)


def write_checkpoint_file(path: Path, log_id: str, size: int, note: str) -> bool:
    """Write ``note`` to ``path``, whole, linked into place; whether this call made the file.
    The same checkpoint already there is fine; a different one is ``NoteInvalid``: two signed
    heads of one size of one log (the directory is the log's own) mean a rewritten log or
    another key, and the file an auditor kept must stay."""
    private_directory(path.parent)
    draft = path.with_name(f".{path.name}.{secrets.token_hex(4)}.new")
    with create_new(draft) as out:
        out.write(note.encode())
        out.flush()
        os.fsync(out.fileno())
    try:
        os.link(draft, path)
        return True
    except FileExistsError:
        if path.read_bytes() != note.encode():
            raise NoteInvalid(
                f"{path} holds another checkpoint of {size} leaves of this log ({log_id}): "
                "the log was rewritten since that seal, or signed by another key; no "
                f"checkpoint was kept. Run `ledger verify --checkpoint {path}`"
            ) from None
        return False
    finally:
        draft.unlink(missing_ok=True)
