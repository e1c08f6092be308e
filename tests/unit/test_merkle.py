"""The RFC 9162 Merkle tree: roots, nodes and proofs against the published test vectors of
transparency-dev/merkle (tests/data/rfc9162, see its NOTICE), and our proofs checked by a
second, independent verifier written here from the RFC's recursive definitions."""

from __future__ import annotations

import base64
import json
from hashlib import sha256
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from replay.merkle import (
    EMPTY_ROOT,
    CompactRange,
    LeafList,
    ProofInvalid,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root,
    split_point,
    verify_consistency,
    verify_inclusion,
)

VECTORS = Path(__file__).parent.parent / "data" / "rfc9162"
# transparency-dev/merkle testonly/constants.go: the leaves every vector is built from.
LEAF_INPUTS = [bytes.fromhex(h) for h in ("", "00", "10", "2021", "3031", "40414243",
               "5051525354555657", "606162636465666768696a6b6c6d6e6f")]  # fmt: skip
ROOTS = [bytes.fromhex(h) for h in (
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
)]  # fmt: skip
LEVEL_ONE = [bytes.fromhex(h) for h in (
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
)]  # fmt: skip
LEAVES = [leaf_hash(data) for data in LEAF_INPUTS]


def vectors(kind: str) -> list[dict[str, Any]]:
    return list(json.loads((VECTORS / f"{kind}.json").read_text()))


def b64(value: str | None) -> bytes:
    return base64.b64decode(value or "")


def b64_list(values: list[str] | None) -> list[bytes]:
    return [b64(v) for v in values or []]


# -- an independent verifier, from the RFC's recursive definitions (2.1.3.1, 2.1.4.1) ---------


def reference_inclusion_root(index: int, size: int, leaf: bytes, proof: list[bytes]) -> bytes:
    """Undo PATH(m, D[n]) from its last element (the top) down."""
    if size == 1:
        assert proof == []
        return leaf
    k = split_point(size)
    *rest, top = proof
    if index < k:
        return node_hash(reference_inclusion_root(index, k, leaf, rest), top)
    return node_hash(top, reference_inclusion_root(index - k, size - k, leaf, rest))


def reference_consistency(m: int, n: int, old: bytes, proof: list[bytes]) -> tuple[bytes, bytes]:
    """Undo SUBPROOF(m, D[n], true): the roots of the old and the new tree it implies."""
    return _reference_sub(m, n, old, list(proof), True)


def _reference_sub(m: int, n: int, old: bytes, proof: list[bytes], b: bool) -> tuple[bytes, bytes]:
    if m == n:
        if b:
            assert proof == []
            return old, old
        (node,) = proof
        return node, node
    k = split_point(n)
    *rest, top = proof
    if m <= k:
        old_root, new_left = _reference_sub(m, k, old, rest, b)
        return old_root, node_hash(new_left, top)
    old_right, new_right = _reference_sub(m - k, n - k, old, rest, False)
    return node_hash(top, old_right), node_hash(top, new_right)


# -- roots and nodes --------------------------------------------------------------------------


def test_the_roots_of_trees_of_zero_to_eight_leaves_are_the_published_ones() -> None:
    source = LeafList(LEAVES)
    assert [root(source, size) for size in range(9)] == ROOTS
    assert EMPTY_ROOT == sha256(b"").digest() == ROOTS[0]


def test_a_compact_range_gives_the_same_root_after_every_leaf() -> None:
    compact = CompactRange()
    assert compact.root() == ROOTS[0]
    for size, leaf in enumerate(LEAVES, start=1):
        compact.append(leaf)
        assert compact.root() == ROOTS[size]
        assert len(compact.edge) == bin(size).count("1")


def test_the_nodes_a_compact_range_completes_are_the_published_nodes() -> None:
    compact = CompactRange()
    made = {
        (level, index): value for leaf in LEAVES for level, index, value in compact.append(leaf)
    }
    assert [made[(1, i)] for i in range(4)] == LEVEL_ONE
    assert made[(3, 0)] == ROOTS[8]
    assert len(made) == 8 + 4 + 2 + 1


def test_a_compact_range_resumes_from_its_saved_edge() -> None:
    first = CompactRange()
    for leaf in LEAVES[:5]:
        first.append(leaf)
    resumed = CompactRange(first.size, first.edge)
    for leaf in LEAVES[5:]:
        resumed.append(leaf)
    assert resumed.root() == ROOTS[8]


def test_an_edge_that_cannot_cover_its_size_is_refused() -> None:
    with pytest.raises(ProofInvalid):
        CompactRange(3, [LEAVES[0]])


# -- the published vectors --------------------------------------------------------------------


@pytest.mark.parametrize("vector", vectors("inclusion"), ids=lambda v: v["file"][9:])
def test_inclusion_vectors(vector: dict[str, Any]) -> None:
    args = (
        vector["leafIdx"],
        vector["treeSize"],
        b64(vector["leafHash"]),
        b64_list(vector["proof"]),
        b64(vector["root"]),
    )
    if vector["wantErr"]:
        with pytest.raises(ProofInvalid):
            verify_inclusion(*args)
    else:
        verify_inclusion(*args)


@pytest.mark.parametrize("vector", vectors("consistency"), ids=lambda v: v["file"][12:])
def test_consistency_vectors(vector: dict[str, Any]) -> None:
    args = (
        vector["size1"],
        vector["size2"],
        b64(vector["root1"]),
        b64(vector["root2"]),
        b64_list(vector["proof"]),
    )
    if vector["wantErr"]:
        with pytest.raises(ProofInvalid):
            verify_consistency(*args)
    else:
        verify_consistency(*args)


def test_our_proofs_are_the_published_happy_path_proofs() -> None:
    source = LeafList(LEAVES)
    happy = [v for v in vectors("inclusion") if not v["wantErr"] and v["treeSize"] > 1]
    for v in happy:
        assert inclusion_proof(source, v["leafIdx"], v["treeSize"]) == b64_list(v["proof"])
    happy = [v for v in vectors("consistency") if not v["wantErr"] and v["size1"] < v["size2"]]
    assert happy
    for v in happy:
        assert consistency_proof(source, v["size1"], v["size2"]) == b64_list(v["proof"])


# -- our proofs, every pair of small sizes, both verifiers -------------------------------------


def leaves_of(count: int) -> list[bytes]:
    return [leaf_hash(i.to_bytes(4, "big")) for i in range(count)]


def test_every_inclusion_proof_up_to_40_leaves_verifies_both_ways() -> None:
    source = LeafList(leaves_of(40))
    for size in range(1, 41):
        head = root(source, size)
        for index in range(size):
            proof = inclusion_proof(source, index, size)
            verify_inclusion(index, size, source.leaves[index], proof, head)
            assert reference_inclusion_root(index, size, source.leaves[index], proof) == head


def test_every_consistency_proof_up_to_40_leaves_verifies_both_ways() -> None:
    source = LeafList(leaves_of(40))
    for new in range(1, 41):
        new_root = root(source, new)
        for old in range(1, new + 1):
            old_root = root(source, old)
            proof = consistency_proof(source, old, new)
            verify_consistency(old, new, old_root, new_root, proof)
            assert reference_consistency(old, new, old_root, proof) == (old_root, new_root)


@given(st.integers(1, 300), st.data())
def test_a_changed_bit_anywhere_in_an_inclusion_proof_fails(size: int, data: st.DataObject) -> None:
    source = LeafList(leaves_of(size))
    index = data.draw(st.integers(0, size - 1))
    proof = inclusion_proof(source, index, size)
    head = root(source, size)
    verify_inclusion(index, size, source.leaves[index], proof, head)
    if proof:
        which = data.draw(st.integers(0, len(proof) - 1))
        bit = data.draw(st.integers(0, 255))
        bad = bytearray(proof[which])
        bad[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(ProofInvalid):
            verify_inclusion(index, size, source.leaves[index], [*proof[:which], bytes(bad),
                             *proof[which + 1 :]], head)  # fmt: skip
    other = data.draw(st.integers(0, size - 1))
    if other != index:
        with pytest.raises(ProofInvalid):
            verify_inclusion(other, size, source.leaves[index], proof, head)


@given(st.integers(2, 300), st.data())
def test_a_forked_tree_fails_the_consistency_check(size: int, data: st.DataObject) -> None:
    """A log rewritten after ``old`` leaves (one entry changed) has no consistency proof from
    the old head: the honest proof of the forked tree leads to another old root."""
    old = data.draw(st.integers(1, size - 1))
    honest = leaves_of(size)
    changed = data.draw(st.integers(0, old - 1))
    forked = [*honest[:changed], leaf_hash(b"forged"), *honest[changed + 1 :]]
    fork = LeafList(forked)
    with pytest.raises(ProofInvalid):
        verify_consistency(
            old,
            size,
            root(LeafList(honest), old),
            root(fork, size),
            consistency_proof(fork, old, size),
        )


def test_proofs_are_refused_for_sizes_no_proof_exists_for() -> None:
    source = LeafList(LEAVES)
    for index, size in [(0, 0), (3, 3), (-1, 4)]:
        with pytest.raises(ProofInvalid) as caught:
            inclusion_proof(source, index, size)
        assert caught.value.code == "PROOF_INVALID"
    for old, new in [(0, 4), (5, 4)]:
        with pytest.raises(ProofInvalid):
            consistency_proof(source, old, new)
