"""Page tokens: where the next page of a list starts, opaque to the client.

A token is ``base64url(nonce ‖ AES-256-GCM(cursor JSON))``: the cursor (the sort key of the
page's last row, ``projections.queries.Listing.cursor_of``) encrypted and authenticated under
a key derived from the ledger's stored linkage key, with the list's name and filters as the
associated data. So a token cannot be read (it may hold account or order numbers), altered,
forged, or used with another list or other filters; every API process of one ledger accepts
every other's tokens, also after a restart. Anything else is ``INVALID_PARAMETER`` (400)
naming ``page_token``, never a 500 and never an echo of the token (Google AIP-158 pages).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
from hashlib import sha256
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from api.errors import InvalidParameter

KEY_LABEL = b"mall-ledger/api/page-token/v1"  # domain separation from the linkage hashes
NONCE_SIZE_BYTES = 12
MAX_TOKEN_CHARS = 1024  # a cursor is a few short values; longer is not ours
TOKEN = "page_token"
NOT_OURS = "is not a token this list gave with these filters; start again without it"


def derive_key(linkage_key: bytes, label: bytes = KEY_LABEL) -> bytes:
    """A key (32 bytes) from the ledger's linkage key (HMAC-SHA256 under ``label``): the
    page tokens' by default; the console's sessions use their own label."""
    return hmac.new(linkage_key, label, sha256).digest()


class PageTokens:
    """Seals cursors into tokens and opens them, for one ledger (``key`` from ``derive_key``)."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def seal(self, scope: str, cursor: list[Any]) -> str:
        """The token for ``cursor`` of the list and filters ``scope`` (``scope_of``)."""
        nonce = os.urandom(NONCE_SIZE_BYTES)
        sealed = self._aead.encrypt(nonce, orjson.dumps(cursor), scope.encode())
        return base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode("ascii")

    def open(self, scope: str, token: str) -> Any:
        """The cursor ``seal`` was given for ``scope``; ``InvalidParameter`` for a token that
        is malformed, altered, forged or another list's."""
        if not token or len(token) > MAX_TOKEN_CHARS or not token.isascii():
            raise InvalidParameter(TOKEN, NOT_OURS)
        try:
            blob = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            plain = self._aead.decrypt(
                blob[:NONCE_SIZE_BYTES], blob[NONCE_SIZE_BYTES:], scope.encode()
            )
            return orjson.loads(plain)
        except (binascii.Error, ValueError, InvalidTag):
            raise InvalidParameter(TOKEN, NOT_OURS) from None


def scope_of(listing: str, filters: dict[str, Any]) -> str:
    """The associated data of a list's tokens: its name and its filters' values, canonical
    (a time as RFC 3339 text)."""
    canonical = {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in filters.items()}
    return listing + "\n" + orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS).decode()
