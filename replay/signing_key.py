"""The Ed25519 key that signs checkpoints (``LEDGER_SIGNING_KEY``, default
``./var/signing-key.pem``): a PKCS #8 PEM file, owner-only, made on first use with a warning.

The key signs as the log's name (``LEDGER_LOG_NAME``), so its C2SP verifier key is
``<log name>+<key id>+<base64 public key>`` (``ledger seal --public-key`` prints it). Whoever
holds the file can sign checkpoints: keep it off the database host's backups, or behind an HSM
(the ``Signer`` is all the rest of the code sees).
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from ledger.files import create_new, private_directory
from replay.signed_note import NoteInvalid, Signer

log = logging.getLogger(__name__)

MAX_KEY_FILE_BYTES = 4096


def load_signer(path: Path, log_name: str, *, create: bool = True) -> Signer:
    """The signer of the key at ``path`` named ``log_name``; with ``create``, a new key is
    made there first if none is (atomically: two processes starting at once share one key).

    Raises ``NoteInvalid`` if the file is not an unencrypted Ed25519 PEM key (the message
    never holds the file's bytes), ``FileNotFoundError`` without ``create``, ``OSError``."""
    if create and not path.exists():
        _create(path)
    data = path.read_bytes()[: MAX_KEY_FILE_BYTES + 1]
    if len(data) > MAX_KEY_FILE_BYTES:
        raise NoteInvalid(f"the signing key file {path} is larger than a key")
    try:
        key = load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise NoteInvalid(f"the signing key file {path} is not an unencrypted PEM key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise NoteInvalid(f"the signing key file {path} is not an Ed25519 key")
    return Signer(log_name, key)


def _create(path: Path) -> None:
    """A new key, written beside ``path`` and linked into place: never a half-written key
    at ``path``, and a key another process put there first wins."""
    private_directory(path.parent)
    pem = Ed25519PrivateKey.generate().private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
    )
    draft = path.with_name(f".{path.name}.{secrets.token_hex(4)}.new")
    with create_new(draft) as out:
        out.write(pem)
        out.flush()
        os.fsync(out.fileno())
    try:
        os.link(draft, path)
        log.warning(
            "made a new checkpoint signing key at %s: keep it safe, and give verifiers the "
            "key `ledger seal --public-key` prints",
            path,
        )
    except FileExistsError:
        pass  # another process made one first: use it
    finally:
        draft.unlink(missing_ok=True)
