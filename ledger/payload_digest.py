"""The command record's payload digest: retry detection that erasure reaches (issue 11, item 7).

A command record keeps a digest of its payload so a retry under the same command id is told
from a reuse with another body (``COMMAND_ID_REUSED``). The first format was one HMAC of the
whole payload under the application-wide key: whoever held that key could test every mainland
mobile number against it, and erasing the subject did not reach it.

The digest is now ``v2:<blanked>:<personal>``:

- ``blanked``: unkeyed SHA-256 of the canonical payload (sorted keys, no command id) with every
  ``Personal`` field (ledger/commands.py) replaced by ``null``: it holds nothing personal;
- ``personal``: HMAC-SHA256 of the personal fields (path and value) under a key derived from the
  data subject's main key (HMAC of the key and a label, so the main key itself is never used
  twice). When the subject's key is destroyed nothing can confirm a guess of those fields.
  Commands that name no subject (a promotion's description, an entitlement rule's text) use a
  key derived from the application secret: they carry no one's data. ``-`` when the subject had
  no key yet when the record was made (a refusal remembered before anything was sealed).

A retry matches when ``blanked`` is equal and, where both sides can compute it, ``personal`` is
equal; after an erasure (or a ``-``) only the non-personal part can be compared.
"""

from __future__ import annotations

import hmac
from hashlib import sha256
from typing import Any

import orjson
from pydantic import BaseModel

from ledger.commands import Command, Personal

VERSION = "v2"
NO_KEY = "-"
_SUBJECT_LABEL = b"mall-ledger/payload-digest/subject/v1"
_APP_LABEL = b"mall-ledger/payload-digest/application/v1"


def personal_fields(model: BaseModel, prefix: str = "") -> dict[str, Any]:
    """Every ``Personal`` field of ``model`` (nested models too) by dotted path, with its value."""
    found: dict[str, Any] = {}
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        path = f"{prefix}{name}"
        if any(isinstance(meta, Personal) for meta in info.metadata):
            found[path] = value
        elif isinstance(value, BaseModel):
            found.update(personal_fields(value, f"{path}."))
    return found


def _blank(payload: dict[str, Any], path: str) -> None:
    *parents, last = path.split(".")
    node = payload
    for part in parents:
        node = node[part]
    node[last] = None


def blanked_sha256(command: Command) -> str:
    """Hex SHA-256 of the canonical payload without its command id and personal fields."""
    payload = command.model_dump(mode="json", exclude={"command_id"})
    for path in personal_fields(command):
        _blank(payload, path)
    return sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()


def subject_digest_key(main_key: bytes) -> bytes:
    """The HMAC key for a subject's personal fields, derived from its main key."""
    return hmac.new(main_key, _SUBJECT_LABEL, sha256).digest()


def application_digest_key(app_secret: bytes) -> bytes:
    """The HMAC key for personal-marked fields of commands that name no data subject."""
    return hmac.new(app_secret, _APP_LABEL, sha256).digest()


def personal_mac(command: Command, key: bytes | None) -> str:
    """Hex HMAC of the personal fields under ``key``; ``-`` without a key."""
    if key is None:
        return NO_KEY
    fields = personal_fields(command)
    canonical = orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)
    return hmac.new(key, canonical, sha256).hexdigest()


def payload_digest(command: Command, key: bytes | None) -> str:
    """``v2:<blanked sha256>:<personal hmac or ->``."""
    return f"{VERSION}:{blanked_sha256(command)}:{personal_mac(command, key)}"


def same_payload(
    stored: str, command: Command, key: bytes | None, legacy_key: bytes | None = None
) -> bool:
    """Whether ``command`` is the payload ``stored`` digests. ``key``: the digest key now (None
    once the subject is erased); ``legacy_key``: the application secret, for records made
    in the first format (one HMAC of the whole payload)."""
    parts = stored.split(":")
    if len(parts) != 3 or parts[0] != VERSION:
        if legacy_key is None:
            return False
        payload = command.model_dump(mode="json", exclude={"command_id"})
        canonical = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)
        return hmac.compare_digest(stored, hmac.new(legacy_key, canonical, sha256).hexdigest())
    _, blanked, personal = parts
    if not hmac.compare_digest(blanked, blanked_sha256(command)):
        return False
    if personal == NO_KEY or key is None or not personal_fields(command):
        return True
    return hmac.compare_digest(personal, personal_mac(command, key))
