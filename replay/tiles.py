"""Where the Merkle log keeps its tree: tiles of 256 hashes, after C2SP ``tlog-tiles``.

Tile ``(tile_level L, tile_index k)`` holds the hashes of the tree's nodes at level ``8L`` with
indexes ``[256k, 256k + width)``; a level-0 tile also holds the log position of each of its
leaves. A node of level ``8L + r`` is the hash of ``2**r`` consecutive hashes of one tile, so
any node a proof needs is one tile read and at most 255 hashings: proofs cost O(log n) tile
reads, and the tiles take about ``n * 40 * 256/255`` bytes (leaf hash and position each).

The head row keeps the tree's right edge (``merkle.CompactRange``), its size and the last
position sealed, so sealing goes on from there: O(new events + log n), never a rescan.
The tables live in the ledger's database beside the events they cover.
"""

from __future__ import annotations

import bisect
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from projections.db import Db
from replay.merkle import HASH_SIZE_BYTES, CompactRange, ProofInvalid, node_hash
from replay.signed_note import NoteInvalid

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
TILES_TABLE = "ledger_merkle_tiles"
HEAD_TABLE = "ledger_merkle_head"
CHECKPOINTS_TABLE = "ledger_merkle_checkpoints"
LOG_TABLE = "ledger_merkle_log"
_POSITION = struct.Struct(">Q")
MAX_CACHED = 65_536  # tiles or nodes a TileSource keeps (a few MB); then it starts afresh


def pack_hashes(hashes: Iterable[bytes]) -> bytes:
    return b"".join(hashes)


def unpack_hashes(blob: bytes) -> list[bytes]:
    assert len(blob) % HASH_SIZE_BYTES == 0, len(blob)
    return [blob[i : i + HASH_SIZE_BYTES] for i in range(0, len(blob), HASH_SIZE_BYTES)]


@dataclass
class Tile:
    """Up to 256 hashes of one tree level; a level-0 tile's leaves' positions too."""

    level: int
    index: int
    hashes: list[bytes] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)

    def node(self, level: int, index: int) -> bytes:
        """The node ``(level, index)`` of the tree, ``level`` in ``[8L, 8L + 8]``, hashed up
        from this tile's hashes. Raises ``ProofInvalid`` if the tile does not hold them all."""
        height = level - TILE_HEIGHT * self.level
        first = (index << height) - self.index * TILE_WIDTH
        count = 1 << height
        if first < 0 or first + count > len(self.hashes):
            raise ProofInvalid(f"the tree has no complete node at level {level}, index {index}")
        layer = self.hashes[first : first + count]
        while len(layer) > 1:
            layer = [node_hash(layer[i], layer[i + 1]) for i in range(0, len(layer), 2)]
        return layer[0]


@dataclass(frozen=True)
class Head:
    """How far the tree goes: ``size`` leaves, the last being position ``last_position``."""

    size: int
    last_position: int
    edge: tuple[bytes, ...]

    def compact(self) -> CompactRange:
        return CompactRange(self.size, self.edge)


EMPTY_HEAD = Head(0, 0, ())


class TileStore:
    """The tiles, the head and the checkpoints of the Merkle log, on one ``Db`` connection
    (SQLite or PostgreSQL); every method runs in the caller's transaction ``cur``."""

    def __init__(self, db: Db) -> None:
        self.db = db

    def create(self, cur: Any) -> None:
        """Make the tables if missing (one at a time: PostgreSQL's catalogue races)."""
        blob = self.db.blob_type
        self.db.serialise(cur, "merkle_tables")
        cur.execute(
            f"CREATE TABLE IF NOT EXISTS {TILES_TABLE} (tile_level bigint NOT NULL, "
            f"tile_index bigint NOT NULL, hashes {blob} NOT NULL, positions {blob}, "
            "first_position bigint, PRIMARY KEY (tile_level, tile_index))"
        )
        cur.execute(
            f"CREATE INDEX IF NOT EXISTS {TILES_TABLE}_first ON {TILES_TABLE} "
            "(tile_level, first_position)"
        )
        cur.execute(
            f"CREATE TABLE IF NOT EXISTS {HEAD_TABLE} (one bigint PRIMARY KEY, size bigint "
            f"NOT NULL, last_position bigint NOT NULL, edge {blob} NOT NULL)"
        )
        cur.execute(
            f"CREATE TABLE IF NOT EXISTS {CHECKPOINTS_TABLE} (size bigint PRIMARY KEY, "
            "last_position bigint NOT NULL, note text NOT NULL, recorded_at bigint)"
        )
        cur.execute(
            f"CREATE TABLE IF NOT EXISTS {LOG_TABLE} (one bigint PRIMARY KEY, log_id text NOT NULL)"
        )

    def exists(self, cur: Any) -> bool:
        return self.db.table_exists(cur, HEAD_TABLE)

    def head(self, cur: Any) -> Head:
        cur.execute(f"SELECT size, last_position, edge FROM {HEAD_TABLE} WHERE one = 1")
        found = cur.fetchone()
        if found is None:
            return EMPTY_HEAD
        return Head(int(found[0]), int(found[1]), tuple(unpack_hashes(bytes(found[2]))))

    def tile(self, cur: Any, level: int, index: int) -> Tile | None:
        cur.execute(
            self.db.sql(
                f"SELECT hashes, positions FROM {TILES_TABLE} "
                "WHERE tile_level = %s AND tile_index = %s"
            ),
            (level, index),
        )
        found = cur.fetchone()
        return None if found is None else _tile(level, index, found[0], found[1])

    def tiles(self, cur: Any, level: int, first: int, count: int) -> list[Tile]:
        """The stored tiles of ``level`` with indexes ``[first, first + count)``, in order
        (fewer where the tree ends): one query for many."""
        cur.execute(
            self.db.sql(
                f"SELECT tile_index, hashes, positions FROM {TILES_TABLE} WHERE tile_level = %s "
                "AND tile_index >= %s AND tile_index < %s ORDER BY tile_index"
            ),
            (level, first, first + count),
        )
        return [_tile(level, int(index), h, p) for index, h, p in cur.fetchall()]

    def leaf_tile_at(self, cur: Any, position: int) -> Tile | None:
        """The level-0 tile whose leaves start at or before ``position`` (the last such)."""
        cur.execute(
            self.db.sql(
                f"SELECT tile_index, hashes, positions FROM {TILES_TABLE} WHERE tile_level = 0 "
                "AND first_position <= %s ORDER BY first_position DESC LIMIT 1"
            ),
            (position,),
        )
        found = cur.fetchone()
        return None if found is None else _tile(0, int(found[0]), found[1], found[2])

    def save(self, cur: Any, tiles: Iterable[Tile], head: Head) -> None:
        """Write the changed tiles and the new head (in the caller's transaction)."""
        rows = [
            (
                t.level,
                t.index,
                pack_hashes(t.hashes),
                b"".join(_POSITION.pack(p) for p in t.positions) if t.level == 0 else None,
                t.positions[0] if t.level == 0 else None,
            )
            for t in tiles
        ]
        cur.executemany(
            self.db.sql(
                f"INSERT INTO {TILES_TABLE} (tile_level, tile_index, hashes, positions, "
                "first_position) VALUES (%s, %s, %s, %s, %s) ON CONFLICT (tile_level, tile_index) "
                "DO UPDATE SET hashes = excluded.hashes, positions = excluded.positions, "
                "first_position = excluded.first_position"
            ),
            rows,
        )
        cur.execute(
            self.db.sql(
                f"INSERT INTO {HEAD_TABLE} (one, size, last_position, edge) VALUES (1, %s, %s, %s) "
                "ON CONFLICT (one) DO UPDATE SET size = excluded.size, "
                "last_position = excluded.last_position, edge = excluded.edge"
            ),
            (head.size, head.last_position, pack_hashes(head.edge)),
        )

    def add_checkpoint(self, cur: Any, size: int, last_position: int, note: str) -> None:
        """Keep the signed checkpoint of ``size`` leaves; one already kept must be the same
        note (``NoteInvalid`` if not: the key changed between a crash and its rerun)."""
        cur.execute(
            self.db.sql(
                f"INSERT INTO {CHECKPOINTS_TABLE} (size, last_position, note) "
                "VALUES (%s, %s, %s) ON CONFLICT (size) DO NOTHING"
            ),
            (size, last_position, note),
        )
        if self.checkpoint(cur, size) != note:
            raise NoteInvalid(f"another checkpoint of {size} leaves is kept, signed otherwise")

    def log_id(self, cur: Any) -> str | None:
        """The log's id (``replay.log_identity``), or None before its first seal."""
        if not self.db.table_exists(cur, LOG_TABLE):
            return None
        cur.execute(f"SELECT log_id FROM {LOG_TABLE} WHERE one = 1")
        found = cur.fetchone()
        return None if found is None else str(found[0])

    def claim_log_id(self, cur: Any, candidate: str) -> str:
        """The log's id: ``candidate`` if it has none yet (kept for good), else the one it has."""
        cur.execute(
            self.db.sql(
                f"INSERT INTO {LOG_TABLE} (one, log_id) VALUES (1, %s) ON CONFLICT (one) DO NOTHING"
            ),
            (candidate,),
        )
        found = self.log_id(cur)
        assert found is not None
        return found

    def checkpoint(self, cur: Any, size: int) -> str | None:
        """The signed note of the checkpoint of ``size`` leaves, if one is kept."""
        cur.execute(self.db.sql(f"SELECT note FROM {CHECKPOINTS_TABLE} WHERE size = %s"), (size,))
        found = cur.fetchone()
        return None if found is None else str(found[0])

    def checkpoints(self, cur: Any) -> list[tuple[int, str]]:
        """Every kept checkpoint as ``(size, signed note)``, smallest first."""
        if not self.exists(cur):
            return []
        cur.execute(f"SELECT size, note FROM {CHECKPOINTS_TABLE} ORDER BY size")
        return [(int(size), str(note)) for size, note in cur.fetchall()]


def _tile(level: int, index: int, hashes: Any, positions: Any) -> Tile:
    packed = bytes(positions) if positions is not None else b""
    return Tile(
        level,
        index,
        unpack_hashes(bytes(hashes)),
        [p for (p,) in _POSITION.iter_unpack(packed)],
    )


class TileSource:
    """A ``merkle.NodeSource`` over stored tiles, reading each tile once; a tile missing is
    read with the ``prefetch - 1`` tiles after it of its level, in one query (a pass over
    many leaves, an export's, reads the tiles in order)."""

    def __init__(self, store: TileStore, cur: Any, prefetch: int = 1) -> None:
        self.store, self.cur, self.prefetch = store, cur, prefetch
        self._tiles: dict[tuple[int, int], Tile] = {}
        # Nodes hashed up inside a tile: the proofs of neighbouring leaves share most of them.
        self._nodes: dict[tuple[int, int], bytes] = {}

    def node(self, level: int, index: int) -> bytes:
        found = self._nodes.get((level, index))
        if found is not None:
            return found
        tile_level = level // TILE_HEIGHT
        tile_index = (index << (level - TILE_HEIGHT * tile_level)) >> TILE_HEIGHT
        value = self._tile(tile_level, tile_index, level, index).node(level, index)
        if len(self._nodes) >= MAX_CACHED:
            self._nodes.clear()
        self._nodes[(level, index)] = value
        return value

    def leaf_range(self, start: int, end: int) -> list[bytes]:
        found: list[bytes] = []
        while start < end:
            tile = self._tile(0, start >> TILE_HEIGHT, 0, start)
            first = start - tile.index * TILE_WIDTH
            taken = tile.hashes[first : first + end - start]
            if not taken:
                raise ProofInvalid(f"the tree has no leaf {start}")
            found.extend(taken)
            start += len(taken)
        return found

    def _tile(self, tile_level: int, tile_index: int, level: int, index: int) -> Tile:
        """The tile ``(tile_level, tile_index)``, which holds node ``(level, index)``."""
        found = self._tiles.get((tile_level, tile_index))
        if found is not None:
            return found
        if len(self._tiles) >= MAX_CACHED:
            self._tiles.clear()
        for tile in self.store.tiles(self.cur, tile_level, tile_index, self.prefetch):
            self._tiles[(tile_level, tile.index)] = tile
        found = self._tiles.get((tile_level, tile_index))
        if found is None:
            raise ProofInvalid(f"the tree has no node at level {level}, index {index}")
        return found


def leaf_index_of(tile: Tile, position: int) -> int | None:
    """The leaf index of the event at ``position`` in a level-0 ``tile``, or None."""
    at = bisect.bisect_left(tile.positions, position)
    if at < len(tile.positions) and tile.positions[at] == position:
        return tile.index * TILE_WIDTH + at
    return None
