"""The OpenAPI document: FastAPI's, plus the command bodies' schemas (routes read raw bodies
so that JSON goes through orjson with our limits, so FastAPI does not see those models)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import TypeAdapter

from api.commands import BODY_MODELS, REF
from api.problems import PROBLEM_MEDIA_TYPE


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented override


def document(app: FastAPI) -> dict[str, Any]:
    doc = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for model in BODY_MODELS.values():
        schema = TypeAdapter(model).json_schema(ref_template=REF)
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    for path in doc.get("paths", {}).values():
        for operation in path.values():
            _problem_media_only(operation)
    return doc


def _problem_media_only(operation: dict[str, Any]) -> None:
    """Error responses are problem+json only (FastAPI adds application/json too)."""
    for status, response in operation.get("responses", {}).items():
        content = response.get("content", {})
        if status[0] in "45" and PROBLEM_MEDIA_TYPE in content:
            schema = content.get("application/json", {}).get("schema")
            content.pop("application/json", None)
            if schema and not content[PROBLEM_MEDIA_TYPE].get("schema"):
                content[PROBLEM_MEDIA_TYPE]["schema"] = schema
