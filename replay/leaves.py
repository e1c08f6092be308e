"""The bytes of an event row that the Merkle log hashes (issue 12: leaf i = SHA-256(0x00 ||
canonical bytes of event row i as stored)).

::

    row_bytes = "mall-ledger/row/v1" 0x0A
                || position (8 bytes, big-endian)
                || stream id (the UUID's 16 bytes)
                || version (8 bytes, big-endian)
                || len(topic) (2 bytes, big-endian) || topic (UTF-8)
                || state (the stored bytes, to the end)

Every field has a fixed length or a length prefix but the last, so two different rows never
give the same bytes. The state is hashed as stored: personal fields are ciphertext there, so
destroying a subject's key changes no leaf. The position is inside the leaf, so a row moved to
another position, or a row slipped into a gap, changes the tree: the mapping from positions to
leaf indexes is verified with everything else.
"""

from __future__ import annotations

import struct

from projections.events import RawEvent
from replay.merkle import ProofInvalid, leaf_hash

ROW_FORMAT_LINE = b"mall-ledger/row/v1\n"
MAX_TOPIC_BYTES = 0xFFFF
UUID_BYTES = 16
_HEAD = struct.Struct(">Q16sQH")


def row_bytes(row: RawEvent) -> bytes:
    """The canonical bytes of one stored event row (see the module docstring). A state
    SQLite hands back as text (a row someone rewrote with a text value) is its UTF-8 bytes;
    a stream id that is not a UUID (a row someone rewrote) is ``ProofInvalid``."""
    assert row.state is not None, f"row {row.position} read without its state"
    topic = row.topic.encode()
    assert len(topic) <= MAX_TOPIC_BYTES, row.position
    try:
        stream = bytes.fromhex(row.stream.replace("-", ""))  # a UUID's text, its 16 bytes
    except ValueError:
        stream = b""
    if len(stream) != UUID_BYTES:
        raise ProofInvalid(f"position {row.position} cannot be a leaf: its stream id is no UUID")
    head = _HEAD.pack(row.position, stream, row.version, len(topic))
    return ROW_FORMAT_LINE + head + topic + stored_state(row)


def stored_state(row: RawEvent) -> bytes:
    """The row's state as stored, in bytes (a state SQLite hands back as text: its UTF-8)."""
    assert row.state is not None, f"row {row.position} read without its state"
    return row.state.encode() if isinstance(row.state, str) else bytes(row.state)


def row_leaf(row: RawEvent) -> bytes:
    """The RFC 9162 leaf hash of one stored event row."""
    return leaf_hash(row_bytes(row))
