"""F-codes and coupons (3.1.11): each code's current standing and its history.

Queries: by code; by account (holder or consumer); counts per campaign by kind and status.
"""

from __future__ import annotations

from typing import Any

from ledger.domain import entitlement as en
from projections.base import Handler, Projection, topic_of
from projections.batch import Batch
from projections.events import Event, when
from projections.schema import Table, columns

ENTITLEMENTS = Table(
    name="entitlements",
    columns=columns(
        "stream_id text, code text, kind text, campaign text, sku text, value_fen int, "
        "holder_account text, valid_until ts, issued_at ts, status text, consumed_order text, "
        "consumed_account text, consumed_at ts, times_consumed int, forfeited_order text, "
        "forfeited_ground text, forfeited_at ts, restored_rule text, restored_order text, "
        "restored_at ts, last_position int"
    ),
    key=("stream_id",),
    unique=(("code",),),
    indexes=(("campaign", "status"), ("consumed_account",), ("holder_account",)),
    load_by="stream_id",
)

HISTORY = Table(
    name="entitlement_history",
    columns=columns(
        "position int, code text, campaign text, step text, order_no text, account_no text, "
        "ground text, rule text, at ts"
    ),
    key=("position",),
    indexes=(("code", "position"), ("order_no",)),
)


def _history(b: Batch, e: Event, row: dict[str, Any], step: str, **fields: Any) -> None:
    b.add(
        "entitlement_history",
        {
            "position": e.position,
            "code": row["code"],
            "campaign": row["campaign"],
            "step": step,
            "order_no": fields.get("order_no"),
            "account_no": fields.get("account_no"),
            "ground": fields.get("ground"),
            "rule": fields.get("rule"),
            "at": e.at,
        },
    )


def issued(e: Event, b: Batch) -> None:
    d = e.fields(en.EntitlementIssued)
    row = {
        "stream_id": e.stream,
        "code": d.code,
        "kind": d.kind,
        "campaign": d.campaign,
        "sku": d.sku,
        "value_fen": d.value_fen,
        "holder_account": d.holder_account,
        "valid_until": when(d.valid_until),
        "issued_at": e.at,
        "status": "issued",
        "consumed_order": None,
        "consumed_account": None,
        "consumed_at": None,
        "times_consumed": 0,
        "forfeited_order": None,
        "forfeited_ground": None,
        "forfeited_at": None,
        "restored_rule": None,
        "restored_order": None,
        "restored_at": None,
        "last_position": e.position,
    }
    b.put("entitlements", row)
    _history(b, e, row, "issued", account_no=d.holder_account)


def consumed(e: Event, b: Batch) -> None:
    row = b.edit("entitlements", e.stream)
    if row is None:
        return
    d = e.fields(en.EntitlementConsumed)
    row.update(
        status="consumed",
        consumed_order=d.order_no,
        consumed_account=d.account_no,
        consumed_at=e.at,
        times_consumed=row["times_consumed"] + 1,
        last_position=e.position,
    )
    _history(b, e, row, "consumed", order_no=d.order_no, account_no=d.account_no)


def forfeited(e: Event, b: Batch) -> None:
    row = b.edit("entitlements", e.stream)
    if row is None:
        return
    d = e.fields(en.EntitlementForfeited)
    row.update(
        status="forfeited",
        forfeited_order=d.order_no,
        forfeited_ground=d.ground,
        forfeited_at=e.at,
        last_position=e.position,
    )
    _history(b, e, row, "forfeited", order_no=d.order_no, ground=d.ground)


def restored(e: Event, b: Batch) -> None:
    row = b.edit("entitlements", e.stream)
    if row is None:
        return
    d = e.fields(en.EntitlementRestored)
    row.update(
        status="restored",
        consumed_order=None,
        consumed_account=None,
        consumed_at=None,
        restored_rule=d.rule,
        restored_order=d.order_no,
        restored_at=e.at,
        last_position=e.position,
    )
    _history(b, e, row, "restored", order_no=d.order_no, rule=d.rule)


HANDLERS: dict[str, Handler] = {
    topic_of(en.EntitlementIssued): issued,
    topic_of(en.EntitlementConsumed): consumed,
    topic_of(en.EntitlementForfeited): forfeited,
    topic_of(en.EntitlementRestored): restored,
}

PROJECTION = Projection(
    name="entitlements",
    version=1,
    rebuild_cost=1,
    description="F-code and coupon consumption (3.1.11)",
    tables=(ENTITLEMENTS, HISTORY),
    handlers=HANDLERS,
)
