"""Structured logs: one JSON object a line (orjson), for ``ledger serve``.

Every line has ``ts`` (UTC, RFC 3339), ``level``, ``logger``, ``pid`` and ``message``; a
record logged with ``extra={"fields": {...}}`` adds those members (the per-request line of
api/observe.py: ``method``, ``route``, ``status``, ``duration_ms``, ``request_id``, ``key_id``,
``role``). An exception is logged by its type and the code locations it passed through, never
its text: an exception's message may quote the input it failed on, and input may be personal
data.

Nothing is configured on import: ``ledger serve`` hands ``log_config(level)`` to uvicorn,
which applies it in every worker process (``logging.config.dictConfig``).
"""

from __future__ import annotations

import logging
import traceback
from datetime import UTC, datetime
from typing import Any

import orjson

FIELDS = "fields"  # the ``extra`` key a record's structured members travel under


class JsonFormatter(logging.Formatter):
    """A ``logging.Formatter`` writing one JSON object per record (see the module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,  # which worker, under ledger serve --workers N
            "message": record.getMessage(),
        }
        fields = getattr(record, FIELDS, None)
        if isinstance(fields, dict):
            for name, value in fields.items():
                entry.setdefault(name, value)
        if record.exc_info and record.exc_info[0] is not None:
            entry["exception"] = record.exc_info[0].__name__
            entry["frames"] = frames(record.exc_info[2])
        return orjson.dumps(entry, default=str).decode()


def frames(tb: Any) -> list[str]:
    """``file:line function`` for each frame of a traceback: where, never what."""
    return [f"{f.filename}:{f.lineno} {f.name}" for f in traceback.extract_tb(tb)]


def log_config(level: str) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` dict: every logger (the ledger's, uvicorn's, the
    drivers') through one JSON handler on stderr at ``level`` (``LEDGER_LOG_LEVEL``)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": f"{__name__}.JsonFormatter"}},
        "handlers": {
            "json": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["json"], "level": level},
        # uvicorn's own loggers keep handlers of their own unless told to pass records up.
        "loggers": {
            name: {"handlers": [], "propagate": True, "level": level}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
        },
    }
