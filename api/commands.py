"""``POST /v1/commands/{type}``: one route per command type of the core.

The body is the command's own fields (its model in ``ledger/commands.py``, the one
definition, without ``type`` and ``command_id``): the route names the type, and the
``Idempotency-Key`` header (IETF httpapi draft) is the ``command_id``. A retry with the same
key and body gets the first response again and writes nothing; the same key with another
body is ``COMMAND_ID_REUSED`` (422); a retry while the first is still running in this
process is ``COMMAND_IN_PROGRESS`` (409). Keys are the ledger's command ids: kept for good.

``If-Match: "<version>"`` (RFC 9110 section 13.1.1) makes the command conditional on the
version of the stream it is about; a stale one is ``PRECONDITION_FAILED`` (412). A response
carries that version as ``ETag`` and the log position as ``Ledger-Position`` (and in the
body), for a read-your-writes query (``min_position``).
"""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ValidationError, create_model

from api.auth import ADMIN, SERVICE, require
from api.errors import IdempotencyKeyRequired, InvalidBody, InvalidParameter
from api.limits import parse_json
from api.problems import FieldError, pointer, problem_response
from api.views import examples
from ledger.application import CommandResult
from ledger.commands import COMMAND_CLASSES, Command, Model, describe_error, parse_command
from ledger.domain import codes
from ledger.domain.context import Actor
from ledger.domain.errors import InvalidCommand, LedgerError

if TYPE_CHECKING:
    from api.metrics import Metrics

ENVELOPE = ("type", "command_id")
REF = "#/components/schemas/{model}"  # where api/openapi.py puts the body schemas
# The rules the agreement leaves to the mall (promotions, purchase limits) are set by admins,
# and so are legal holds and erasures of a data subject's personal data (also at
# /v1/subjects/…/holds and /v1/subjects/…/erasure).
ADMIN_COMMANDS = frozenset(
    {
        "define_promotion",
        "define_purchase_limit",
        "place_legal_hold",
        "release_legal_hold",
        "request_erasure",
    }
)
_KEY = re.compile(r"^[A-Za-z0-9._:/@+-]{1,128}$")
_ETAG = re.compile(r'^(?:W/)?"(\d{1,18})"$')
MAX_FIELD_ERRORS = 20

router = APIRouter(prefix="/v1/commands", tags=["commands"])


class CommandResponse(BaseModel):
    """What an accepted command did: its events, the ids a later command needs, its
    position in the log and the version of the stream it is about."""

    model_config = examples(
        {
            "command_id": "pay-A1",
            "type": "receive_payment",
            "position": 8,
            "version": 3,
            "events": ["payment-id/Claimed", "order/PaymentReceived", "order/ContractFormed"],
            "result": {},
        }
    )

    command_id: str
    type: str
    position: int | None
    version: int | None
    events: list[str]
    result: dict[str, Any]


def body_model(command: type[Command]) -> type[BaseModel]:
    """The request body of ``command``: its fields less the envelope, from its one model."""
    fields: Any = {
        name: (info.annotation, info)
        for name, info in command.model_fields.items()
        if name not in ENVELOPE
    }
    model: type[BaseModel] = create_model(
        command.__name__ + "Body", __base__=Model, __doc__=command.__doc__, **fields
    )
    return model


def command_type(command: type[Command]) -> str:
    literal: str = command.model_fields["type"].annotation.__args__[0]  # type: ignore[union-attr]  # Literal["…"]
    return literal


def idempotency_key(request: Request) -> str:
    key = request.headers.get("idempotency-key")
    if key is None:
        raise IdempotencyKeyRequired("send an Idempotency-Key header; it is the command id")
    key = key.strip().strip('"')  # the draft's value is a quoted string (RFC 8941)
    if not _KEY.match(key):
        raise IdempotencyKeyRequired(
            "Idempotency-Key: 1-128 characters of A-Z a-z 0-9 . _ : / @ + -"
        )
    return key


def expected_version(request: Request) -> int | None:
    value = request.headers.get("if-match")
    if value is None:
        return None
    found = _ETAG.match(value.strip())
    if found is None:
        raise InvalidParameter("If-Match", 'must be one ETag of this API, such as "3"')
    return int(found.group(1))


def check_envelope(data: Any) -> None:
    """The body is an object without the envelope's fields; INVALID_COMMAND otherwise."""
    if not isinstance(data, dict):
        raise _invalid([FieldError(pointer="", rule="the body must be a JSON object")])
    for name in ENVELOPE:
        if name in data:
            rule = "comes from the route" if name == "type" else "comes from Idempotency-Key"
            raise _invalid([FieldError(pointer=f"/{name}", rule=rule)])


def with_path_fields(data: Any, from_path: dict[str, str]) -> Any:
    """The body with the fields the path gives; INVALID_COMMAND if the body has one too."""
    if not from_path or not isinstance(data, dict):
        return data
    for name in from_path:
        if name in data:
            raise _invalid([FieldError(pointer=f"/{name}", rule="comes from the path")])
    return {**data, **from_path}


def check_body(model: type[BaseModel], data: Any) -> None:
    """Validate against the body model; INVALID_COMMAND (422) naming every broken field."""
    try:
        model.model_validate(data)
    except ValidationError as exc:
        found = exc.errors(include_input=False, include_url=False)[:MAX_FIELD_ERRORS]
        raise _invalid([field_error(error) for error in found]) from None


def typed(model: type[BaseModel], data: Any, kind: str, key: str) -> Command:
    """The command, validated once by the core's own parser (the writer takes it as it is);
    if that refuses it, the body model names every broken field as a pointer."""
    check_envelope(data)
    try:
        return parse_command({**data, "type": kind, "command_id": key})
    except InvalidCommand:
        check_body(model, data)
        raise


def field_error(error: Any) -> FieldError:
    """Where and what: an unknown key is placed at the object holding it, never named (it
    may itself be personal data); the rule is worded by the commands' own describer."""
    location = list(error["loc"])
    if error["type"] == "extra_forbidden":
        location = location[:-1]
    return FieldError(pointer=pointer(location), rule=describe_error(error)[1])


def _invalid(errors: list[FieldError]) -> InvalidBody:
    return InvalidBody([(e.pointer, e.rule) for e in errors])


def accepted(result: CommandResult) -> Response:
    body = CommandResponse(
        command_id=result.command_id,
        type=result.command_type,
        position=result.position,
        version=result.version,
        events=result.events,
        result=result.result,
    ).model_dump()
    headers = {}
    if result.version is not None:
        headers["ETag"] = f'"{result.version}"'
    if result.position is not None:
        headers["Ledger-Position"] = str(result.position)
    if result.duplicate:
        headers["Idempotent-Replayed"] = "true"
    return Response(orjson.dumps(body), 200, headers=headers, media_type="application/json")


def remembered(exc: LedgerError, command: Command) -> LedgerError:
    """A refusal recorded as the command's outcome reads the same on every retry: its detail
    is made of the command and code alone (the record keeps no message)."""
    if exc.remembered:
        exc.message = f"{command.type} {command.command_id} was refused {exc.code}"
    return exc


async def run_command(
    request: Request,
    model: type[BaseModel],
    kind: str,
    actor: Actor,
    from_path: dict[str, str] | None = None,
) -> Any:
    """Check the request, hand the command to the writer, answer with its outcome; every
    outcome is counted in ``ledger_commands_total`` (api/metrics.py). ``from_path``: fields
    the route's path gives (``/v1/subjects/{subject_id}/holds``), which the body may not."""
    metrics: Metrics = request.app.state.metrics
    try:
        result = await _run(request, model, kind, actor, from_path or {})
    except LedgerError as exc:
        metrics.observe_command(kind, int(exc.entry.status), exc.code, replayed=False)
        raise
    except Exception:  # a defect: api/observe.py answers it 500
        metrics.observe_command(kind, 500, codes.LEDGER_ERROR.code, replayed=False)
        raise
    metrics.observe_command(kind, 200, None, replayed=result.duplicate)
    return accepted(result)


async def _run(
    request: Request, model: type[BaseModel], kind: str, actor: Actor, from_path: dict[str, str]
) -> CommandResult:
    key = idempotency_key(request)
    version = expected_version(request)
    data = parse_json(await request.body())
    command = typed(model, with_path_fields(data, from_path), kind, key)
    writer = request.app.state.writer
    try:
        result: CommandResult = await asyncio.wrap_future(writer.submit(command, actor, version))
    except LedgerError as exc:
        raise remembered(exc, command) from None
    return result


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: problem_response(text)
    for status, text in [
        (400, "IDEMPOTENCY_KEY_REQUIRED, INVALID_JSON or INVALID_PARAMETER"),
        (401, "UNAUTHENTICATED"),
        (403, "FORBIDDEN"),
        (404, "NOT_FOUND: the command names something the ledger lacks"),
        (409, "a rule refused the command, CONFLICT or COMMAND_IN_PROGRESS"),
        (412, "PRECONDITION_FAILED"),
        (413, "REQUEST_TOO_LARGE"),
        (415, "UNSUPPORTED_MEDIA_TYPE"),
        (422, "INVALID_COMMAND, COMMAND_ID_REUSED, or a rule the fields break"),
        (503, "STORAGE_UNAVAILABLE (with Retry-After)"),
    ]
}


def add_route(command: type[Command], model: type[BaseModel]) -> None:
    kind = command_type(command)
    roles = (ADMIN,) if kind in ADMIN_COMMANDS else (SERVICE,)

    async def endpoint(request: Request) -> Any:
        return await run_command(request, model, kind, request.state.actor)

    router.add_api_route(
        f"/{kind}",
        endpoint,
        methods=["POST"],
        name=kind,
        summary=kind.replace("_", " "),
        description=f"Role: {'/'.join(roles)}. " + (command.__doc__ or ""),
        response_model=CommandResponse,
        responses=ERROR_RESPONSES,
        dependencies=[Depends(require(*roles))],  # sets request.state.actor
        openapi_extra=request_body_spec(model, kind),
    )


def request_body_spec(model: type[BaseModel], kind: str) -> dict[str, Any]:
    """The body schema for OpenAPI; ``$defs`` are hoisted into components by api/openapi.py."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}
            },
        },
        "parameters": [
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": True,
                "description": "the command id: a retry with the same key gets the first response",
                "schema": {"type": "string", "pattern": _KEY.pattern},
                "example": f"{kind}-0001",
            },
            {
                "name": "If-Match",
                "in": "header",
                "required": False,
                "description": "the version (ETag) the command's stream must still have",
                "schema": {"type": "string"},
                "example": '"3"',
            },
        ],
    }


# The body models by command type (api/openapi.py puts their schemas in the document).
BODY_MODELS: dict[str, type[BaseModel]] = {}
for _command in COMMAND_CLASSES:
    BODY_MODELS[command_type(_command)] = body_model(_command)
    add_route(_command, BODY_MODELS[command_type(_command)])
