"""How a setting's text becomes a value: shared by ``ledger/settings.py`` and
``ledger/storage_url.py`` (which reads ``LEDGER_POOL_SIZE`` with the URL), so every numeric
setting is refused the same way."""

from __future__ import annotations

from collections.abc import Mapping

from ledger.domain.errors import InvalidCommand


def read_whole_number(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    """Setting ``name`` in ``env``: a whole number from ``low`` to ``high`` in ASCII digits, or
    ``default`` when unset or blank. Anything else raises ``InvalidCommand`` naming the setting
    and the rule (never the value)."""
    text = env.get(name, "").strip()
    if not text:
        return default
    if not (text.isascii() and text.isdigit()) or not low <= int(text) <= high:
        raise InvalidCommand(name, f"must be a whole number from {low} to {high}")
    return int(text)
