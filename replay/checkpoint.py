"""C2SP ``tlog-checkpoint`` (https://c2sp.org/tlog-checkpoint): a signed note whose text is the
log's origin, its tree size and its RFC 9162 root hash, one per line.

::

    mall-ledger.example/log
    20852
    CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=

Extension lines may follow in checkpoints others make; we read them and make none (the spec
does not recommend them: log monitors cannot audit them).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass

from replay.merkle import HASH_SIZE_BYTES
from replay.signed_note import (
    NoteInvalid,
    Signer,
    Verifier,
    b64decode,
    check_text,
    open_note,
    sign,
)

_SIZE_RE = re.compile(r"0|[1-9][0-9]{0,18}")


@dataclass(frozen=True)
class Checkpoint:
    """A tree head: ``size`` leaves with root ``root_hash`` (32 bytes) of the log ``origin``."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def text(self) -> str:
        """The note text (what is signed), ending in a newline."""
        root = base64.b64encode(self.root_hash).decode()
        return check_text("\n".join([self.origin, str(self.size), root, *self.extensions]) + "\n")

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """The checkpoint a note text holds. Raises ``NoteInvalid`` when a line breaks the
        format (an empty origin, a size with a sign or leading zeroes, a root that is not the
        base64 of 32 bytes, an empty extension line)."""
        lines = check_text(text)[:-1].split("\n")
        if len(lines) < 3 or not lines[0] or any(not line for line in lines[3:]):
            raise NoteInvalid(
                "a checkpoint is an origin, a tree size and a root hash, one per line"
            )
        if not _SIZE_RE.fullmatch(lines[1]):
            raise NoteInvalid("a checkpoint's tree size is a decimal number without leading zeroes")
        if len(b64decode(lines[2], "a checkpoint's root hash")) != HASH_SIZE_BYTES:
            raise NoteInvalid("a checkpoint's root hash is the base64 of 32 bytes")
        return cls(lines[0], int(lines[1]), base64.b64decode(lines[2]), tuple(lines[3:]))


def sign_checkpoint(checkpoint: Checkpoint, signer: Signer) -> str:
    """The checkpoint as a signed note; the key is named like the origin (as the spec asks)."""
    if signer.name != checkpoint.origin:
        raise NoteInvalid("the signing key's name must be the log's origin")
    return sign(checkpoint.text(), [signer])


def open_checkpoint(note: str, verifiers: Sequence[Verifier], origin: str) -> Checkpoint:
    """The checkpoint of ``note`` once a trusted key's signature verifies and its origin is
    ``origin``. Raises ``NoteInvalid`` otherwise."""
    checkpoint = Checkpoint.parse(open_note(note, verifiers))
    if checkpoint.origin != origin:
        raise NoteInvalid("the checkpoint is of another log (its origin line differs)")
    return checkpoint
