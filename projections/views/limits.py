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

A data subject whose processing is restricted (``ProcessingRestricted``, PIPL 47 para 2: its
data is stored, not processed) or who is erased (``SubjectErased``, PIPL 47) is *withdrawn*
from linkage (``withdraw``): every link its orders made so far goes (``link_edges``), the
group it was in is recomputed from the links that remain, so accounts linked only through it
fall apart, and every signal node no remaining account carries is deleted, digest and all.
Its account node stays (an account number is a business key), marked ``withheld`` with the
basis; while it is, its new orders link nobody, except under ``purpose_ended``, whose
restriction covers the orders whose purpose ended, not a new one (``DataSubject.restricts``).
The view has no clock, so a restriction that runs out (``until``) does not link the subject
again: by then its data is due for erasure or de-identification, not for processing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from ledger.domain import data_subject as ds
from ledger.domain import limits as lim
from ledger.domain.order import events as ev
from projections.base import Handler, Projection, topic_of
from projections.batch import Batch
from projections.db import Row
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
    # withheld: on an account node, the basis it was withdrawn from linkage on (or NULL).
    columns=columns(
        "node text, kind text, account_no text, group_id text, first_position int, withheld text"
    ),
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
# Which signal nodes each account's orders carry: what a group is recomputed from when a
# subject is withdrawn (union-find keeps no edges, and cannot split a group without them).
EDGES = Table(
    name="link_edges",
    columns=columns("account_no text, node text, first_position int"),
    key=("account_no", "node"),
    load_by="account_no",
    cache_values=LINK_CACHE_VALUES,
)
# A data subject's lifecycle stream -> its id (its events name the stream, not the subject).
SUBJECTS = Table(
    name="link_subjects",
    columns=columns("stream_id text, subject_id text"),
    key=("stream_id",),
    load_by="stream_id",
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
SUBJECT_TOPICS = frozenset({topic_of(ds.ProcessingRestricted), topic_of(ds.SubjectErased)})
MERGED = "merged"  # batch scratch: group id -> the group that absorbed it in this batch
ERASED_BASIS = "erased"  # ``withheld`` of an erased subject's account
# Bases under which a withheld subject's new orders link nobody either: every order of the
# subject is covered (``DataSubject.restricts``); ``purpose_ended`` covers only the old ones.
WITHHOLD_NEW = frozenset({"account_cancelled", "erasure_deferred", ERASED_BASIS})


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
    b.prefetch("link_edges", [found[0][2] for found in nodes])
    b.prefetch("link_subjects", [e.stream for e in events if e.topic in SUBJECT_TOPICS])
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
    """Join the order's account and signal nodes into one group (merging the groups they
    were in), and record which signals the account carries (``link_edges``)."""
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
                    "withheld": None,
                },
            )
            group["size"] += 1
            group["accounts"] += account is not None
    group["last_position"] = e.position
    account_no = nodes[0][2]
    for name, _, _ in nodes[1:]:
        if b.get("link_edges", (account_no, name)) is None:
            b.put(
                "link_edges",
                {"account_no": account_no, "node": name, "first_position": e.position},
            )


def order_submitted(e: Event, b: Batch) -> None:
    d = e.fields(ev.OrderSubmitted)
    nodes = submission_nodes(e)
    account = b.get("link_nodes", nodes[0][0])
    if account is not None and account["withheld"] in WITHHOLD_NEW:
        nodes = nodes[:1]  # its signals link nobody (PIPL 47 para 2); it still buys
    _link(e, b, nodes)
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


# -- withdrawal from linkage (PIPL 47 para 2, PIPL 47) ------------------------------------------


def subject_registered(e: Event, b: Batch) -> None:
    d = e.fields(ds.DataSubjectRegistered)
    b.put("link_subjects", {"stream_id": e.stream, "subject_id": d.subject_id})


def processing_restricted(e: Event, b: Batch) -> None:
    withdraw(e, b, e.fields(ds.ProcessingRestricted).basis)


def subject_erased(e: Event, b: Batch) -> None:
    withdraw(e, b, ERASED_BASIS)


def withdraw(e: Event, b: Batch, basis: str) -> None:
    """The subject of ``e``'s stream leaves linkage (see the module): its links go, its group
    is recomputed, signal nodes no one else carries are deleted; its account is ``withheld``."""
    found = b.get("link_subjects", e.stream)
    if found is None:
        return
    account_no = str(found["subject_id"])
    node = f"account:{account_no}"
    row = b.edit("link_nodes", node)
    if row is None:  # no order yet: its first order must still know
        _link(e, b, [(node, "account", account_no)])
        row = b.edit("link_nodes", node)
        assert row is not None
    row["withheld"] = basis
    merged: dict[str, str] = b.scratch.setdefault(MERGED, {})
    group_id = find(merged, row["group_id"])
    members = _members(b, group_id)
    accounts = sorted(r["account_no"] for r in members if r["kind"] == "account")
    b.prefetch("link_edges", accounts)
    edges = [r for r in list(b.rows("link_edges")) if r["account_no"] in set(accounts)]
    for edge in edges:
        if edge["account_no"] == account_no:
            b.delete("link_edges", (account_no, edge["node"]))
    others = [r for r in edges if r["account_no"] != account_no]
    kept = [(f"account:{r['account_no']}", r["node"]) for r in others]
    _regroup(e, b, group_id, members, kept)


def _members(b: Batch, group_id: str) -> list[Row]:
    """Every node row of group ``group_id`` as this batch sees it: the table's rows under
    its id or an id merged into it in this batch, and the batch's own."""
    merged: dict[str, str] = b.scratch.setdefault(MERGED, {})
    ids = [group_id, *(old for old in merged if find(merged, old) == group_id)]
    b.prefetch_where("link_nodes", "group_id", ids)
    return [r for r in list(b.rows("link_nodes")) if find(merged, r["group_id"]) == group_id]


def _regroup(
    e: Event, b: Batch, group_id: str, members: list[Row], edges: list[tuple[str, str]]
) -> None:
    """Recompute group ``group_id`` from ``edges`` (account node, signal node): each connected
    component becomes a group (the one holding ``group_id``'s founder keeps the id, the others
    take their earliest account's node), and a signal node left without an edge is deleted."""
    parent = {r["node"]: r["node"] for r in members}

    def root(node: str) -> str:
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for account, signal in edges:
        parent[root(signal)] = root(account)
    carried = {signal for _, signal in edges}
    components: dict[str, list[Row]] = {}
    for r in sorted(members, key=lambda r: (r["first_position"], r["node"])):
        if r["kind"] != "account" and r["node"] not in carried:
            b.delete("link_nodes", r["node"])  # nothing derived from the subject stays
        else:
            components.setdefault(root(r["node"]), []).append(r)
    merged: dict[str, str] = b.scratch.setdefault(MERGED, {})
    b.delete("link_groups", group_id)
    for rows in components.values():
        names = [r["node"] for r in rows]
        accounts = [r["node"] for r in rows if r["kind"] == "account"]
        new_id = group_id if group_id in names else accounts[0]
        merged.pop(new_id, None)  # an id absorbed earlier in this batch is a group again
        for r in rows:
            edited = b.edit_indexed("link_nodes", r["node"])
            assert edited is not None
            edited["group_id"] = new_id
        b.put(
            "link_groups",
            {
                "group_id": new_id,
                "size": len(rows),
                "accounts": sum(r["kind"] == "account" for r in rows),
                "created_position": e.position,
                "last_position": e.position,
            },
        )


HANDLERS: dict[str, Handler] = {
    topic_of(ev.OrderSubmitted): order_submitted,
    topic_of(ev.OrderClosed): order_closed,
    topic_of(lim.LimitRuleDefined): rule_defined,
    topic_of(lim.LimitRuleRevised): rule_revised,
    topic_of(ds.DataSubjectRegistered): subject_registered,
    topic_of(ds.ProcessingRestricted): processing_restricted,
    topic_of(ds.SubjectErased): subject_erased,
}


PROJECTION = Projection(
    name="limits",
    # 2: restricted and erased subjects withdrawn from linkage (link_edges, link_subjects)
    version=2,
    rebuild_cost=12,
    description="purchase limits per group of linked accounts (3.1.5)",
    tables=(RULES, NODES, GROUPS, EDGES, SUBJECTS, PURCHASES),
    handlers=HANDLERS,
    prefetch=prefetch,
    finish=finish,
)
