"""C2SP ``tlog-proof`` (https://c2sp.org/tlog-proof): an offline-verifiable proof that an
entry is in a log, as text: the header line, an optional ``extra`` line, ``index N``, the
RFC 9162 inclusion proof one base64 hash per line (from the leaf's sibling up), an empty line,
and the signed checkpoint verbatim.

Our ``extra`` line carries the log position of the event (positions have gaps; the index is the
event's place among committed events): it is not authenticated, so a verifier checks the leaf
it rebuilds from the stored row, which holds the position.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass

from replay.checkpoint import Checkpoint, open_checkpoint
from replay.merkle import MAX_PROOF_HASHES, verify_inclusion
from replay.signed_note import NoteInvalid, Verifier, b64decode

HEADER = "c2sp.org/tlog-proof@v1"
_INDEX_RE = re.compile(r"index (0|[1-9][0-9]{0,18})")


@dataclass(frozen=True)
class TlogProof:
    """Entry ``index`` with its inclusion ``hashes`` against the signed ``checkpoint``
    (a signed note), and opaque ``extra`` bytes."""

    index: int
    hashes: tuple[bytes, ...]
    checkpoint: str
    extra: bytes | None = None

    def text(self) -> str:
        """The proof in the ``tlog-proof@v1`` text format."""
        lines = [HEADER]
        if self.extra is not None:
            lines.append("extra " + base64.b64encode(self.extra).decode())
        lines.append(f"index {self.index}")
        lines += [base64.b64encode(h).decode() for h in self.hashes]
        return "\n".join(lines) + "\n\n" + self.checkpoint

    @classmethod
    def parse(cls, text: str) -> TlogProof:
        """The proof ``text`` holds; ``NoteInvalid`` if it breaks the format."""
        head, blank, checkpoint = text.partition("\n\n")
        lines = head.split("\n")
        if not blank or lines[0] != HEADER:
            raise NoteInvalid(f"a tlog proof starts with {HEADER} and ends with a checkpoint")
        extra = None
        if len(lines) > 1 and lines[1].startswith("extra "):
            extra = b64decode(lines.pop(1)[len("extra ") :], "the extra line")
        index = _INDEX_RE.fullmatch(lines[1]) if len(lines) > 1 else None
        if index is None:
            raise NoteInvalid("a tlog proof names its entry as 'index N'")
        if len(lines) - 2 > MAX_PROOF_HASHES:
            raise NoteInvalid(f"a tlog proof holds at most {MAX_PROOF_HASHES} hashes")
        hashes = tuple(b64decode(line, "a proof hash") for line in lines[2:])
        return cls(int(index.group(1)), hashes, checkpoint, extra)

    def verify(self, leaf: bytes, verifiers: Sequence[Verifier], origin: str) -> Checkpoint:
        """Check the checkpoint's signature and origin, then that ``leaf`` (a leaf hash) is
        entry ``index`` under its root (C2SP tlog-proof, "Verifying"). Raises ``NoteInvalid``
        or ``ProofInvalid``."""
        checkpoint = open_checkpoint(self.checkpoint, verifiers, origin)
        verify_inclusion(self.index, checkpoint.size, leaf, self.hashes, checkpoint.root_hash)
        return checkpoint
