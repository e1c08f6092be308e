"""Sealing personal fields under their subject's keys, and keyed linkage hashes (DESIGN.md, Events).

A sealed value is a compact ASCII token ``s2:<kind>:<subject_id>:<base64url(nonce + ciphertext +
tag)>``: AES-256-GCM under the subject's main key (kind ``m``) or one generation of its
direct-identifier key (kind ``d`` for the first, ``d2``, ``d3``, … for later ones: the token
names its generation), with associated data binding the token version, key kind (so the
generation), subject, **stream** (the order number, or the stream id it belongs to) and field
(issue 11, item 7): a token moved to another subject, another order of the same subject, another
generation or another field fails authentication (``SEAL_INVALID``). Once that key is destroyed
every token under it unseals to ``ERASED``; a destroyed direct generation (de-identification)
leaves the subject's newer generations, and so its newer orders, readable.

Tokens of the first format, ``s1:<subject_id>:<…>`` (associated data ``<subject_id>|<field>``
under what is now the subject's main key), are still read; nothing seals them any more.

Linkage hashes let rules link orders that share an address, phone, recipient or IP without storing
the value: HMAC-SHA256 over the kind and the normalised value, so equal values in different
subjects hash alike. Every signal goes through one normalisation (``canonical_text``: NFKC,
invisible characters removed, casefolded); addresses also lose punctuation, phones become their
digits as dialled in mainland China.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
import re
import unicodedata
from collections.abc import Callable

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ledger.domain import codes
from ledger.domain.errors import InvalidCommand, LedgerError
from ledger.keystore import DIRECT, MAIN, KeyStore, is_direct_kind, validate_subject_id

ERASED = "[erased]"
TOKEN_VERSION = "s2"
LEGACY_TOKEN_VERSION = "s1"
NONCE_SIZE_BYTES = 12
TAG_SIZE_BYTES = 16
MAX_FIELD_CHARS = 64

# Field names are code-defined identifiers; no '|' keeps the associated data unambiguous.
_FIELD_RE = re.compile(rf"[A-Za-z_][A-Za-z0-9_.-]{{0,{MAX_FIELD_CHARS - 1}}}")
_BASE64URL_RE = re.compile(r"[A-Za-z0-9_-]+")
_MAINLAND_MOBILE_RE = re.compile(r"1[3-9][0-9]{9}")


class SealInvalid(LedgerError):
    """A sealed token that is malformed or fails authentication (tampered, wrong field)."""

    catalogued = codes.SEAL_INVALID


class SubjectErased(LedgerError):
    """Personal data cannot be sealed for a subject whose key was destroyed."""

    catalogued = codes.SUBJECT_ERASED


# Normalisers --------------------------------------------------------------------------------
# One normalisation for every linkage signal (3.1.5; issue 8, case 4): two spellings a person
# cannot tell apart on screen must hash alike, or an invisible character splits linked accounts.

_INVISIBLE_CATEGORIES = frozenset({"Cf", "Cc", "Zs", "Zl", "Zp"})
# Default-ignorable code points that are not format characters (Cf): they render as nothing.
_INVISIBLE = frozenset(
    [0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x3164, 0xFFA0]
    + list(range(0x180B, 0x1810))  # Mongolian variation selectors and vowel separator
    + list(range(0xFE00, 0xFE10))  # variation selectors
    + list(range(0xE0100, 0xE01F0))  # variation selectors supplement
)


def _is_invisible(ch: str) -> bool:
    """Format (Cf) and control (Cc) characters, separators (Z*), whitespace, fillers."""
    return (
        ch.isspace() or unicodedata.category(ch) in _INVISIBLE_CATEGORIES or ord(ch) in _INVISIBLE
    )


def canonical_text(value: str) -> str:
    """NFKC (full-width letters and digits, compatibility forms), without invisible characters
    (format, control, separators, whitespace, fillers), casefolded, NFKC again because
    casefolding can leave a string that is not normalised (Unicode's NFKC_Casefold)."""
    text = unicodedata.normalize("NFKC", value)
    visible = "".join(ch for ch in text if not _is_invisible(ch))
    return unicodedata.normalize("NFKC", visible.casefold())


def normalise_name(value: str) -> str:
    """A recipient's name as ``canonical_text``: its punctuation (阿卜杜·热合曼) is kept."""
    return canonical_text(value)


def normalise_address(value: str) -> str:
    """``canonical_text`` without punctuation (Chinese too: ，。、（）-#), which varies freely
    between spellings of one address."""
    return "".join(ch for ch in canonical_text(value) if unicodedata.category(ch)[0] != "P")


def normalise_phone(value: str) -> str:
    """The number as dialled inside mainland China, digits only.

    Every decimal digit counts (full-width and other scripts' digits too); everything else is a
    separator. A country code ``+86`` or ``0086`` is dropped, and a landline then gets its trunk
    ``0`` back (``+86 10 6552 9988`` is ``01065529988``); a bare ``86`` is dropped only in front of
    an 11-digit mainland mobile, where it cannot be part of the number. Other countries' numbers
    keep their country code."""
    text = unicodedata.normalize("NFKC", value)
    digits = "".join(
        str(unicodedata.decimal(ch)) for ch in text if unicodedata.category(ch) == "Nd"
    )
    before_digits = text[: next((i for i, ch in enumerate(text) if ch.isdecimal()), len(text))]
    if digits.startswith("0086"):
        national = digits[4:]
    elif digits.startswith("86") and (
        "+" in before_digits or _MAINLAND_MOBILE_RE.fullmatch(digits[2:])
    ):
        national = digits[2:]
    else:
        return digits
    if _MAINLAND_MOBILE_RE.fullmatch(national) or national.startswith("0"):
        return national
    return "0" + national


def normalise_ip(value: str) -> str:
    """Canonical text of an IP address; an IPv4-mapped IPv6 address becomes its IPv4 form."""
    try:
        address = ipaddress.ip_address(canonical_text(value))
    except ValueError:
        raise InvalidCommand("ip", "not an IP address") from None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.compressed
    return address.compressed


NORMALISERS: dict[str, Callable[[str], str]] = {
    "address": normalise_address,
    "ip": normalise_ip,
    "phone": normalise_phone,
    "recipient": normalise_name,
}


# Sealer -------------------------------------------------------------------------------------


class Sealer:
    """Seals and unseals personal fields with per-subject keys; computes linkage hashes."""

    def __init__(self, keystore: KeyStore) -> None:
        self._keystore = keystore

    def knows(self, subject_id: str) -> bool:
        """Whether the key store ever keyed ``subject_id`` (``KeyStore.knows``)."""
        return self._keystore.knows(subject_id)

    def seal(
        self, subject_id: str, field: str, plaintext: str, *, stream: str, kind: str = MAIN
    ) -> str:
        """A token of ``plaintext`` bound to subject, ``stream`` and ``field`` under the
        subject's main key (``kind`` ``MAIN``) or its current direct-identifier generation
        (``DIRECT``); raises SubjectErased if the subject was erased."""
        return self.seal_many(subject_id, {field: plaintext}, stream=stream, kind=kind)[field]

    def seal_many(
        self, subject_id: str, fields: dict[str, str], *, stream: str, kind: str = MAIN
    ) -> dict[str, str]:
        """Seal several fields of one subject and stream with one key lookup."""
        validate_subject_id(subject_id)
        _validate_stream(stream)
        for field in fields:
            _validate_field(field)
        if kind not in (MAIN, DIRECT):
            raise InvalidCommand("kind", "must be m (main) or d (the current direct generation)")
        key: bytes | None
        if kind == DIRECT:
            current = self._keystore.current_direct(subject_id)
            kind, key = (DIRECT, None) if current is None else current
        else:
            key = self._keystore.key_for(subject_id, MAIN)
        if key is None:
            raise SubjectErased("the data subject is erased: its personal data is gone")
        aead = AESGCM(key)
        return {
            field: _token(kind, subject_id, stream, field, aead, plaintext)
            for field, plaintext in fields.items()
        }

    def unseal(self, token: str, field: str, *, stream: str) -> str:
        """The plaintext, or ERASED if the key it was sealed under was destroyed. Raises
        SealInvalid for a malformed token or one moved to another subject, stream or field."""
        _validate_field(field)
        kind, subject_id, blob = _parse(token)
        key = self._keystore.existing_key(subject_id, kind)
        if key is None:
            if self._keystore.kind_destroyed(subject_id, kind):
                return ERASED
            # A token for a subject that never had a key was not made by us.
            raise SealInvalid(f"sealed {field} has no key to open it")
        if token.startswith(LEGACY_TOKEN_VERSION + ":"):
            associated = f"{subject_id}|{field}".encode()
        else:
            associated = _associated_data(kind, subject_id, stream, field)
        nonce, ciphertext = blob[:NONCE_SIZE_BYTES], blob[NONCE_SIZE_BYTES:]
        try:
            plaintext = AESGCM(key).decrypt(nonce, ciphertext, associated)
        except InvalidTag:
            raise SealInvalid(f"sealed {field} failed authentication") from None
        try:
            return plaintext.decode("utf-8")
        except UnicodeDecodeError:
            raise SealInvalid(f"sealed {field} is not text") from None

    def subject_of(self, token: str) -> str:
        """The subject a token was sealed for (no key needed)."""
        return _parse(token)[1]

    def kind_of(self, token: str) -> str:
        """The kind of key (``m`` main; ``d``, ``d2``, … a direct-identifier generation) a
        token was sealed under."""
        return _parse(token)[0]

    def link_hash(self, kind: str, value: str, year: int) -> str | None:
        """Lowercase hex HMAC-SHA256 of ``kind|normalised value`` under the linkage key of
        calendar ``year`` (UTC); None once that key has expired (``expire_linkage_keys``)."""
        normaliser = NORMALISERS.get(kind)
        if normaliser is None:
            raise InvalidCommand("kind", f"must be one of {', '.join(sorted(NORMALISERS))}")
        normalised = normaliser(value)
        if not normalised:
            # An empty value would link every order that lacks it.
            raise InvalidCommand(kind, "empty after normalisation")
        key = self._keystore.year_linkage_key(year)
        if key is None:
            return None
        mac = hmac.HMAC(key, hashes.SHA256())
        mac.update(f"{kind}|{normalised}".encode())
        return mac.finalize().hex()

    def link_hashes(self, kind: str, value: str, year: int) -> dict[str, str]:
        """``{"<kind>@<year>": digest}`` under the keys of ``year`` and the year before (an
        order's linkage, issue 11 item 5): two orders at most ``LINK_WINDOW_DAYS`` apart
        share a key whichever side of a new year they fall on. Expired years are left out."""
        found = {}
        for key_year in (year, year - 1):
            digest = self.link_hash(kind, value, key_year)
            if digest is not None:
                found[f"{kind}@{key_year:04d}"] = digest
        return found


# An event attribute whose token was sealed under another field name (ledger/handlers/
# orders.py seals a refund's destination as ``refund_destination``): the field name is part of
# the token's associated data, so a reader of events must know it.
SEALED_AS = {"destination_account": "refund_destination"}


def is_token(value: object) -> bool:
    """Whether ``value`` is a sealed token (``s2:…``, or a legacy ``s1:…``)."""
    return isinstance(value, str) and value.startswith(
        (f"{TOKEN_VERSION}:", f"{LEGACY_TOKEN_VERSION}:")
    )


def sealed_as(attribute: str) -> str:
    """The field name a token held by the event attribute ``attribute`` was sealed under."""
    return SEALED_AS.get(attribute, attribute)


def _validate_field(field: str) -> None:
    if not isinstance(field, str) or _FIELD_RE.fullmatch(field) is None:
        raise InvalidCommand("field", f"must be an identifier of 1..{MAX_FIELD_CHARS} characters")


def _validate_stream(stream: str) -> None:
    if not isinstance(stream, str) or not stream:
        raise InvalidCommand("stream", "must name the stream a sealed value belongs to")


def _associated_data(kind: str, subject_id: str, stream: str, field: str) -> bytes:
    # A JSON array: unambiguous whatever characters the subject id or stream hold.
    return orjson.dumps([TOKEN_VERSION, kind, subject_id, stream, field])


def _token(
    kind: str, subject_id: str, stream: str, field: str, aead: AESGCM, plaintext: str
) -> str:
    nonce = os.urandom(NONCE_SIZE_BYTES)
    associated = _associated_data(kind, subject_id, stream, field)
    sealed = aead.encrypt(nonce, plaintext.encode("utf-8"), associated)
    body = base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode("ascii")
    return f"{TOKEN_VERSION}:{kind}:{subject_id}:{body}"


def _parse(token: str) -> tuple[str, str, bytes]:
    """(key kind, subject_id, nonce + ciphertext + tag) of a well-formed token (``s2``, or
    ``s1`` whose kind is the main key), else SealInvalid."""
    # Messages name what is wrong, never the token: it may be quoted in logs.
    if not isinstance(token, str):
        raise SealInvalid("sealed value is not text")
    parts = token.split(":")
    if len(parts) == 3 and parts[0] == LEGACY_TOKEN_VERSION:
        kind, subject_id, body = MAIN, parts[1], parts[2]
    elif (
        len(parts) == 4
        and parts[0] == TOKEN_VERSION
        and (parts[1] == MAIN or is_direct_kind(parts[1]))
    ):
        kind, subject_id, body = parts[1], parts[2], parts[3]
    else:
        raise SealInvalid("sealed value is malformed")
    try:
        validate_subject_id(subject_id)
    except InvalidCommand:
        raise SealInvalid("sealed value names an invalid subject") from None
    if _BASE64URL_RE.fullmatch(body) is None:
        raise SealInvalid("sealed value is malformed")
    try:
        blob = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        raise SealInvalid("sealed value is malformed") from None
    if len(blob) < NONCE_SIZE_BYTES + TAG_SIZE_BYTES:
        raise SealInvalid("sealed value is too short")
    return kind, subject_id, blob
