"""Regulators' exports over HTTP (ECL 25; issue 12 item 7; the API issue's ``regulator``
role: "only its own export requests and their files").

- ``POST /v1/exports`` (regulator): file a request, the fields of ``ledger export request``;
  ``Idempotency-Key`` required, and a retry with it answers the same request (201 both times,
  ``Idempotent-Replayed: true`` the second), another body under it is 422
  ``COMMAND_ID_REUSED``. The request records the filing key's id and role.
- ``GET /v1/exports`` (regulator: its own; auditor, admin: all), ``GET
  /v1/exports/{request_id}``: requests with their status and bags. Another regulator's
  request is 404 ``NOT_FOUND``, worded as for an id that does not exist.
- ``POST /v1/exports/{request_id}/bags`` (regulator, its own requests): produce the bag now,
  from the latest checkpoint, into the export store (``LEDGER_EXPORT_DIR``), recorded as
  ``export/Written``; synchronous (the answer comes when the bag is written and recorded).
- ``GET /v1/exports/{request_id}/bags/{bag_id}`` (regulator: its own; auditor, admin: all,
  as in the console, to run the same check): the bag as a tar stream
  (``application/x-tar``), to unpack and check with ``ledger verify-export DIR --public-key
  FILE`` or the bag's own ``data/verify_export.py``.

The work is replay/export_requests.py's, which the console calls too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, TypeAdapter
from starlette.concurrency import run_in_threadpool

from api.auth import ADMIN, AUDITOR, REGULATOR, require
from api.commands import check_body, idempotency_key
from api.limits import parse_json
from api.pages import MAX_TOKEN_CHARS, PageTokens, scope_of
from api.problems import problem_response
from api.queries import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, known_parameters_for
from api.views import examples
from ledger.domain.context import Actor
from ledger.domain.errors import NotFound
from ledger.domain.export_request import REQUEST_ID_RE
from replay.export_requests import (
    BAG_ID_RE,
    BagInfo,
    ExportRequestFields,
    RequestView,
    bag_path,
    file_request,
    list_requests,
    produce_bag,
    tar_stream,
    visible_request,
)
from replay.signed_note import Signer
from replay.signing_key import load_signer

TAR_MEDIA_TYPE = "application/x-tar"
VIEWERS = (REGULATOR, AUDITOR, ADMIN)
EXPORT_ERRORS: dict[int | str, dict[str, Any]] = {
    status: problem_response(text)
    for status, text in [
        (400, "IDEMPOTENCY_KEY_REQUIRED, INVALID_JSON or INVALID_PARAMETER"),
        (401, "UNAUTHENTICATED"),
        (403, "FORBIDDEN"),
        (404, "NOT_FOUND: no such request or bag (or another regulator's), or no checkpoint yet"),
        (409, "CONFLICT: the request changed while a bag was being recorded; retry"),
        (413, "REQUEST_TOO_LARGE"),
        (415, "UNSUPPORTED_MEDIA_TYPE"),
        (422, "INVALID_COMMAND (names the field and the rule) or COMMAND_ID_REUSED"),
        (503, "STORAGE_UNAVAILABLE (with Retry-After)"),
    ]
}
router = APIRouter(prefix="/v1/exports", tags=["exports"], responses=EXPORT_ERRORS)
RegulatorActor = Annotated[Actor, Depends(require(REGULATOR))]
ViewerActor = Annotated[Actor, Depends(require(*VIEWERS))]
RequestId = Annotated[
    str,
    PathParam(pattern=f"^{REQUEST_ID_RE.pattern}$", description="an export request's id",
              examples=["exp-3cc6683842e1"]),
]  # fmt: skip
BagId = Annotated[
    str,
    PathParam(pattern=f"^{BAG_ID_RE.pattern}$", description="a bag's id: its manifest's SHA-256",
              examples=["9f2c" * 16]),
]  # fmt: skip

PageSize = Annotated[
    int, Query(ge=1, le=MAX_PAGE_SIZE, description=f"requests per page, at most {MAX_PAGE_SIZE}")
]
PageToken = Annotated[
    str | None,
    Query(min_length=1, max_length=MAX_TOKEN_CHARS,
          description="the next_page_token of the previous page"),
]  # fmt: skip

BAG_EXAMPLE = {
    "bag_id": "9f2c" * 16,
    "checkpoint_size": 3236,
    "counts": {"orders": 12, "payments": 20, "logistics": 31, "returns": 4, "events": 97},
    "produced_at": "2026-12-01T02:10:00Z",
    "produced_by": {"key_id": "5e0c3a9d41b2", "role": "regulator"},
    "download": f"/v1/exports/exp-3cc6683842e1/bags/{'9f2c' * 16}",
}
REQUEST_EXAMPLE = {
    "request_id": "exp-3cc6683842e1",
    "authority": "上海市市场监督管理局",
    "reference": "SAMR-2026-0042",
    "basis": "ECL 25",
    "scope": {"since": "2026-03-01T00:00:00+08:00", "until": "2026-04-01T00:00:00+08:00",
              "seller": "xiaomi-self", "account": None, "sku": None, "region": "CN-SH"},
    "personal_data": False,
    "filed_at": "2026-12-01T02:00:00Z",
    "filed_by": {"key_id": "5e0c3a9d41b2", "role": "regulator"},
    "status": "produced",
    "bags": [BAG_EXAMPLE],
}  # fmt: skip
BODY_EXAMPLE = {
    "authority": "上海市市场监督管理局",
    "reference": "SAMR-2026-0042",
    "basis": "ECL 25",
    "since": "2026-03-01T00:00:00+08:00",
    "until": "2026-04-01T00:00:00+08:00",
    "seller": "xiaomi-self",
    "region": "CN-SH",
    "personal_data": False,
}


class BagAnswer(BagInfo):
    __doc__ = BagInfo.__doc__
    model_config = examples(BAG_EXAMPLE)


class ExportRequestAnswer(RequestView):
    __doc__ = RequestView.__doc__
    model_config = examples(REQUEST_EXAMPLE)

    bags: list[BagAnswer]  # type: ignore[assignment]  # the same bags, documented with an example


class ExportRequestPage(BaseModel):
    """Export requests, oldest first; ``next_page_token`` null on the last page."""

    model_config = examples({"items": [REQUEST_EXAMPLE], "next_page_token": None})

    items: list[ExportRequestAnswer]
    next_page_token: str | None


def _answer(view: RequestView) -> ExportRequestAnswer:
    return ExportRequestAnswer.model_validate(view, from_attributes=True)


def _body_spec() -> dict[str, Any]:
    """The body's schema and example, and the Idempotency-Key header, for the document."""
    schema = TypeAdapter(ExportRequestFields).json_schema()
    content = {"schema": schema, "example": BODY_EXAMPLE}
    return {
        "requestBody": {"required": True, "content": {"application/json": content}},
        "parameters": [_IDEMPOTENCY_HEADER],
    }


_IDEMPOTENCY_HEADER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": True,
    "description": "a retry with the same key answers what the first call made, writing nothing",
    "schema": {"type": "string", "pattern": r"^[A-Za-z0-9._:/@+-]{1,128}$"},
    "example": "samr-2026-0042-1",
}


@router.post(
    "",
    status_code=201,
    response_model=ExportRequestAnswer,
    openapi_extra=_body_spec(),
    dependencies=[Depends(known_parameters_for(REGULATOR))],
)
async def file(request: Request, response: Response, actor: RegulatorActor) -> Any:
    """File an export request (``ledger export request``'s fields): recorded as
    ``export/Requested`` with this key's id. A period that ends before it starts is 422
    ``INVALID_COMMAND`` naming ``scope.until``."""
    key = idempotency_key(request)
    data = parse_json(await request.body())
    check_body(ExportRequestFields, data)
    fields = ExportRequestFields.model_validate(data)
    ledger = request.app.state.ledger
    view, replayed = await run_in_threadpool(file_request, ledger, actor, fields, key)
    response.headers["Location"] = f"/v1/exports/{view.request_id}"
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return _answer(view)


@router.get(
    "",
    response_model=ExportRequestPage,
    dependencies=[Depends(known_parameters_for(*VIEWERS))],
)
async def listed(
    request: Request, actor: ViewerActor, page_size: PageSize = DEFAULT_PAGE_SIZE,
    page_token: PageToken = None,
) -> Any:  # fmt: skip
    """The export requests the key may see, oldest first: a regulator's own, every one for
    an auditor or admin. Read from the log itself, so always current."""
    tokens: PageTokens = request.app.state.page_tokens
    scope = scope_of("exports", {"viewer": actor.key_id})
    after = 0 if page_token is None else int(tokens.open(scope, page_token)[0])

    def read() -> tuple[list[RequestView], int | None]:
        with request.app.state.readers.probe.runtime() as rt:
            return list_requests(request.app.state.ledger, rt, actor, after, page_size)

    views, next_after = await run_in_threadpool(read)
    token = None if next_after is None else tokens.seal(scope, [next_after])
    return ExportRequestPage(items=[_answer(v) for v in views], next_page_token=token)


@router.get(
    "/{request_id}",
    response_model=ExportRequestAnswer,
    dependencies=[Depends(known_parameters_for(*VIEWERS))],
)
async def shown(request: Request, request_id: RequestId, actor: ViewerActor) -> Any:
    """One request, its status and its bags; 404 ``NOT_FOUND`` for an id that does not
    exist and for another regulator's request alike."""
    ledger = request.app.state.ledger
    return _answer(await run_in_threadpool(visible_request, ledger, request_id, actor))


@router.post(
    "/{request_id}/bags",
    status_code=201,
    response_model=BagAnswer,
    openapi_extra={"parameters": [_IDEMPOTENCY_HEADER]},
    dependencies=[Depends(known_parameters_for(REGULATOR))],
)
async def produce(
    request: Request, response: Response, request_id: RequestId, actor: RegulatorActor
) -> Any:
    """Produce the request's bag now, from the latest checkpoint (no body): the records in
    its scope, each event row with its inclusion proof, the signed manifest, the verifier
    script; recorded as ``export/Written`` under this key before it is answered. 404
    ``NOT_FOUND`` for another regulator's request, or while the log has no checkpoint
    (``ledger seal`` first). The same ``Idempotency-Key`` again answers the same bag."""
    key = idempotency_key(request)
    config = request.app.state.exports

    def make() -> tuple[BagInfo, bool]:
        signer = signer_of(config)
        with request.app.state.readers.probe.runtime() as rt:
            return produce_bag(request.app.state.ledger, rt, actor, request_id, signer,
                               config.export_dir, key)  # fmt: skip

    bag, replayed = await run_in_threadpool(make)
    answer = BagAnswer.model_validate(bag, from_attributes=True)
    response.headers["Location"] = answer.download
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return answer


@router.get(
    "/{request_id}/bags/{bag_id}",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "the bag as a POSIX tar archive, its files under `<request_id>/`",
            "content": {TAR_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
        }
    },
    dependencies=[Depends(known_parameters_for(*VIEWERS))],
)
async def download(
    request: Request, request_id: RequestId, bag_id: BagId, actor: ViewerActor
) -> StreamingResponse:
    """Download a bag (a regulator: of its own request; an auditor, an admin: of any) as a
    tar stream; unpack it and run ``ledger
    verify-export DIR --public-key FILE`` (or ``python DIR/data/verify_export.py DIR
    --public-key FILE``). ``Cache-Control: no-store``: it may hold personal data."""
    config = request.app.state.exports
    ledger = request.app.state.ledger
    path = await run_in_threadpool(bag_path, ledger, config.export_dir, request_id, bag_id, actor)
    name = f"{request_id}-{bag_id[:12]}"
    headers = {
        "Content-Disposition": f'attachment; filename="{name}.tar"',
        "Cache-Control": "no-store",
    }
    return StreamingResponse(tar_stream(path, name), media_type=TAR_MEDIA_TYPE, headers=headers)


@dataclass(frozen=True)
class ExportConfig:
    """Where an app keeps produced bags (``LEDGER_EXPORT_DIR``) and finds the key that signs
    them (``LEDGER_SIGNING_KEY``, named ``LEDGER_LOG_NAME``)."""

    export_dir: Path
    signing_key_path: Path
    log_name: str


def signer_of(config: ExportConfig) -> Signer:
    """The checkpoint signing key (``LEDGER_SIGNING_KEY``), never made here: a ledger without
    one was never sealed, so it has no checkpoint to export from."""
    try:
        return load_signer(config.signing_key_path, config.log_name, create=False)
    except FileNotFoundError:
        raise NotFound("the log has no checkpoint yet: run `ledger seal` first") from None
