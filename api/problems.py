"""Errors as problem details (RFC 9457, ``application/problem+json``).

Every error response has ``type``, ``title``, ``status``, ``detail`` and ``instance``, and
the ledger's own ``code`` and ``clause`` from the one catalogue (ledger/domain/codes.py),
whose entry also gives the status. Input errors list each broken field as a JSON pointer
(RFC 6901) with the rule it breaks; no value sent is ever echoed (it may be personal data).
Anything unforeseen is a 500 that says only that, with the request id the log holds
(``unexpected``, answered by api/observe.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, FastAPI, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from api.errors import InvalidParameter
from ledger.commands import describe_error
from ledger.domain import codes
from ledger.domain.codes import ErrorCode
from ledger.domain.errors import InvalidCommand, LedgerError, NotFound, StorageUnavailable

PROBLEM_MEDIA_TYPE = "application/problem+json"
RETRY_AFTER_S = 1  # a storage outage: how soon a client may try again


class FieldError(BaseModel):
    """One broken field: where (RFC 6901 JSON pointer into the body, or the parameter's
    name) and which rule it breaks."""

    pointer: str = Field(examples=["/lines/0/quantity"])
    rule: str = Field(examples=["must be an integer from 1 to 10000 (a JSON integer)"])


class Problem(BaseModel):
    """RFC 9457 problem details, with the ledger's code and clause."""

    type: str = Field(examples=["/v1/problems/ALREADY_PAID"])
    title: str = Field(examples=["The order is already paid in full."])
    status: int = Field(examples=[409])
    detail: str = Field(examples=["receive_payment pay-7: order A1 is already paid in full"])
    instance: str = Field(examples=["/v1/commands/receive_payment"])
    code: str = Field(examples=["ALREADY_PAID"])
    clause: str = Field(examples=["3.1.3"])
    errors: list[FieldError] | None = None
    position: int | None = Field(
        default=None,
        description="PROJECTION_BEHIND: the position the projection had applied; "
        "PROJECTION_STOPPED: the position of the event it stopped on",
    )
    retain_until: datetime | None = Field(
        default=None,
        description="RETENTION_REQUIRED: when the law's retention of the subject's records "
        "ends, and a deferred erasure runs (RFC 3339, UTC)",
    )


CODE_PATTERN = "^[A-Z][A-Z0-9_]{0,63}$"  # the catalogue's codes


def problem_type(code: str) -> str:
    return f"/v1/problems/{code}"


def problem_response(description: str, model: type[BaseModel] = Problem) -> dict[str, Any]:
    """An error response of a route's OpenAPI ``responses``: problem+json of ``model``."""
    return {"model": model, "content": {PROBLEM_MEDIA_TYPE: {}}, "description": description}


router = APIRouter(tags=["errors"])


class CatalogueEntry(BaseModel):
    """One code of the error catalogue: what a problem's ``type`` points at."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "code": "ALREADY_PAID",
                    "clause": "3.1.2",
                    "status": 409,
                    "meaning": "A payment for an order with nothing outstanding.",
                }
            ]
        }
    )

    code: str
    clause: str
    status: int
    meaning: str


@router.get(
    "/v1/problems/{code}",
    response_model=CatalogueEntry,
    responses={404: problem_response("NOT_FOUND: the catalogue has no such code")},
)
async def catalogue_entry(
    code: Annotated[str, Path(pattern=CODE_PATTERN, examples=["ALREADY_PAID"])],
) -> CatalogueEntry:
    """What a problem type means (no key needed: the catalogue is public)."""
    entry = codes.BY_CODE.get(code)
    if entry is None:
        raise NotFound("no such error code")
    return CatalogueEntry(
        code=entry.code, clause=entry.clause, status=int(entry.status), meaning=entry.meaning
    )


def problem(
    entry: ErrorCode,
    detail: str,
    instance: str,
    *,
    clause: str | None = None,
    errors: Sequence[FieldError] = (),
    headers: dict[str, str] | None = None,
    position: int | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> Response:
    """A problem+json response for catalogue entry ``entry``; ``extensions`` are further
    members (RFC 9457 section 3.2), which never replace the standard ones."""
    body: dict[str, Any] = {
        "type": problem_type(entry.code),
        "title": entry.meaning,
        "status": int(entry.status),
        "detail": detail,
        "instance": instance,
        "code": entry.code,
        "clause": entry.clause if clause is None else clause,
    }
    if errors:
        body["errors"] = [e.model_dump() for e in errors]
    if position is not None:
        body["position"] = position
    for name, value in (extensions or {}).items():
        body.setdefault(name, value)
    return Response(
        orjson.dumps(body), int(entry.status), headers=headers, media_type=PROBLEM_MEDIA_TYPE
    )


def refusal(exc: LedgerError, instance: str) -> Response:
    """A ``LedgerError`` as its problem: the status its catalogue entry gives."""
    headers: dict[str, str] = {}
    if isinstance(exc, StorageUnavailable) or int(exc.entry.status) == 503:
        headers["Retry-After"] = str(RETRY_AFTER_S)
    if exc.entry is codes.UNAUTHENTICATED:
        headers["WWW-Authenticate"] = 'Bearer realm="mall-ledger"'
    errors = field_errors(exc)
    retain_until: datetime | None = getattr(exc, "retain_until", None)
    extensions = None if retain_until is None else {"retain_until": retain_until.isoformat()}
    return problem(
        exc.entry,
        exc.message,
        instance,
        clause=exc.clause,
        errors=errors,
        headers=headers or None,
        position=getattr(exc, "position", None),
        extensions=extensions,
    )


def field_errors(exc: LedgerError) -> list[FieldError]:
    """The broken fields an input error names: a body's list, or a command's one field."""
    listed: list[tuple[str, str]] | None = getattr(exc, "field_errors", None)
    if listed is not None:
        return [FieldError(pointer=where, rule=rule) for where, rule in listed]
    if isinstance(exc, InvalidParameter):
        return [FieldError(pointer=exc.name, rule=exc.rule)]
    if isinstance(exc, InvalidCommand) and exc.field:
        return [FieldError(pointer=pointer(exc.field), rule=exc.rule)]
    return []


def pointer(field: str | Iterable[str | int]) -> str:
    """RFC 6901 pointer for a dotted field name or a location path (``~`` and ``/`` escaped)."""
    parts = field.split(".") if isinstance(field, str) else [str(p) for p in field]
    return "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in parts if p != "")


def validation_problem(exc: RequestValidationError, instance: str) -> Response:
    """FastAPI's own validation (query, path, header parameters) as INVALID_PARAMETER."""
    errors = []
    for error in exc.errors():
        location = [str(p) for p in error.get("loc", ())]
        name = location[-1] if location else "request"
        errors.append(FieldError(pointer=name, rule=describe_error(error)[1]))
    first = errors[0] if errors else FieldError(pointer="request", rule="is not valid")
    return problem(
        codes.INVALID_PARAMETER, f"{first.pointer}: {first.rule}", instance, errors=errors
    )


def instance_of(request: Request) -> str:
    """A problem's ``instance``: the matched route's path template (``/v1/orders/{order_no}``),
    so ids in the path (an account number, say) are not echoed; the path itself when no
    route matched."""
    template = getattr(request.scope.get("route"), "path", None)
    return template if isinstance(template, str) else request.url.path


def install(app: FastAPI) -> None:
    """Route every error the app can meet to a problem response."""

    async def on_ledger_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LedgerError)
        return refusal(exc, instance_of(request))

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return validation_problem(exc, instance_of(request))

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        path = instance_of(request)
        if exc.status_code == 405:
            return problem(codes.METHOD_NOT_ALLOWED, f"{request.method} is not taken here", path)
        if exc.status_code == 404:
            return problem(codes.NOT_FOUND, "no such resource", path)
        return problem(codes.INVALID_PARAMETER, "the request cannot be taken", path)

    app.add_exception_handler(LedgerError, on_ledger_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(HTTPException, on_http)
    # Anything else is answered by api/observe.py, which logs it without its text.


def unexpected(request_id: str, instance: str) -> Response:
    """The 500 for an error nobody foresaw: it says only that, and the request id the log
    line about it carries."""
    return problem(
        codes.LEDGER_ERROR,
        f"the server failed on this request (request id {request_id}); nothing was written",
        instance,
    )
