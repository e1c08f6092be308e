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
from uuid import UUID

from projections.events import RawEvent
from replay.merkle import leaf_hash

ROW_FORMAT_LINE = b"mall-ledger/row/v1\n"
MAX_TOPIC_BYTES = 0xFFFF
_HEAD = struct.Struct(">Q16sQH")


def row_bytes(row: RawEvent) -> bytes:
    """The canonical bytes of one stored event row (see the module docstring). A state
    SQLite hands back as text (a row someone rewrote with a text value) is its UTF-8 bytes."""
    assert row.state is not None, f"row {row.position} read without its state"
    topic = row.topic.encode()
    assert len(topic) <= MAX_TOPIC_BYTES, row.position
    head = _HEAD.pack(row.position, UUID(row.stream).bytes, row.version, len(topic))
    state = row.state.encode() if isinstance(row.state, str) else bytes(row.state)
    return ROW_FORMAT_LINE + head + topic + state


def row_leaf(row: RawEvent) -> bytes:
    """The RFC 9162 leaf hash of one stored event row."""
    return leaf_hash(row_bytes(row))
