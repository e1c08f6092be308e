"""``ledger verify``: recompute the Merkle log from the stored event rows and check it against
every checkpoint, the database's and the files an auditor kept (issue 12, item 6).

The rows are read once, in position order, a page at a time (memory stays flat: the right
edge and one stored tile per level). For each row, its leaf is recomputed and compared with
the tile the sealer wrote, which names the first bad position exactly:

- a sealed position whose row is gone: **deleted**;
- a row at a position the tiles do not have: **inserted** (or slipped into a gap);
- a row whose bytes hash otherwise: **changed** (one byte of its state, its topic, its stream,
  two payloads swapped).

The tiles are the database's own and could be rewritten with the rows; the signed checkpoints
are the anchor. At each checkpoint's size the recomputed root must be the signed one. A root
that differs because of a row already named (changed, deleted, inserted) is that row's
consequence, said once for all such checkpoints; one that differs while every row matches the
stored tree means the rows and the tree were rewritten and sealed again (a fork), named from
the last checkpoint that held. A checkpoint not
signed by a trusted key, of another log, or of more leaves than there are rows (a truncated
log) fails too; a file in another log's directory is another ledger's checkpoint, named as
such (``replay.log_identity``). Checkpoints that all match one recomputed tree are consistent
with each other, so a log rewritten and re-sealed from an earlier size (a fork) fails on the
checkpoints signed before the rewrite.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from projections.engine import Runtime
from projections.events import RawEvent
from replay.checkpoint import Checkpoint, open_checkpoint
from replay.leaves import row_leaf
from replay.log_identity import log_id_of_file
from replay.merkle import HASH_SIZE_BYTES, CompactRange, ProofInvalid
from replay.signed_note import NoteInvalid, Verifier
from replay.tiles import TILE_HEIGHT, TILE_WIDTH, Tile, TileStore

VERIFY_PAGE_ROWS = 10_000
MAX_PROBLEMS = 100


@dataclass(frozen=True)
class Problem:
    """One thing wrong: where (a position and leaf index when known) and what."""

    what: str
    position: int | None = None
    leaf: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"position": self.position, "leaf": self.leaf, "what": self.what}


@dataclass
class VerifyReport:
    """What ``verify`` read and found; ``intact`` only with no problem."""

    log_id: str | None = None
    rows: int = 0
    sealed: int = 0
    checkpoints: list[int] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.problems

    def add(self, problem: Problem) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)

    def as_dict(self) -> dict[str, Any]:
        return {
            "intact": self.intact,
            "log_id": self.log_id,
            "rows": self.rows,
            "sealed": self.sealed,
            "checkpoints": self.checkpoints,
            "problems": [p.as_dict() for p in self.problems],
        }


@dataclass
class _Walk:
    """The state of one pass over the rows."""

    store: TileStore
    cur: Any
    sealed: int
    report: VerifyReport
    compact: CompactRange = field(default_factory=CompactRange)
    tiles: dict[int, Tile | None] = field(default_factory=dict)
    first_row_problem: Problem | None = None
    consequences: list[str] = field(default_factory=list)  # checkpoints it made differ

    def leaf_tile(self, index: int) -> Tile | None:
        """The level-0 tile of leaf ``index`` (the one in hand, most of the time)."""
        current = self.tiles.get(0)
        if current is not None and current.index == index >> TILE_HEIGHT:
            return current
        return self.stored(0, index)

    def stored(self, level: int, index: int) -> Tile | None:
        tile_level, tile_index = level // TILE_HEIGHT, index >> TILE_HEIGHT
        current = self.tiles.get(tile_level)
        if current is None or current.index != tile_index:
            current = self.store.tile(self.cur, tile_level, tile_index)
            self.tiles[tile_level] = current
        return current


def verify(
    rt: Runtime,
    verifiers: Sequence[Verifier],
    origin: str,
    files: Sequence[tuple[str, str]] = (),
    on_progress: Callable[[int], None] | None = None,
) -> VerifyReport:
    """Check the log against its tiles and against every checkpoint: the database's and
    ``files`` (``(path, signed note)`` pairs; a file in another log's directory is reported as
    not this ledger's, and not checked further: ``replay.log_identity``). Never raises for
    what it finds: each is a ``Problem`` of the report; raises ``StorageUnavailable`` if the
    database cannot be read."""
    report = VerifyReport()
    store = TileStore(rt.db)
    with rt.db.snapshot() as cur:
        sealed = store.head(cur).size if store.exists(cur) else 0
        notes = [(f"checkpoint {size}", note) for size, note in store.checkpoints(cur)]
        report.log_id = store.log_id(cur)
        walk = _Walk(store, cur, sealed, report)
        own = _own_files(files, report)
        targets = _open_all([*notes, *own], verifiers, origin, report)
        _walk_rows(rt, walk, targets, on_progress)
    report.sealed = sealed
    for size in sorted({c.size for _, c in targets if c.size > report.rows}):
        report.add(Problem(f"a checkpoint of {size} leaves, but the log has {report.rows} rows: "
                           "rows were deleted from its end"))  # fmt: skip
    report.checkpoints = sorted({c.size for _, c in targets})
    return report


def _own_files(files: Sequence[tuple[str, str]], report: VerifyReport) -> list[tuple[str, str]]:
    """The files of this ledger's log; each in another log's directory is a problem of its
    own. Such a file may verify under the shared default key and log name, and its root is
    not this log's: it is another ledger's, not a fork of this one."""
    own = []
    for name, note in files:
        other = log_id_of_file(Path(name))
        if other is None or other == report.log_id:
            own.append((name, note))
        else:
            ours = report.log_id or "none yet"
            report.add(Problem(f"{name}: not this ledger's checkpoint: it is of the log {other}, "
                               f"this ledger's log id is {ours}"))  # fmt: skip
    return own


def _open_all(
    notes: Sequence[tuple[str, str]],
    verifiers: Sequence[Verifier],
    origin: str,
    report: VerifyReport,
) -> list[tuple[str, Checkpoint]]:
    opened = []
    for name, note in notes:
        try:
            opened.append((name, open_checkpoint(note, verifiers, origin)))
        except NoteInvalid as exc:
            report.add(Problem(f"{name}: {exc.message}"))
    return opened


def _walk_rows(
    rt: Runtime,
    walk: _Walk,
    targets: list[tuple[str, Checkpoint]],
    on_progress: Callable[[int], None] | None,
) -> None:
    by_size: dict[int, list[tuple[str, Checkpoint]]] = {}
    for name, checkpoint in targets:
        by_size.setdefault(checkpoint.size, []).append((name, checkpoint))
    last_good = (0, 0)  # (leaves, position) at the last checkpoint that held
    after = 0
    while True:
        rows = rt.db.fetch_rows(walk.cur, after, VERIFY_PAGE_ROWS, None)
        for row in rows:
            _check_row(walk, row)
            size = walk.compact.size
            for name, checkpoint in by_size.get(size, ()):
                if walk.compact.root() == checkpoint.root_hash:
                    last_good = (size, row.position)
                elif walk.first_row_problem is not None:  # that row's doing, not this note's
                    walk.consequences.append(name)
                else:
                    walk.report.add(_fork(name, last_good))
            after = row.position
        walk.report.rows = walk.compact.size
        if on_progress is not None:
            on_progress(walk.compact.size)
        if len(rows) < VERIFY_PAGE_ROWS:
            _consequences(walk)
            return


def _consequences(walk: _Walk) -> None:
    """One line for every checkpoint whose root differs only because of the row named."""
    cause = walk.first_row_problem
    if cause is None or not walk.consequences:
        return
    names = ", ".join(walk.consequences)
    their = "its" if len(walk.consequences) == 1 else "their"
    where = f"position {cause.position}" if cause.position is not None else "the row named"
    walk.report.add(Problem(f"{names}: the rows do not give {their} signed root only because "
                            f"of {where} (a consequence of that row, not a fork)"))  # fmt: skip


def _fork(name: str, last_good: tuple[int, int]) -> Problem:
    leaves, position = last_good
    since = f"after position {position} (leaf {leaves - 1})" if leaves else "from its first row"
    return Problem(
        f"{name}: the rows do not give its signed root, though every row matches the stored "
        f"tree: the log and its tree were rewritten {since} and sealed again (a fork)",
        None,
        leaves,
    )


def _check_row(walk: _Walk, row: RawEvent) -> None:
    index = walk.compact.size
    try:
        leaf = row_leaf(row)
    except ProofInvalid as exc:  # a row rewritten into something no leaf can be
        _row_problem(walk, Problem(exc.message, row.position, index))
        leaf = bytes(HASH_SIZE_BYTES)
    made = walk.compact.append(leaf)
    if index >= walk.sealed:
        return  # not sealed yet: nothing to compare with
    leaves = walk.leaf_tile(index)
    slot = index % TILE_WIDTH
    if leaves is None or slot >= len(leaves.hashes):
        _row_problem(walk, Problem("the tiles have no leaf here", row.position, index))
        return
    if leaves.hashes[slot] != leaf or leaves.positions[slot] != row.position:
        _compare_leaf(walk, row, index, leaves.positions[slot], leaves.hashes[slot], leaf)
    if len(made) >= TILE_HEIGHT:  # a node of level 8 (or more) completed: stored in a tile
        for level, node_index, value in made[TILE_HEIGHT - 1 :]:
            if level % TILE_HEIGHT == 0:
                _compare_node(walk, level, node_index, value, row.position)


def _compare_leaf(
    walk: _Walk, row: RawEvent, index: int, sealed_at: int, sealed: bytes, leaf: bytes
) -> None:
    if sealed_at < row.position:
        what = f"was sealed as leaf {index} and its row is gone (deleted)"
        _row_problem(walk, Problem(what, sealed_at, index))
    elif sealed_at > row.position:
        what = "is not a sealed row (inserted after sealing)"
        _row_problem(walk, Problem(what, row.position, index))
    elif sealed != leaf:
        what = f"changed since it was sealed as leaf {index}"
        _row_problem(walk, Problem(what, row.position, index))


def _compare_node(walk: _Walk, level: int, index: int, value: bytes, position: int) -> None:
    tile = walk.stored(level, index)
    slot = index % TILE_WIDTH
    if tile is None or slot >= len(tile.hashes) or tile.hashes[slot] != value:
        what = f"the stored tree node at level {level}, index {index} is not the rows' hash"
        _row_problem(walk, Problem(what, position, None))


def _row_problem(walk: _Walk, problem: Problem) -> None:
    """Only the first row problem is reported: a deleted or inserted row shifts every leaf
    after it, and each would differ."""
    if walk.first_row_problem is None:
        walk.first_row_problem = problem
        walk.report.add(problem)
