"""JSON responses rendered by orjson (the API issue: "JSON through orjson").

FastAPI 0.165 deprecates its own ``ORJSONResponse``; this is the same few lines, ours: the
content FastAPI has already made JSON-compatible (from a response model) is rendered by orjson,
which also takes datetimes and non-string keys as they come.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import JSONResponse


class OrjsonResponse(JSONResponse):
    """``application/json`` rendered with orjson."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)
