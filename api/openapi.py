"""The OpenAPI document: FastAPI's, plus the command bodies' schemas (routes read raw bodies
so that JSON goes through orjson with our limits, so FastAPI does not see those models)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import TypeAdapter

from api.commands import BODY_MODELS, REF
from api.examples import body_examples
from api.observe import REQUEST_ID_PATTERN
from api.problems import PROBLEM_MEDIA_TYPE

PROBLEM_REF = REF.format(model="Problem")
REQUEST_ID_HEADER = {
    "description": "the request's id: the X-Request-Id sent, if safe, else a new one",
    "schema": {"type": "string", "pattern": REQUEST_ID_PATTERN},
}


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
    for kind, example in body_examples().items():
        operation = doc["paths"][f"/v1/commands/{kind}"]["post"]
        operation["requestBody"]["content"]["application/json"]["example"] = example
    for path in doc.get("paths", {}).values():
        for operation in path.values():
            _parameter_errors_as_problems(operation)
            _problem_media_only(operation)
            _request_id_header(operation)
    for unused in ("HTTPValidationError", "ValidationError"):  # FastAPI's 422, never sent
        schemas.pop(unused, None)
    return doc


def _parameter_errors_as_problems(operation: dict[str, Any]) -> None:
    """A parameter that breaks its rule is answered 400 INVALID_PARAMETER (api/problems.py),
    not with FastAPI's 422 body, which FastAPI documents for every route with parameters."""
    responses = operation.get("responses", {})
    found = responses.get("422", {}).get("content", {}).get("application/json", {})
    if found.get("schema", {}).get("$ref", "").endswith("/HTTPValidationError"):
        del responses["422"]
        responses.setdefault(
            "400",
            {
                "description": "INVALID_PARAMETER",
                "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": PROBLEM_REF}}},
            },
        )


def _request_id_header(operation: dict[str, Any]) -> None:
    """Every response carries the request's id (api/observe.py)."""
    for response in operation.get("responses", {}).values():
        response.setdefault("headers", {})["X-Request-Id"] = REQUEST_ID_HEADER


def _problem_media_only(operation: dict[str, Any]) -> None:
    """Error responses are problem+json only (FastAPI adds application/json too)."""
    for status, response in operation.get("responses", {}).items():
        content = response.get("content", {})
        if status[0] in "45" and PROBLEM_MEDIA_TYPE in content:
            schema = content.get("application/json", {}).get("schema")
            content.pop("application/json", None)
            if schema and not content[PROBLEM_MEDIA_TYPE].get("schema"):
                content[PROBLEM_MEDIA_TYPE]["schema"] = schema
