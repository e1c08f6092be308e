"""C2SP signed notes (https://c2sp.org/signed-note) with Ed25519 signatures.

A signed note is a text ending in a newline, a blank line, then signature lines
``— <key name> <base64(key id || signature)>``. The key id is the first four bytes of
``SHA-256(key name || 0x0A || 0x01 || public key)``; 0x01 names Ed25519 (RFC 8032), which signs
the text including its final newline. Keys travel as text, in the formats of Go's
``golang.org/x/mod/sumdb/note`` that the C2SP tools read:

- verifier key: ``<name>+<hex key id>+<base64(0x01 || 32-byte public key)>``;
- signer key: ``PRIVATE+KEY+<name>+<hex key id>+<base64(0x01 || 32-byte seed)>``.

Opening a note follows the spec: signatures by unknown keys are ignored, a signature by a known
key (same name and id) must verify or the whole note is refused, and at least one must.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass
from hashlib import sha256

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ledger.domain import codes
from ledger.domain.errors import LedgerError

ED25519 = 0x01  # the C2SP signature type byte of Ed25519
EM_DASH = "\u2014"
KEY_ID_BYTES = 4
MAX_SIGNATURES = 100  # the spec asks verifiers to accept at least 16
MAX_NOTE_BYTES = 1 << 20
PRIVATE_PREFIX = "PRIVATE+KEY+"
# A key name: non-empty, no Unicode space, no plus (C2SP signed-note, "Format").
_NAME_RE = re.compile(r"[^\s+]+")
_CONTROL_RE = re.compile(r"[\x00-\x09\x0b-\x1f]")


class NoteInvalid(LedgerError):
    """A note, checkpoint or key text that breaks its C2SP format, or a note no trusted key
    signed (or one a trusted key signed badly)."""

    catalogued = codes.NOTE_INVALID


def key_id(name: str, public_key: bytes) -> bytes:
    """``SHA-256(name || 0x0A || 0x01 || public key)[:4]`` (C2SP signed-note, Ed25519)."""
    return sha256(name.encode() + b"\n" + bytes([ED25519]) + public_key).digest()[:KEY_ID_BYTES]


def _check_name(name: str) -> str:
    if not _NAME_RE.fullmatch(name):
        raise NoteInvalid("a key name must be non-empty, without spaces or '+'")
    return name


def b64decode(text: str, what: str) -> bytes:
    """Standard base64 (RFC 4648 section 4), strictly; ``NoteInvalid`` naming ``what``."""
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        raise NoteInvalid(f"{what} is not base64") from None


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


@dataclass(frozen=True)
class Verifier:
    """A trusted Ed25519 key: its name, id and public key."""

    name: str
    id: bytes
    public_key: Ed25519PublicKey

    @classmethod
    def parse(cls, vkey: str) -> Verifier:
        """A verifier key ``<name>+<hex id>+<base64(0x01 || key)>``; ``NoteInvalid`` if
        malformed or if the id is not the key's."""
        parts = vkey.strip().split("+", 2)  # base64 has "+" too: the name has none
        if len(parts) != 3 or not re.fullmatch(r"[0-9a-f]{8}", parts[1]):
            raise NoteInvalid("a verifier key is <name>+<8 hex digits>+<base64 key>")
        name, key_bytes = _check_name(parts[0]), b64decode(parts[2], "the verifier key")
        if len(key_bytes) != 33 or key_bytes[0] != ED25519:
            raise NoteInvalid("the verifier key is not an Ed25519 key (type 0x01, 32 bytes)")
        if key_id(name, key_bytes[1:]) != bytes.fromhex(parts[1]):
            raise NoteInvalid("the verifier key's id is not the id of its name and key")
        return cls(name, bytes.fromhex(parts[1]), Ed25519PublicKey.from_public_bytes(key_bytes[1:]))

    def text(self) -> str:
        """This key in the verifier key format."""
        material = base64.b64encode(bytes([ED25519]) + _raw_public(self.public_key)).decode()
        return f"{self.name}+{self.id.hex()}+{material}"


@dataclass(frozen=True)
class Signer:
    """An Ed25519 signing key with its name."""

    name: str
    private_key: Ed25519PrivateKey

    @classmethod
    def generate(cls, name: str) -> Signer:
        """A new key named ``name`` (``NoteInvalid`` if the name breaks the format)."""
        return cls(_check_name(name), Ed25519PrivateKey.generate())

    @classmethod
    def parse(cls, skey: str) -> Signer:
        """A signer key ``PRIVATE+KEY+<name>+<hex id>+<base64(0x01 || seed)>``; the message
        of a ``NoteInvalid`` never holds the key text."""
        text = skey.strip()
        parts = text[len(PRIVATE_PREFIX) :].split("+", 2) if text.startswith(PRIVATE_PREFIX) else []
        if len(parts) != 3 or not re.fullmatch(r"[0-9a-f]{8}", parts[1]):
            raise NoteInvalid("a signer key is PRIVATE+KEY+<name>+<8 hex digits>+<base64 key>")
        name, seed = _check_name(parts[0]), b64decode(parts[2], "the signer key")
        if len(seed) != 33 or seed[0] != ED25519:
            raise NoteInvalid("the signer key is not an Ed25519 key (type 0x01, 32 bytes)")
        signer = cls(name, Ed25519PrivateKey.from_private_bytes(seed[1:]))
        if signer.verifier().id != bytes.fromhex(parts[1]):
            raise NoteInvalid("the signer key's id is not the id of its name and key")
        return signer

    def text(self) -> str:
        """This key in the signer key format (a secret: write it only to a 0600 file)."""
        seed = self.private_key.private_bytes_raw()
        material = base64.b64encode(bytes([ED25519]) + seed).decode()
        return f"{PRIVATE_PREFIX}{self.name}+{self.verifier().id.hex()}+{material}"

    def verifier(self) -> Verifier:
        """The public half, to give to whoever checks our notes."""
        public = self.private_key.public_key()
        return Verifier(self.name, key_id(self.name, _raw_public(public)), public)


def check_text(text: str) -> str:
    """A note text: ends in a newline, no control character but newline (C2SP signed-note)."""
    if not text.endswith("\n"):
        raise NoteInvalid("a note text must end with a newline")
    if _CONTROL_RE.search(text):
        raise NoteInvalid("a note text must not hold control characters other than newline")
    return text


def sign(text: str, signers: Sequence[Signer]) -> str:
    """The signed note: ``text``, a blank line, one signature line per signer."""
    check_text(text)
    if "\n\n" in text:
        raise NoteInvalid("a text we sign holds no blank line (its signatures would be ambiguous)")
    lines = []
    for signer in signers:
        signature = signer.private_key.sign(text.encode())
        blob = base64.b64encode(signer.verifier().id + signature).decode()
        lines.append(f"{EM_DASH} {signer.name} {blob}\n")
    return text + "\n" + "".join(lines)


def open_note(note: str, verifiers: Sequence[Verifier]) -> str:
    """The text of ``note`` once a trusted key's signature on it verifies.

    Raises ``NoteInvalid`` if the note is malformed, a trusted key's signature on it fails, or
    none of ``verifiers`` signed it."""
    text, signatures = split_note(note)
    trusted = {(v.name, v.id): v for v in verifiers}
    verified = False
    for name, blob in signatures:
        verifier = trusted.get((name, blob[:KEY_ID_BYTES]))
        if verifier is None:
            continue  # another key's signature: ignored (C2SP signed-note, "Signatures")
        try:
            verifier.public_key.verify(blob[KEY_ID_BYTES:], text.encode())
        except InvalidSignature:
            raise NoteInvalid(f"the signature of {name} on the note does not verify") from None
        verified = True
    if not verified:
        raise NoteInvalid("the note carries no signature by a trusted key")
    return text


def split_note(note: str) -> tuple[str, list[tuple[str, bytes]]]:
    """The text and the ``(key name, key id || signature)`` pairs of a signed note, parsed
    but not verified. Raises ``NoteInvalid`` on a malformed note."""
    if len(note.encode()) > MAX_NOTE_BYTES:
        raise NoteInvalid(f"a note is at most {MAX_NOTE_BYTES} bytes")
    if _CONTROL_RE.search(note):
        raise NoteInvalid("a note must not hold control characters other than newline")
    split = note.rfind("\n\n")
    if split < 0 or not note.endswith("\n"):
        raise NoteInvalid(
            "a note is a text, a blank line and signature lines, each ending in a newline"
        )
    text, lines = note[: split + 1], note[split + 2 : -1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteInvalid(f"a note carries at most {MAX_SIGNATURES} signatures")
    signatures = []
    for line in lines:
        match = re.fullmatch(rf"{EM_DASH} ([^\s+]+) ([A-Za-z0-9+/=]+)", line)
        if match is None:
            raise NoteInvalid("a signature line is an em dash, a key name and a base64 signature")
        blob = b64decode(match.group(2), "a signature")
        if len(blob) <= KEY_ID_BYTES:
            raise NoteInvalid("a signature is a 4-byte key id and the signature bytes")
        signatures.append((match.group(1), blob))
    return text, signatures
