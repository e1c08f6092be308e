"""Verifiable history over HTTP, for auditors and regulators (issue 12, items 1 and 5):
the kept checkpoints, inclusion and consistency proofs against them, and any order,
entitlement or account as of a moment or a log position.

The proofs are the ones ``ledger prove`` prints (replay/prove.py): an inclusion proof is a
C2SP ``tlog-proof@v1`` text whose ``extra`` line carries the event row's bytes, so a client
checks it with the ledger's public key alone. Nothing here writes; sealing is ``ledger seal``.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from api.access import HISTORY
from api.commands import ERROR_RESPONSES
from api.errors import InvalidParameter
from api.queries import At, KeyId, known_parameters_for
from api.views import examples
from ledger.application import Ledger
from ledger.domain.errors import InvalidCommand
from replay.as_of import AsOf, replay_as_of
from replay.checkpoint import Checkpoint
from replay.prove import prove_consistency, prove_inclusion
from replay.signed_note import split_note
from replay.tiles import TileStore

MAX_POSITION = 2**62
PARAMETER_OF = {"--as-of": "at", "--position": "position"}  # replay_as_of's names
MAX_CHECKPOINTS_PAGE = 1000

router = APIRouter(
    prefix="/v1",
    tags=["history"],
    responses=ERROR_RESPONSES,
    dependencies=[Depends(known_parameters_for(*HISTORY))],
)
Position = Annotated[int, Path(ge=1, le=MAX_POSITION, description="a log position")]
Size = Annotated[int, Query(ge=1, le=MAX_POSITION, description="a checkpoint's tree size")]


NOTE_EXAMPLE = (
    "mall-ledger.local/log\n3236\nKLSH4YAt8xUN8AI/5IWU4yqNkyvRrtLXSikFaHmISRU=\n\n"
    "— mall-ledger.local/log mnLvsLv01ULliv1GY5wtekOT0jS68OCJjCKU9YL8XWxYBqUK+4uJOIS2nFWTFZOEURJW"
    "5s0u/sbs56Pmmg6iXCxERw8=\n"
)


class CheckpointInfo(BaseModel):
    """A kept checkpoint: its tree size and the signed C2SP note."""

    model_config = examples({"size": 3236, "checkpoint": NOTE_EXAMPLE})

    size: int
    checkpoint: str


class CheckpointList(BaseModel):
    """Kept checkpoints, smallest first."""

    model_config = examples({"checkpoints": [{"size": 3236, "checkpoint": NOTE_EXAMPLE}]})

    checkpoints: list[CheckpointInfo]


class InclusionProof(BaseModel):
    """That the event at ``position`` is leaf ``index`` of the checkpoint of ``size``."""

    model_config = examples(
        {"position": 7, "index": 6, "size": 3236, "tlog_proof": "c2sp.org/tlog-proof@v1\n…"}
    )
    position: int
    index: int
    size: int
    tlog_proof: str


class ConsistencyProof(BaseModel):
    """That the checkpoint of ``old_size`` is a prefix of that of ``new_size`` (RFC 9162
    2.1.4): base64 ``hashes`` and both signed checkpoints."""

    model_config = examples(
        {
            "old_size": 3236,
            "new_size": 3300,
            "old_checkpoint": NOTE_EXAMPLE,
            "new_checkpoint": NOTE_EXAMPLE.replace("3236", "3300"),
            "hashes": ["ACdP4Z4Y/t1JUxUvBzMuqj1y+apw2ka6FTnsLRuiIFA="],
        }
    )

    old_size: int
    new_size: int
    old_checkpoint: str
    new_checkpoint: str
    hashes: list[str]


class StreamAsOf(BaseModel):
    """A stream as of a moment or position: its fields and the events that led there."""

    model_config = examples(
        {
            "kind": "order",
            "key": "demo1-000001",
            "version": 1,
            "position": 5,
            "state": {"order_no": "demo1-000001", "status": "awaiting_payment"},
            "events": [
                {
                    "version": 1,
                    "position": 5,
                    "at": "2026-03-01T00:10:32Z",
                    "event": "OrderSubmitted",
                    "facts": {"order_no": "demo1-000001"},
                }
            ],
        }
    )

    kind: str
    key: str
    version: int
    position: int
    state: dict[str, Any]
    events: list[dict[str, Any]]


def _runtime(request: Request) -> Any:
    return request.app.state.readers.probe.runtime()


@router.get("/log/checkpoints", response_model=CheckpointList)
async def checkpoints(
    request: Request,
    after_size: Annotated[int, Query(ge=0, le=MAX_POSITION)] = 0,
    page_size: Annotated[int, Query(ge=1, le=MAX_CHECKPOINTS_PAGE)] = 100,
) -> Any:
    """The kept checkpoints of more than ``after_size`` events, smallest first."""

    def read() -> list[tuple[int, str]]:
        with _runtime(request) as rt, rt.db.snapshot() as cur:
            kept = TileStore(rt.db).checkpoints(cur)
        return [(size, note) for size, note in kept if size > after_size][:page_size]

    kept = await run_in_threadpool(read)
    return CheckpointList(checkpoints=[CheckpointInfo(size=s, checkpoint=n) for s, n in kept])


@router.get("/log/proofs/inclusion/{position}", response_model=InclusionProof)
async def inclusion(request: Request, position: Position, size: Size | None = None) -> Any:
    """The event at ``position`` against the checkpoint of ``size`` (default the latest)."""

    def prove() -> InclusionProof:
        with _runtime(request) as rt:
            proof = prove_inclusion(rt, position, size)
        tree = Checkpoint.parse(split_note(proof.checkpoint)[0]).size
        return InclusionProof(
            position=position, index=proof.index, size=tree, tlog_proof=proof.text()
        )

    return await run_in_threadpool(prove)


@router.get("/log/proofs/consistency", response_model=ConsistencyProof)
async def consistency(request: Request, old_size: Size, new_size: Size) -> Any:
    """That the checkpoint of ``old_size`` is a prefix of that of ``new_size``."""

    def prove() -> ConsistencyProof:
        with _runtime(request) as rt:
            proof = prove_consistency(rt, old_size, new_size)
        return ConsistencyProof(
            old_size=proof.old_size,
            new_size=proof.new_size,
            old_checkpoint=proof.old,
            new_checkpoint=proof.new,
            hashes=[base64.b64encode(h).decode() for h in proof.hashes],
        )

    return await run_in_threadpool(prove)


@router.get("/history/{kind}/{key}", response_model=StreamAsOf)
async def as_of(
    request: Request,
    kind: Literal["order", "entitlement", "account"],
    key: KeyId,
    at: At = None,
    position: Annotated[int | None, Query(ge=1, le=MAX_POSITION)] = None,
) -> Any:
    """An order's, entitlement's or account's state as of ``at`` or ``position`` (exactly
    one), with the events that led there; personal fields sealed, as stored."""
    if (at is None) == (position is None):
        raise InvalidParameter("at", "give exactly one of at and position")

    def read() -> dict[str, Any]:
        ledger = request.app.state.ledger
        return as_of_over_http(ledger, kind, key, at=at, position=position).as_dict()

    return await run_in_threadpool(read)


def as_of_over_http(
    ledger: Ledger, kind: str, key: str, *, at: datetime | None, position: int | None
) -> AsOf:
    """``replay_as_of`` for a query string (the API's and the console's): a refusal names
    the parameter (``at``, ``position``), not the CLI's option, as ``InvalidParameter``."""
    try:
        return replay_as_of(ledger, kind, key, at=at, position=position)
    except InvalidCommand as exc:
        raise InvalidParameter(PARAMETER_OF.get(exc.field, exc.field), exc.rule) from None
