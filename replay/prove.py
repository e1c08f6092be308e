"""``ledger prove``: proofs against the kept checkpoints (issue 12, item 5).

An inclusion proof is written in the C2SP ``tlog-proof@v1`` format; its ``extra`` line holds
the event row's canonical bytes (replay/leaves.py), from which anyone recomputes the leaf hash
and reads the position, stream, version, topic and stored state it commits to. A consistency
proof (RFC 9162 2.1.4) between two checkpoints has no C2SP text format: it is given with both
signed checkpoints, the hashes in base64.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ledger.domain.errors import NotFound
from projections.engine import Runtime
from replay.checkpoint import Checkpoint
from replay.leaves import row_bytes
from replay.merkle import ProofInvalid, consistency_proof, inclusion_proof
from replay.signed_note import split_note
from replay.tiles import TileSource, TileStore, leaf_index_of
from replay.tlog_proof import TlogProof


@dataclass(frozen=True)
class ConsistencyProof:
    """That the checkpoint ``old`` (a signed note) is a prefix of ``new``: ``hashes``."""

    old_size: int
    new_size: int
    old: str
    new: str
    hashes: tuple[bytes, ...]


def _note(store: TileStore, cur: Any, size: int | None) -> str:
    """The kept checkpoint of ``size`` leaves (the latest for None); NotFound if none."""
    if size is not None:
        note = store.checkpoint(cur, size)
        if note is None:
            raise NotFound(
                f"no checkpoint of {size} leaves is kept (`ledger verify --json` lists them)"
            )
        return note
    kept = store.checkpoints(cur)
    if not kept:
        raise NotFound("the log has no checkpoint yet: run `ledger seal`")
    return kept[-1][1]


def prove_inclusion(rt: Runtime, position: int, size: int | None = None) -> TlogProof:
    """The inclusion proof of the event at log ``position`` against the checkpoint of
    ``size`` leaves (the latest by default). Raises ``NotFound`` for a position that is no
    sealed event of that checkpoint, or a size no checkpoint has."""
    store = TileStore(rt.db)
    with rt.db.snapshot() as cur:
        if not store.exists(cur):
            raise NotFound("the log has no checkpoint yet: run `ledger seal`")
        note = _note(store, cur, size)
        tree_size = Checkpoint.parse(split_note(note)[0]).size
        tile = store.leaf_tile_at(cur, position)
        index = None if tile is None else leaf_index_of(tile, position)
        if index is None or index >= tree_size:
            raise NotFound(f"position {position} is not an event of the checkpoint of {tree_size}")
        rows = rt.db.fetch_rows(cur, position - 1, 1, position)
        hashes = inclusion_proof(TileSource(store, cur), index, tree_size)
    if not rows or rows[0].position != position:
        raise NotFound(f"position {position} is sealed but its row is gone: run `ledger verify`")
    return TlogProof(index, tuple(hashes), note, extra=row_bytes(rows[0]))


def prove_consistency(rt: Runtime, old_size: int, new_size: int) -> ConsistencyProof:
    """The consistency proof between the kept checkpoints of ``old_size`` and ``new_size``
    leaves. Raises ``NotFound`` for a size no checkpoint has, ``ProofInvalid`` for sizes no
    proof exists for (``old_size`` 0 or above ``new_size``)."""
    if not 0 < old_size <= new_size:
        raise ProofInvalid(f"no consistency proof from {old_size} leaves to {new_size}")
    store = TileStore(rt.db)
    with rt.db.snapshot() as cur:
        if not store.exists(cur):
            raise NotFound("the log has no checkpoint yet: run `ledger seal`")
        old, new = _note(store, cur, old_size), _note(store, cur, new_size)
        hashes = consistency_proof(TileSource(store, cur), old_size, new_size)
    return ConsistencyProof(old_size, new_size, old, new, tuple(hashes))
