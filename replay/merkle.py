"""The RFC 9162 Merkle tree (Certificate Transparency 2.0, section 2.1) over the event log.

Hashes are SHA-256 (32 bytes). A leaf's hash is ``SHA-256(0x00 || data)``, an interior node's
``SHA-256(0x01 || left || right)``; the tree over ``n`` leaves splits at ``k``, the largest power
of two below ``n`` (RFC 9162 2.1.1), and the empty tree's hash is ``SHA-256("")``.

A *node* ``(level, index)`` is the hash of the perfect subtree over leaves
``[index * 2**level, (index + 1) * 2**level)``. Proofs are made from nodes a ``NodeSource``
gives, so a store that keeps every perfect subtree's hash (what ``CompactRange.append`` hands
out as leaves arrive) answers a proof with O(log n) lookups instead of rehashing the log.

Verification follows RFC 9162 2.1.3.2 (inclusion) and 2.1.4.2 (consistency) to the letter, and
is checked against the published test vectors of transparency-dev/merkle (tests/data/rfc9162).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from hashlib import sha256
from typing import Protocol

from ledger.domain import codes
from ledger.domain.errors import LedgerError

HASH_SIZE_BYTES = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = sha256(b"").digest()
# A proof over a tree of at most 2**63 leaves has at most 63 hashes (RFC 9162 2.1.3.1).
MAX_PROOF_HASHES = 63
MAX_TREE_SIZE = 2**63
BLOCK = 256  # leaves whose proofs share everything above them (a Prover's unit)


class ProofInvalid(LedgerError):
    """An inclusion or consistency proof that does not prove what it claims (RFC 9162 2.1.3.2,
    2.1.4.2), or asked of sizes no proof exists for."""

    catalogued = codes.PROOF_INVALID


def leaf_hash(data: bytes) -> bytes:
    """``SHA-256(0x00 || data)``: the hash of one entry (RFC 9162 2.1.1)."""
    return sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``: an interior node (RFC 9162 2.1.1)."""
    return sha256(NODE_PREFIX + left + right).digest()


def split_point(size: int) -> int:
    """The largest power of two strictly below ``size`` (``size`` >= 2): where MTH splits."""
    assert size >= 2, size
    return 1 << ((size - 1).bit_length() - 1)


class NodeSource(Protocol):
    """Where proofs read the hashes of perfect subtrees."""

    def node(self, level: int, index: int) -> bytes:
        """The hash of the perfect subtree over leaves ``[index << level, (index+1) << level)``;
        only asked for subtrees wholly inside the tree being proved."""
        ...

    def leaf_range(self, start: int, end: int) -> list[bytes]:
        """The leaf hashes ``[start, end)``, all inside the tree (``node(0, i)`` for each,
        read in one go)."""
        ...


class LeafList:
    """A ``NodeSource`` over leaf hashes in memory, for small trees and for tests."""

    def __init__(self, leaf_hashes: Sequence[bytes]) -> None:
        self.leaves = list(leaf_hashes)
        self._nodes: dict[tuple[int, int], bytes] = {}

    def leaf_range(self, start: int, end: int) -> list[bytes]:
        return self.leaves[start:end]

    def node(self, level: int, index: int) -> bytes:
        if level == 0:
            return self.leaves[index]
        key = (level, index)
        if key not in self._nodes:
            self._nodes[key] = node_hash(
                self.node(level - 1, 2 * index), self.node(level - 1, 2 * index + 1)
            )
        return self._nodes[key]


def subtree_root(source: NodeSource, start: int, end: int) -> bytes:
    """MTH of the leaves ``[start, end)`` (RFC 9162 2.1.1), ``start`` aligned as every range
    of the RFC's recursion is: O(log n) node reads."""
    size = end - start
    if size == 0:
        return EMPTY_ROOT
    if size & (size - 1) == 0 and start % size == 0:
        level = size.bit_length() - 1
        return source.node(level, start >> level)
    k = split_point(size)
    return node_hash(subtree_root(source, start, start + k), subtree_root(source, start + k, end))


def root(source: NodeSource, size: int) -> bytes:
    """The tree head of the first ``size`` leaves."""
    return subtree_root(source, 0, size)


def inclusion_proof(source: NodeSource, index: int, size: int) -> list[bytes]:
    """PATH(index, D[0:size]) of RFC 9162 2.1.3.1: the sibling hashes from the leaf up.

    Raises ``ProofInvalid`` when ``index`` is not a leaf of a tree of ``size`` leaves."""
    return Prover(source, size).inclusion(index)


class Prover:
    """Inclusion proofs of many leaves of one tree of ``size`` leaves: the roots of the
    ranges that are not perfect subtrees (the tree's right edge) are hashed once, not once
    per proof, and so is each level of the 256-leaf block the leaves are in."""

    def __init__(self, source: NodeSource, size: int) -> None:
        self.source, self.size = source, size
        self._roots: dict[tuple[int, int], bytes] = {}
        self._top: tuple[int, tuple[int, int, list[bytes]]] | None = None
        self._block: tuple[int, list[list[bytes]]] | None = None  # (start, its levels)

    def inclusion(self, index: int) -> list[bytes]:
        """PATH(index, D[0:size]); ``ProofInvalid`` for a leaf outside the tree."""
        if not 0 <= index < self.size:
            raise ProofInvalid(f"leaf index {index} is not in a tree of {self.size} leaves")
        start, end, top = self._upper(index)
        if end - start == BLOCK:  # a perfect subtree (its start a multiple of BLOCK)
            levels = self._levels(start)
            offset = index - start
            return [levels[h][(offset >> h) ^ 1] for h in range(len(levels) - 1)] + top
        return [*self._path(index, start, end), *top]

    def _levels(self, start: int) -> list[list[bytes]]:
        """Every level of the perfect block of ``BLOCK`` leaves from ``start``, leaves first:
        255 hashings for the block, then a proof is a lookup per level."""
        if self._block is not None and self._block[0] == start:
            return self._block[1]
        layer = self.source.leaf_range(start, start + BLOCK)
        levels = [layer]
        while len(layer) > 1:
            layer = [node_hash(layer[i], layer[i + 1]) for i in range(0, len(layer), 2)]
            levels.append(layer)
        self._block = (start, levels)
        return levels

    def _upper(self, index: int) -> tuple[int, int, list[bytes]]:
        """The range of at most ``BLOCK`` leaves the recursion reaches for ``index``, and the
        siblings above it (from the bottom up). Above that size every split falls on a
        multiple of ``BLOCK``, so the leaves of one aligned block share them: proofs of
        neighbouring leaves (an export's) compute them once."""
        block = index // BLOCK
        if self._top is not None and self._top[0] == block:
            return self._top[1]
        start, end, siblings = 0, self.size, []
        while end - start > BLOCK:
            middle = start + split_point(end - start)
            if index < middle:
                siblings.append(self._root(middle, end))
                end = middle
            else:
                siblings.append(self._root(start, middle))
                start = middle
        found = (start, end, siblings[::-1])
        self._top = (block, found)
        return found

    def _path(self, index: int, start: int, end: int) -> list[bytes]:
        if end - start == 1:
            return []
        middle = start + split_point(end - start)
        if index < middle:
            return [*self._path(index, start, middle), self._root(middle, end)]
        return [*self._path(index, middle, end), self._root(start, middle)]

    def _root(self, start: int, end: int) -> bytes:
        size = end - start
        if size & (size - 1) == 0:  # a perfect subtree: one node of the source
            return subtree_root(self.source, start, end)
        found = self._roots.get((start, end))
        if found is None:
            found = self._roots[(start, end)] = subtree_root(self.source, start, end)
        return found


def consistency_proof(source: NodeSource, old_size: int, new_size: int) -> list[bytes]:
    """PROOF(old_size, D[0:new_size]) of RFC 9162 2.1.4.1: that the tree of ``old_size``
    leaves is a prefix of the tree of ``new_size``. Empty when the sizes are equal.

    Raises ``ProofInvalid`` for ``old_size`` 0 (nothing to prove: RFC 9162 2.1.4) or above
    ``new_size``."""
    if not 0 < old_size <= new_size:
        raise ProofInvalid(
            f"no consistency proof from a tree of {old_size} leaves to one of {new_size}"
        )
    return _subproof(source, old_size, 0, new_size, True)


def _subproof(source: NodeSource, m: int, start: int, end: int, complete: bool) -> list[bytes]:
    size = end - start
    if m == size:
        return [] if complete else [subtree_root(source, start, end)]
    k = split_point(size)
    if m <= k:
        return [
            *_subproof(source, m, start, start + k, complete),
            subtree_root(source, start + k, end),
        ]
    return [
        *_subproof(source, m - k, start + k, end, False),
        subtree_root(source, start, start + k),
    ]


def _check_hashes(what: str, hashes: Iterable[bytes]) -> None:
    for value in hashes:
        if len(value) != HASH_SIZE_BYTES:
            raise ProofInvalid(f"{what} holds a hash of {len(value)} bytes, not {HASH_SIZE_BYTES}")


def _shift_while_even(fn: int, sn: int) -> tuple[int, int]:
    """Right-shift both until ``fn``'s lowest bit is set or ``fn`` is 0 (RFC 9162 2.1.3.2)."""
    while fn and not fn & 1:
        fn, sn = fn >> 1, sn >> 1
    return fn, sn


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root an inclusion proof leads to (RFC 9162 2.1.3.2 steps 1-5).

    Raises ``ProofInvalid`` when the index is outside the tree, a hash is not 32 bytes, or the
    proof has the wrong number of hashes for ``(index, size)``."""
    if not 0 <= index < size or size > MAX_TREE_SIZE:
        raise ProofInvalid(f"leaf index {index} is not in a tree of {size} leaves")
    _check_hashes("the proof", [leaf, *proof])
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofInvalid("the inclusion proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            fn, sn = _shift_while_even(fn, sn)
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofInvalid("the inclusion proof is shorter than the tree is deep")
    return r


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], tree_root: bytes
) -> None:
    """Check that ``leaf`` (a leaf hash) is entry ``index`` of the tree of ``size`` leaves
    whose head is ``tree_root`` (RFC 9162 2.1.3.2). Raises ``ProofInvalid`` if not."""
    if root_from_inclusion(index, size, leaf, proof) != tree_root:
        raise ProofInvalid(f"entry {index} is not in the tree of {size} leaves with that root")


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree of ``old_size`` leaves with head ``old_root`` is a prefix of the
    tree of ``new_size`` leaves with head ``new_root`` (RFC 9162 2.1.4.2). Equal sizes need an
    empty proof and equal roots; a proof from the empty tree proves nothing and is refused.

    Raises ``ProofInvalid`` if the proof does not hold."""
    if not 0 < old_size <= new_size or new_size > MAX_TREE_SIZE:
        raise ProofInvalid(f"no consistency proof from {old_size} leaves to {new_size}")
    if old_size == new_size:  # the same tree: nothing to hash, the heads must be equal
        if proof or old_root != new_root:
            raise ProofInvalid(f"two trees of {old_size} leaves with different roots")
        return
    _check_hashes("the proof", [old_root, new_root, *proof])
    if not proof:
        raise ProofInvalid("the consistency proof is empty")
    fr, sr = _roots_from_consistency(old_size, new_size, old_root, proof)
    if fr != old_root:
        raise ProofInvalid(f"the proof does not lead to the root of the {old_size}-leaf tree")
    if sr != new_root:
        raise ProofInvalid(f"the proof does not lead to the root of the {new_size}-leaf tree")


def _roots_from_consistency(
    old_size: int, new_size: int, old_root: bytes, proof: Sequence[bytes]
) -> tuple[bytes, bytes]:
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)  # step 2: a perfect old tree is its own first node
    fn, sn = _shift_while_odd(old_size - 1, new_size - 1)
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofInvalid("the consistency proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            fn, sn = _shift_while_even(fn, sn)
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofInvalid("the consistency proof is shorter than the tree is deep")
    return fr, sr


def _shift_while_odd(fn: int, sn: int) -> tuple[int, int]:
    """Right-shift both while ``fn``'s lowest bit is set (RFC 9162 2.1.4.2 step 4)."""
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    return fn, sn


class CompactRange:
    """The right edge of the tree: one perfect-subtree hash per set bit of the size, so
    appending a leaf costs O(1) amortised and the root O(log n), with no rescan of the log
    (the "compact range" of transparency-dev/merkle over ``[0, size)``).

    ``append`` returns the interior nodes the leaf completed, ``(level, index, hash)`` from
    level 1 up: with the leaves, what a store keeps to answer proofs later (``NodeSource``)."""

    def __init__(self, size: int = 0, edge: Sequence[bytes] = ()) -> None:
        if len(edge) != bin(size).count("1"):
            raise ProofInvalid(f"a right edge of {len(edge)} hashes cannot cover {size} leaves")
        _check_hashes("the right edge", edge)
        self.size = size
        self.edge = list(edge)  # highest level first, as the set bits of size

    def append(self, leaf: bytes) -> Sequence[tuple[int, int, bytes]]:
        """Add one leaf hash; returns the interior nodes it completed, ``(level, index,
        hash)`` from level 1 up (none for a leaf of even index). The hot loop of sealing and
        verifying: the node hash is written out here, not called."""
        assert len(leaf) == HASH_SIZE_BYTES, len(leaf)
        index = self.size
        self.size = index + 1
        edge = self.edge
        if not index & 1:
            edge.append(leaf)
            return ()
        value, level, made = leaf, 0, []
        while index & 1:  # a left sibling of this level waits on the edge
            value = sha256(NODE_PREFIX + edge.pop() + value).digest()
            index, level = index >> 1, level + 1
            made.append((level, index, value))
        edge.append(value)
        return made

    def root(self) -> bytes:
        """The tree head of the leaves appended so far (``EMPTY_ROOT`` for none)."""
        if not self.edge:
            return EMPTY_ROOT
        value = self.edge[-1]
        for left in reversed(self.edge[:-1]):
            value = node_hash(left, value)
        return value
