"""The command record's payload digest: retry detection that erasure reaches (issue 11, item 7).

A command record keeps a digest of its payload so a retry under the same command id is told
from a reuse with another body (``COMMAND_ID_REUSED``). The first format was one HMAC of the
whole payload under the application-wide key: whoever held that key could test every mainland
mobile number against it, and erasing the subject did not reach it.

The digest is ``v3:<blanked>:<personal>:<generation>:<direct>`` (``v2:<blanked>:<personal>``,
the format before direct-identifier key generations, is still compared):

- ``blanked``: unkeyed SHA-256 of the canonical payload (sorted keys, no command id) with every
  ``Personal`` field (ledger/commands.py) replaced by ``null``: it holds nothing personal;
- ``personal``: HMAC-SHA256 of the personal fields (path and value) under a key derived from the
  data subject's main key (HMAC of the key and a label, so the main key itself is never used
  twice). When the subject's key is destroyed nothing can confirm a guess of those fields.
  Commands that name no subject (a promotion's description, an entitlement rule's text) use a
  key derived from the application secret: they carry no one's data. ``-`` when the subject had
  no key yet when the record was made (a refusal remembered before anything was sealed). In
  ``v3`` it covers the personal fields that are not direct identifiers;
- ``generation`` and ``direct``: the direct identifiers (``Personal("d")``: names, phones,
  addresses) keyed under a key derived from the subject's direct-identifier generation
  ``generation`` (``d``, ``d2``, …; ledger/keystore.py) current when the record was made, so
  de-identification, which destroys that generation, leaves nothing that confirms a guess of
  them while the main key lives on; ``-:-`` for a command without direct identifiers, and
  ``direct`` is ``-`` when the subject had no such key yet.

A retry matches when ``blanked`` is equal and, where both sides can compute them, ``personal``
and ``direct`` are equal; after an erasure (or a ``-``) only the non-personal part can be
compared, after a de-identification only the non-personal part and ``personal``.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from hashlib import sha256
from typing import Any

import orjson
from pydantic import BaseModel

from ledger.commands import Command, Personal

VERSION = "v3"
V2 = "v2"
NO_KEY = "-"
DIRECT_KIND = "d"  # Personal("d"): the direct identifiers
_SUBJECT_LABEL = b"mall-ledger/payload-digest/subject/v1"
_APP_LABEL = b"mall-ledger/payload-digest/application/v1"


def personal_fields(model: BaseModel, kind: str | None = None, prefix: str = "") -> dict[str, Any]:
    """Every ``Personal`` field of ``model`` (nested models too) by dotted path, with its
    value; only those of ``kind`` (``m`` main, ``d`` direct identifiers) when given."""
    found: dict[str, Any] = {}
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        path = f"{prefix}{name}"
        marks = [meta for meta in info.metadata if isinstance(meta, Personal)]
        if marks:
            if kind is None or marks[0].kind == kind:
                found[path] = value
        elif isinstance(value, BaseModel):
            found.update(personal_fields(value, kind, f"{path}."))
    return found


def _other_fields(model: BaseModel) -> dict[str, Any]:
    """The personal fields that are not direct identifiers (v3's ``personal`` part)."""
    direct = personal_fields(model, DIRECT_KIND)
    return {p: v for p, v in personal_fields(model).items() if p not in direct}


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


def personal_mac(command: Command, key: bytes | None, fields: dict[str, Any] | None = None) -> str:
    """Hex HMAC of ``fields`` (default: every personal field) under ``key``; ``-`` without
    a key."""
    if key is None:
        return NO_KEY
    chosen = personal_fields(command) if fields is None else fields
    canonical = orjson.dumps(chosen, option=orjson.OPT_SORT_KEYS)
    return hmac.new(key, canonical, sha256).hexdigest()


def payload_digest(
    command: Command, key: bytes | None, direct: tuple[str, bytes | None] | None = None
) -> str:
    """``v3:<blanked sha256>:<personal hmac or ->:<generation>:<direct hmac or ->``;
    ``direct``: the subject's current direct generation and its digest key (None: none)."""
    others = personal_mac(command, key, _other_fields(command))
    head = f"{VERSION}:{blanked_sha256(command)}:{others}"
    fields = personal_fields(command, DIRECT_KIND)
    if not fields:
        return f"{head}:{NO_KEY}:{NO_KEY}"
    generation, direct_key = direct if direct is not None else (NO_KEY, None)
    return f"{head}:{generation}:{personal_mac(command, direct_key, fields)}"


def same_payload(
    stored: str,
    command: Command,
    key: bytes | None,
    legacy_key: bytes | None = None,
    direct_key: Callable[[str], bytes | None] | None = None,
) -> bool:
    """Whether ``command`` is the payload ``stored`` digests. ``key``: the digest key now (None
    once the subject is erased); ``legacy_key``: the application secret, for records made
    in the first format (one HMAC of the whole payload); ``direct_key``: the digest key of a
    direct-identifier generation (None once destroyed)."""
    parts = stored.split(":")
    if parts[0] == VERSION and len(parts) == 5:
        _, blanked, personal, generation, direct = parts
        if not _same(personal, command, key, _other_fields(command)):
            return False
        found = None if generation == NO_KEY or direct_key is None else direct_key(generation)
        fields = personal_fields(command, DIRECT_KIND)
        return hmac.compare_digest(blanked, blanked_sha256(command)) and _same(
            direct, command, found, fields
        )
    if parts[0] == V2 and len(parts) == 3:
        _, blanked, personal = parts
        fields = personal_fields(command)
        return hmac.compare_digest(blanked, blanked_sha256(command)) and _same(
            personal, command, key, fields
        )
    if legacy_key is None:
        return False
    payload = command.model_dump(mode="json", exclude={"command_id"})
    canonical = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)
    return hmac.compare_digest(stored, hmac.new(legacy_key, canonical, sha256).hexdigest())


def _same(stored: str, command: Command, key: bytes | None, fields: dict[str, Any]) -> bool:
    """A keyed part matches, or cannot be compared (no key then or now, no such fields)."""
    if stored == NO_KEY or key is None or not fields:
        return True
    return hmac.compare_digest(stored, personal_mac(command, key, fields))
