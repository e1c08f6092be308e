"""Purchase limits and linked accounts (3.1.5).

Accounts are linked when their orders share a keyed hash of address, IP, phone or recipient,
and links are transitive: the groups are the connected components of the graph of accounts
and signals, kept with union-find. Every node row holds its group's id (the group that
absorbs another keeps its id and relabels the other's nodes with one UPDATE; the larger group
survives, ties to the smaller id), so "who is linked to this account" is one indexed lookup.
The choice depends only on the events so far, never on how the log was cut into batches, so
a rebuild yields the same ids.

Purchases are kept per order and SKU; the quantity a group bought in a rule's current period
is a query (``ReadModels.group_quantity``), which stays right when groups merge.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from ledger.domain import limits as lim
from ledger.domain.order import events as ev
from projections.base import Handler, Projection, topic_of
from projections.batch import Batch
from projections.events import Event, when
from projections.schema import Table, columns

# Accounts and signals recur all through the log (an order's events come within days), and
# their rows are small (~0.5 KB): a rebuild keeps many more of them than of order rows. At
# 800k events, 20k missed ~25% of lookups and cost 40% of the projection's rebuild time.
LINK_CACHE_VALUES = 200_000

RULES = Table(
    name="limit_rules",
    columns=columns(
        "stream_id text, sku text, rule_version int, limit_qty int, period_days int, "
        "per_account bool, valid_from ts, defined_at ts, last_position int"
    ),
    key=("stream_id",),
    unique=(("sku",),),
    load_by="stream_id",
)
NODES = Table(
    name="link_nodes",
    columns=columns("node text, kind text, account_no text, group_id text, first_position int"),
    key=("node",),
    indexes=(("group_id", "kind"), ("account_no",)),
    load_by="node",
    cache_index="group_id",  # a merge relabels every node of the absorbed group
    index_early=True,  # ... with an UPDATE by group_id, also while a rebuild fills it
    cache_values=LINK_CACHE_VALUES,
)
GROUPS = Table(
    name="link_groups",
    columns=columns(
        "group_id text, size int, accounts int, created_position int, last_position int"
    ),
    key=("group_id",),
    load_by="group_id",
    cache_values=LINK_CACHE_VALUES,
)
PURCHASES = Table(
    name="limit_purchases",
    columns=columns(
        "order_stream text, sku text, order_no text, account_no text, quantity int, at ts, "
        "position int"
    ),
    key=("order_stream", "sku"),
    indexes=(("account_no", "sku", "at"), ("sku", "at")),
    load_by="order_stream",
)

SUBMITTED = topic_of(ev.OrderSubmitted)
PURCHASE_TOPICS = frozenset({SUBMITTED, topic_of(ev.OrderClosed)})
MERGED = "merged"  # batch scratch: group id -> the group that absorbed it in this batch


def node_names(account_no: str, linkage: dict[str, str]) -> list[tuple[str, str, str | None]]:
    """(node, kind, account) for an order: its account and each linkage signal it carries.

    A signal's node is ``<kind>@<year>:<digest>``: an order carries its digests under its
    year's linkage key and the previous year's, so orders up to a year apart share a node
    across a new year. A version 1 submission's ``<kind>`` (no year: one application-wide key)
    gives ``<kind>:<digest>``, as it always did."""
    found: list[tuple[str, str, str | None]] = [(f"account:{account_no}", "account", account_no)]
    for name, digest in sorted(linkage.items()):
        kind = name.split("@", 1)[0]
        if kind in lim.LINKAGE_KINDS and digest:
            found.append((f"{name}:{digest}", kind, None))
    return found


def find(merged: dict[str, str], group_id: str) -> str:
    while group_id in merged:
        group_id = merged[group_id]
    return group_id


def submission_nodes(e: Event) -> list[tuple[str, str, str | None]]:
    d = e.fields(ev.OrderSubmitted)
    return node_names(d.account_no, d.linkage)


def prefetch(events: Sequence[Event], b: Batch) -> None:
    nodes = [submission_nodes(e) for e in events if e.topic == SUBMITTED]
    b.prefetch("limit_purchases", [e.stream for e in events if e.topic in PURCHASE_TOPICS])
    b.prefetch("link_nodes", [name for found in nodes for name, _, _ in found])
    founders = [found[0][0] for found in nodes]  # the id a new group would get
    b.prefetch("link_groups", [*founders, *(row["group_id"] for row in b.rows("link_nodes"))])


def _survivor(b: Batch, groups: set[str]) -> str:
    found = [b.get("link_groups", g) for g in groups]
    rows = [r for r in found if r is not None]
    assert len(rows) == len(found), f"link group missing among {sorted(groups)}"
    best = min(rows, key=lambda r: (-r["size"], r["group_id"]))
    return str(best["group_id"])


def _merge(b: Batch, survivor: str, other: str) -> None:
    merged: dict[str, str] = b.scratch.setdefault(MERGED, {})
    kept = b.edit("link_groups", survivor)
    gone = b.get("link_groups", other)
    assert kept is not None and gone is not None
    kept["size"] += gone["size"]
    kept["accounts"] += gone["accounts"]
    b.delete("link_groups", other)
    merged[other] = survivor
    b.relabel("link_nodes", other, survivor)


def _link(e: Event, b: Batch, nodes: list[tuple[str, str, str | None]]) -> None:
    merged: dict[str, str] = b.scratch.setdefault(MERGED, {})
    groups = set()
    for name, _, _ in nodes:
        row = b.get("link_nodes", name)
        if row is not None:
            groups.add(find(merged, row["group_id"]))
    if groups:
        survivor = _survivor(b, groups)
        for other in sorted(groups - {survivor}):
            _merge(b, survivor, other)
    else:
        survivor = nodes[0][0]
        b.put(
            "link_groups",
            {
                "group_id": survivor,
                "size": 0,
                "accounts": 0,
                "created_position": e.position,
                "last_position": e.position,
            },
        )
    group = b.edit("link_groups", survivor)
    assert group is not None
    for name, kind, account in nodes:
        row = b.get("link_nodes", name)
        if row is None:
            b.put(
                "link_nodes",
                {
                    "node": name,
                    "kind": kind,
                    "account_no": account,
                    "group_id": survivor,
                    "first_position": e.position,
                },
            )
            group["size"] += 1
            group["accounts"] += account is not None
    group["last_position"] = e.position


def order_submitted(e: Event, b: Batch) -> None:
    d = e.fields(ev.OrderSubmitted)
    _link(e, b, submission_nodes(e))
    quantities: Counter[str] = Counter()
    for line in d.lines:
        quantities[line["sku"]] += line["quantity"]
    for sku, quantity in sorted(quantities.items()):
        b.put(
            "limit_purchases",
            {
                "order_stream": e.stream,
                "order_no": d.order_no,
                "sku": sku,
                "account_no": d.account_no,
                "quantity": quantity,
                "at": e.at,
                "position": e.position,
            },
        )


def order_closed(e: Event, b: Batch) -> None:
    """Closed before its contract formed, an order bought nothing (3.1.5 counts purchases);
    the core releases its limit count the same way (``limit/PurchaseReleased``)."""
    if e.fields(ev.OrderClosed).contract_formed:
        return
    b.prefetch("limit_purchases", [e.stream])
    bought = [r for r in b.rows("limit_purchases") if r["order_stream"] == e.stream]
    for row in bought:
        b.delete("limit_purchases", (e.stream, row["sku"]))


def finish(b: Batch) -> None:
    """Before writing: the node rows this batch holds point at their group's final id."""
    merged: dict[str, str] = b.scratch.get(MERGED, {})
    if not merged:
        return
    for row in b.rows("link_nodes"):
        row["group_id"] = find(merged, row["group_id"])


def rule_defined(e: Event, b: Batch) -> None:
    d = e.fields(lim.LimitRuleDefined)
    b.put(
        "limit_rules",
        {
            "stream_id": e.stream,
            "sku": d.sku,
            "rule_version": 1,
            "limit_qty": d.limit_qty,
            "period_days": d.period_days,
            "per_account": d.per_account,
            "valid_from": when(d.valid_from),
            "defined_at": e.at,
            "last_position": e.position,
        },
    )


def rule_revised(e: Event, b: Batch) -> None:
    row = b.edit("limit_rules", e.stream)
    if row is None:
        return
    d = e.fields(lim.LimitRuleRevised)
    row.update(
        rule_version=row["rule_version"] + 1,
        limit_qty=d.limit_qty,
        period_days=d.period_days,
        per_account=d.per_account,
        valid_from=when(d.valid_from),
        last_position=e.position,
    )


HANDLERS: dict[str, Handler] = {
    topic_of(ev.OrderSubmitted): order_submitted,
    topic_of(ev.OrderClosed): order_closed,
    topic_of(lim.LimitRuleDefined): rule_defined,
    topic_of(lim.LimitRuleRevised): rule_revised,
}


PROJECTION = Projection(
    name="limits",
    version=1,
    rebuild_cost=12,
    description="purchase limits per group of linked accounts (3.1.5)",
    tables=(RULES, NODES, GROUPS, PURCHASES),
    handlers=HANDLERS,
    prefetch=prefetch,
    finish=finish,
)
