"""Queries on the read models, for backend services (DOMAIN.md §8).

Every query takes ``after``, the position a command returned, and ``timeout_s`` (``Fresh``).
The query then first waits (``timeout_s``) until the projection it reads has applied that
position, so a service reads its own writes; ``ProjectionBehind`` if it does not get there in
time. A database that cannot be reached or fails is ``StorageUnavailable``
(``STORAGE_UNAVAILABLE``), as on the write side: no driver exception reaches the caller.

Lists are read a page at a time in keyset order (``Listing``, ``ReadModels.page``): a page
ends at a row and the next one starts strictly after its sort key, never at an OFFSET. A
query's answer comes with the position its projection had applied (``Page.position``, and
``ReadModels.position`` after any query), read in the same transaction as its rows.

Personal fields come back sealed (``s2:<m|d>:<subject>:…`` tokens);
``Ledger.reveal(token, field, order_no)`` unseals one for a role allowed to see it, and reads
``[erased]`` once the subject's key is gone.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypedDict, Unpack

from ledger.driver_errors import storage_errors
from ledger.storage_url import StorageUrl
from projections.db import Row, iso
from projections.engine import Runtime, ensure_live, open_runtime
from projections.freshness import DEFAULT_TIMEOUT_S, Freshness
from projections.registry import BY_NAME, PROJECTIONS
from projections.schema import INT, LIVE, TEXT, TS, Table
from projections.tracking import tracking_name

MAX_ROWS = 1000


class Fresh(TypedDict, total=False):
    """How fresh a query's answer must be, as every query takes it: ``after`` the position a
    command returned (wait until the projection read has applied it), ``timeout_s`` how long
    to wait (``ProjectionBehind`` after; default ``DEFAULT_TIMEOUT_S``)."""

    after: int | None
    timeout_s: float


@dataclass(frozen=True)
class Lookup:
    """The row of one read-model table that ``where`` (a ``%s`` for each parameter) names."""

    projection: str
    table: str
    where: str

    @property
    def spec(self) -> Table:
        """The table the lookup reads."""
        return BY_NAME[self.projection].table(self.table)


ORDER = Lookup("orders", "orders", "order_no = %s")
ENTITLEMENT = Lookup("entitlements", "entitlements", "code = %s")
LIMIT_RULE = Lookup("limits", "limit_rules", "sku = %s")
RETENTION = Lookup("retention", "retention_orders", "order_no = %s")
SUBJECT_RETENTION = Lookup("retention", "retention_subjects", "subject_id = %s")


@dataclass(frozen=True)
class Listing:
    """A list query: the rows of one table that match ``where``, in keyset order.

    ``key`` names the sort columns: never null, unique together (the last one breaks ties).
    A page ends at a row and the next starts strictly after it, ``WHERE (key) > (cursor)
    ORDER BY key`` (``<`` and ``DESC`` when ``descending``), so a page costs an index range
    scan however deep it is, and rows that arrive meanwhile never shift or repeat what a
    reader sees (OFFSET would re-read every skipped row and slide as rows arrive)."""

    name: str
    projection: str
    table: str
    where: str  # ``%s`` placeholders for the filter's values
    key: tuple[str, ...]
    descending: bool = False

    @property
    def spec(self) -> Table:
        """The table the listing reads."""
        return BY_NAME[self.projection].table(self.table)

    def cursor_of(self, row: Row) -> list[Any]:
        """The JSON values (a time as RFC 3339 text) of ``row``'s key: where its page ends."""
        return [iso(row[c]) if isinstance(row[c], datetime) else row[c] for c in self.key]

    def parse_cursor(self, values: Any) -> tuple[Any, ...]:
        """A cursor from ``cursor_of`` back as the key's values; ``ValueError`` if ``values``
        is not one (wrong length or a value of the wrong type)."""
        if not isinstance(values, list) or len(values) != len(self.key):
            raise ValueError(f"a cursor of {self.name} has {len(self.key)} values")
        types = dict(self.spec.columns)
        return tuple(_key_value(types[c], v) for c, v in zip(self.key, values, strict=True))


def _key_value(kind: str, value: Any) -> Any:
    if kind == INT and type(value) is int:
        return value
    if kind == TEXT and isinstance(value, str):
        return value
    if kind == TS and isinstance(value, str):
        moment = datetime.fromisoformat(value)  # ValueError for anything else
        if moment.tzinfo is not None:
            return moment
    raise ValueError(f"a cursor holds a {kind} value that is not one")


# The list queries, by the projection and table they read.
ORDERS_BY_ACCOUNT = Listing(
    "orders_by_account", "orders", "orders", "account_no = %s", ("submitted_at", "order_no"), True
)
ORDERS_BY_STATUS = Listing(
    "orders_by_status",
    "orders",
    "orders",
    "status = %s AND submitted_at >= %s AND submitted_at < %s",
    ("submitted_at", "order_no"),
)
ORDERS_BY_SELLER = Listing(
    "orders_by_seller", "orders", "orders", "seller_id = %s", ("submitted_at", "order_no"), True
)
ENTITLEMENTS_BY_ACCOUNT = Listing(
    "entitlements_by_account",
    "entitlements",
    "entitlements",
    "consumed_account = %s OR holder_account = %s",
    ("code",),
)
ENTITLEMENT_HISTORY = Listing(
    "entitlement_history", "entitlements", "entitlement_history", "code = %s", ("position",)
)
LINKED_ACCOUNTS = Listing(
    "linked_accounts",
    "limits",
    "link_nodes",
    "kind = 'account' AND group_id = (SELECT group_id FROM \"pj_link_nodes\" WHERE node = %s)",
    ("account_no",),
)
FLAGS = Listing("flags", "flags", "flags", "order_no = %s", ("raised_position", "flag_id"))
UNREVIEWED_FLAGS = Listing(
    "unreviewed_flags", "flags", "flags", "outcome IS NULL", ("raised_at", "raised_position")
)
PAYMENTS = Listing("payments", "payments", "payments", "order_no = %s", ("method",))
REFUNDS = Listing("refunds", "payments", "refunds", "order_no = %s", ("refund_id",))
RECONCILIATION = Listing(
    "reconciliation",
    "payments",
    "payments",
    "refunded_fen + pending_fen > paid_fen",
    ("order_no", "method"),
)
RETENTION_STEPS = Listing(
    "retention_steps", "retention", "retention_steps", "subject_id = %s", ("position",)
)
RETENTION_DUE = Listing(
    "retention_due",
    "retention",
    "retention_orders",
    # completed only: a reopened transaction's retain_until is a least date, its case open
    "retain_until < %s AND completed_at IS NOT NULL",
    ("retain_until", "order_no"),
)


@dataclass(frozen=True)
class Page:
    """One page of a list: its rows, the cursor of the next page (None on the last) and the
    position the projection had applied when the rows were read."""

    rows: list[Row]
    next: list[Any] | None
    position: int


class ReadModels:
    """The read models of one database, over one connection: one thread at a time.

    ``position`` is the position the projection read by the last query had applied, read in
    that query's own transaction: its answer is exactly the read model as of that position."""

    def __init__(self, rt: Runtime, *, listen: bool = True) -> None:
        """Queries on ``rt``'s database; ``listen``: wait for a position on PostgreSQL's
        NOTIFY (a connection of its own), else by polling ``rt``'s connection."""
        self.rt = rt
        self.db = rt.db
        self.freshness = Freshness(rt.db, rt.tracking, listen=listen)
        self.position = 0

    @classmethod
    def open(cls, url: StorageUrl | str | None, *, create: bool = False) -> ReadModels:
        """The read models of the ledger at ``url``; a reader: without ``create`` a missing
        database is ``STORAGE_UNAVAILABLE`` and nothing is made (projections/engine.py).
        Driver failures are ``STORAGE_UNAVAILABLE`` too."""
        with storage_errors():
            rt = open_runtime(url, create=create)
            try:
                ensure_live(rt.db, rt.tracking, PROJECTIONS)
            except BaseException:
                rt.close()
                raise
        return cls(rt)

    def close(self) -> None:
        self.freshness.close()
        self.rt.close()

    # -- plumbing --------------------------------------------------------------------------
    def wait_for(
        self,
        position: int | None,
        names: Sequence[str] | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> dict[str, int]:
        with storage_errors():
            return self.freshness.wait_for(position, list(names or BY_NAME), timeout_s)

    def _fresh(
        self, projection: str, after: int | None = None, timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> None:
        """Wait until ``projection`` has applied ``after`` (when given), as every query does."""
        if after is not None:
            self.wait_for(after, [projection], timeout_s)

    @contextmanager
    def _snapshot(self, projection: str, **fresh: Unpack[Fresh]) -> Iterator[Any]:
        """A read transaction on ``projection`` once it is ``fresh`` (ProjectionBehind,
        ProjectionStopped); its position is read first, in the transaction, into
        ``self.position``. A driver error is STORAGE_UNAVAILABLE."""
        self._fresh(projection, **fresh)
        name = tracking_name(projection, LIVE)
        with storage_errors(), self.db.snapshot() as cur:
            self.position = self.rt.tracking.read(cur, [name]).get(name, 0)
            yield cur

    def _param(self, value: Any) -> Any:
        return self.db.ts(value) if isinstance(value, datetime) else value

    def page(
        self,
        listing: Listing,
        params: Sequence[Any],
        *,
        page_size: int = MAX_ROWS,
        cursor: Sequence[Any] | None = None,
        **fresh: Unpack[Fresh],
    ) -> Page:
        """Up to ``page_size`` (at most ``MAX_ROWS``) rows of ``listing`` for the filter's
        ``params``, after ``cursor`` (a ``Listing.parse_cursor`` value; None: from the
        start), once the projection is ``fresh``."""
        where, args = f"({listing.where})", [self._param(p) for p in params]
        columns = ", ".join(f'"{c}"' for c in listing.key)
        if cursor is not None:
            marks = ", ".join("%s" for _ in listing.key)
            where += f" AND ({columns}) {'<' if listing.descending else '>'} ({marks})"
            args += [self._param(v) for v in cursor]
        size = max(1, min(int(page_size), MAX_ROWS))
        order = ", ".join(f'"{c}"{" DESC" if listing.descending else ""}' for c in listing.key)
        with self._snapshot(listing.projection, **fresh) as cur:
            rows = self._select(cur, listing.spec, where, tuple(args), order, size + 1)
        ahead = listing.cursor_of(rows[size - 1]) if len(rows) > size else None
        return Page(rows[:size], ahead, self.position)

    def _select(
        self, cur: Any, spec: Table, where: str, params: tuple[Any, ...], order: str, limit: int
    ) -> list[Row]:
        """The rows of ``spec`` that ``where`` selects, in ``order``, at most ``limit``."""
        cols = ", ".join(f'"{c}"' for c in spec.column_names)
        query = f'SELECT {cols} FROM "{spec.physical(LIVE)}" WHERE {where}'
        if order:
            query += f" ORDER BY {order}"
        cur.execute(self.db.sql(query + f" LIMIT {int(limit)}"), params)
        return [self.db.decode_row(spec, r) for r in cur.fetchall()]

    def _row(self, lookup: Lookup, params: tuple[Any, ...], **fresh: Unpack[Fresh]) -> Row | None:
        with self._snapshot(lookup.projection, **fresh) as cur:
            rows = self._select(cur, lookup.spec, lookup.where, params, "", 1)
        return rows[0] if rows else None

    def _scalar(self, cur: Any, query: str, params: tuple[Any, ...]) -> Any:
        cur.execute(self.db.sql(query), params)
        found = cur.fetchone()
        return None if found is None else found[0]

    def exists(self, projection: str, table: str, column: str, value: Any) -> bool:
        """Whether ``projection``'s ``table`` has a row whose ``column`` is ``value`` (does an
        order, a code, a subject the list is about exist at all?)."""
        physical = BY_NAME[projection].table(table).physical(LIVE)
        with self._snapshot(projection) as cur:
            query = f'SELECT 1 FROM "{physical}" WHERE "{column}" = %s LIMIT 1'
            return self._scalar(cur, query, (self._param(value),)) is not None

    # -- orders ----------------------------------------------------------------------------
    def order(self, order_no: str, **fresh: Unpack[Fresh]) -> Row | None:
        """The order's row (contact sealed), or None if the projection has not got it."""
        return self._row(ORDER, (order_no,), **fresh)

    def orders_by_account(
        self, account_no: str, *, limit: int = 100, **fresh: Unpack[Fresh]
    ) -> list[Row]:
        """The account's orders, newest first."""
        return self.page(ORDERS_BY_ACCOUNT, (account_no,), page_size=limit, **fresh).rows

    def orders_by_status(
        self,
        status: str,
        since: datetime,
        until: datetime,
        *,
        limit: int = 100,
        **fresh: Unpack[Fresh],
    ) -> list[Row]:
        """Orders in ``status`` submitted in [since, until), oldest first."""
        params = (status, since, until)
        return self.page(ORDERS_BY_STATUS, params, page_size=limit, **fresh).rows

    def orders_by_seller(
        self, seller_id: str, *, limit: int = 100, **fresh: Unpack[Fresh]
    ) -> list[Row]:
        """The seller's orders, newest first."""
        return self.page(ORDERS_BY_SELLER, (seller_id,), page_size=limit, **fresh).rows

    # -- entitlements ----------------------------------------------------------------------
    def entitlement(self, code: str, **fresh: Unpack[Fresh]) -> Row | None:
        return self._row(ENTITLEMENT, (code,), **fresh)

    def entitlements_by_account(self, account_no: str, **fresh: Unpack[Fresh]) -> list[Row]:
        return self.page(ENTITLEMENTS_BY_ACCOUNT, (account_no, account_no), **fresh).rows

    def entitlement_history(self, code: str, **fresh: Unpack[Fresh]) -> list[Row]:
        return self.page(ENTITLEMENT_HISTORY, (code,), **fresh).rows

    def campaign_counts(self, campaign: str, **fresh: Unpack[Fresh]) -> dict[str, int]:
        """``{"coupon/consumed": 12, …}`` for one campaign (empty for an unknown one)."""
        with self._snapshot("entitlements", **fresh) as cur:
            cur.execute(
                self.db.sql(
                    'SELECT kind, status, count(*) FROM "pj_entitlements" WHERE campaign = %s '
                    "GROUP BY kind, status ORDER BY kind, status"
                ),
                (campaign,),
            )
            return {f"{kind}/{status}": int(n) for kind, status, n in cur.fetchall()}

    # -- limits ----------------------------------------------------------------------------
    def linked_page(
        self,
        account_no: str,
        *,
        page_size: int = MAX_ROWS,
        cursor: Sequence[Any] | None = None,
        **fresh: Unpack[Fresh],
    ) -> Page:
        """The accounts linked to this one, itself included (transitively, 3.1.5), by account
        number; an account no order has linked yet is alone in its group."""
        node = (f"account:{account_no}",)
        found = self.page(LINKED_ACCOUNTS, node, page_size=page_size, cursor=cursor, **fresh)
        if found.rows or cursor is not None:
            return found
        return Page([{"account_no": account_no}], None, found.position)

    def linked_accounts(self, account_no: str, **fresh: Unpack[Fresh]) -> list[str]:
        """Every account linked to this one, itself included (transitively, 3.1.5)."""
        return [str(r["account_no"]) for r in self.linked_page(account_no, **fresh).rows]

    def group_quantity(
        self, sku: str, account_no: str, at: datetime, **fresh: Unpack[Fresh]
    ) -> Row | None:
        """What the account's group (or the account alone, for a per-account rule) bought of
        ``sku`` in the rule's period containing ``at``; None when no rule applies then."""
        with self._snapshot(LIMIT_RULE.projection, **fresh) as cur:
            found = self._select(cur, LIMIT_RULE.spec, LIMIT_RULE.where, (sku,), "", 1)
            if not found or at < found[0]["valid_from"]:
                return None
            rule = found[0]
            period = (at - rule["valid_from"]).days // rule["period_days"]
            start = rule["valid_from"] + timedelta(days=period * rule["period_days"])
            end = start + timedelta(days=rule["period_days"])
            bought = int(self._bought(cur, rule, account_no, start, end) or 0)
        return {
            "sku": sku,
            "rule_version": rule["rule_version"],
            "limit_qty": rule["limit_qty"],
            "per_account": rule["per_account"],
            "period_start": start,
            "period_end": end,
            "quantity": bought,
            "remaining": max(0, rule["limit_qty"] - bought),
        }

    def _bought(self, cur: Any, rule: Row, account_no: str, start: datetime, end: datetime) -> Any:
        bounds = (rule["sku"], self.db.ts(start), self.db.ts(end))
        if rule["per_account"]:
            return self._scalar(
                cur,
                'SELECT sum(quantity) FROM "pj_limit_purchases" WHERE account_no = %s '
                "AND sku = %s AND at >= %s AND at < %s",
                (account_no, *bounds),
            )
        return self._scalar(
            cur,
            'SELECT sum(p.quantity) FROM "pj_link_nodes" n JOIN "pj_limit_purchases" p '
            "ON p.account_no = n.account_no WHERE n.kind = 'account' AND n.group_id = "
            '(SELECT group_id FROM "pj_link_nodes" WHERE node = %s) '
            "AND p.sku = %s AND p.at >= %s AND p.at < %s",
            (f"account:{account_no}", *bounds),
        )

    # -- flags and refusals ------------------------------------------------------------------
    def flags(self, order_no: str, **fresh: Unpack[Fresh]) -> list[Row]:
        return self.page(FLAGS, (order_no,), **fresh).rows

    def unreviewed_flags(self, *, limit: int = 100, **fresh: Unpack[Fresh]) -> list[Row]:
        """Flags no person has reviewed yet (PIPL 24), oldest first."""
        return self.page(UNREVIEWED_FLAGS, (), page_size=limit, **fresh).rows

    def refusals_in_window(
        self, account_no: str, at: datetime, window_days: int, **fresh: Unpack[Fresh]
    ) -> int:
        """Non-quality refusals of delivery by the account in (at - window, at] (6.1(5))."""
        since = at - timedelta(days=window_days)
        with self._snapshot("flags", **fresh) as cur:
            return int(
                self._scalar(
                    cur,
                    'SELECT count(*) FROM "pj_refusals" WHERE account_no = %s AND '
                    "quality_reason = %s AND at > %s AND at <= %s",
                    (account_no, False, self.db.ts(since), self.db.ts(at)),
                )
            )

    # -- payments ----------------------------------------------------------------------------
    def payments(self, order_no: str, **fresh: Unpack[Fresh]) -> list[Row]:
        """The order's payments per method, with ``outstanding_fen`` (paid less refunded)."""
        rows = self.page(PAYMENTS, (order_no,), **fresh).rows
        for row in rows:
            row["outstanding_fen"] = row["paid_fen"] - row["refunded_fen"]
        return rows

    def refunds(self, order_no: str, **fresh: Unpack[Fresh]) -> list[Row]:
        return self.page(REFUNDS, (order_no,), **fresh).rows

    def reconciliation(self, **fresh: Unpack[Fresh]) -> list[Row]:
        """Order and method pairs where refunds, done or under way, exceed what was paid.
        The rules never allow it (3.1.4): this list must always be empty."""
        return self.page(RECONCILIATION, (), **fresh).rows

    # -- retention ---------------------------------------------------------------------------
    def retention(self, order_no: str, **fresh: Unpack[Fresh]) -> Row | None:
        return self._row(RETENTION, (order_no,), **fresh)

    def subject_retention(self, subject_id: str, **fresh: Unpack[Fresh]) -> Row | None:
        """A data subject's holds, restriction and last retention end (``retention_subjects``)."""
        return self._row(SUBJECT_RETENTION, (subject_id,), **fresh)

    def retention_steps(self, subject_id: str, **fresh: Unpack[Fresh]) -> list[Row]:
        return self.page(RETENTION_STEPS, (subject_id,), **fresh).rows

    def retention_due(
        self, before: datetime, *, limit: int = 100, **fresh: Unpack[Fresh]
    ) -> list[Row]:
        """Completed transactions whose legal retention ends before ``before``."""
        return self.page(RETENTION_DUE, (before,), page_size=limit, **fresh).rows
