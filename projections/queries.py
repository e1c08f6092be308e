"""Queries on the read models, for backend services (DOMAIN.md §8).

Every query takes ``after``, the position a command returned, and ``timeout_s`` (``Fresh``).
The query then first waits (``timeout_s``) until the projection it reads has applied that
position, so a service reads
its own writes; ``ProjectionBehind`` if it does not get there in time. A database that cannot
be reached or fails is ``StorageUnavailable`` (``STORAGE_UNAVAILABLE``), as on the write side:
no driver exception reaches the caller.

Personal fields come back sealed (``s1:<subject>:…`` tokens); ``Ledger.reveal(token, field)``
unseals one for a role allowed to see it, and reads ``[erased]`` once the subject's key is gone.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypedDict, Unpack

from ledger.driver_errors import storage_errors
from ledger.storage_url import StorageUrl
from projections.db import Row
from projections.engine import Runtime, ensure_live, open_runtime
from projections.freshness import DEFAULT_TIMEOUT_S, Freshness
from projections.registry import BY_NAME, PROJECTIONS
from projections.schema import LIVE, Table

MAX_ROWS = 1000


class Fresh(TypedDict, total=False):
    """How fresh a query's answer must be, as every query takes it: ``after`` the position a
    command returned (wait until the projection read has applied it), ``timeout_s`` how long
    to wait (``ProjectionBehind`` after; default ``DEFAULT_TIMEOUT_S``)."""

    after: int | None
    timeout_s: float


@dataclass(frozen=True)
class Lookup:
    """Rows of one read-model table: ``where`` with a ``%s`` for each parameter, ``order``."""

    projection: str
    table: str
    where: str
    order: str = ""


ORDER = Lookup("orders", "orders", "order_no = %s")
ORDERS_BY_ACCOUNT = Lookup("orders", "orders", "account_no = %s", "submitted_at DESC")
ORDERS_BY_STATUS = Lookup(
    "orders",
    "orders",
    "status = %s AND submitted_at >= %s AND submitted_at < %s",
    "submitted_at",
)
ORDERS_BY_SELLER = Lookup("orders", "orders", "seller_id = %s", "submitted_at DESC")
ENTITLEMENT = Lookup("entitlements", "entitlements", "code = %s")
ENTITLEMENTS_BY_ACCOUNT = Lookup(
    "entitlements", "entitlements", "consumed_account = %s OR holder_account = %s", "code"
)
ENTITLEMENT_HISTORY = Lookup("entitlements", "entitlement_history", "code = %s", "position")
LIMIT_RULE = Lookup("limits", "limit_rules", "sku = %s")
FLAGS = Lookup("flags", "flags", "order_no = %s", "raised_position")
UNREVIEWED_FLAGS = Lookup("flags", "flags", "outcome IS NULL", "raised_at")
PAYMENTS = Lookup("payments", "payments", "order_no = %s", "method")
REFUNDS = Lookup("payments", "refunds", "order_no = %s", "refund_id")
RECONCILIATION = Lookup(
    "payments", "payments", "refunded_fen + pending_fen > paid_fen", "order_no, method"
)
RETENTION = Lookup("retention", "retention_orders", "order_no = %s")
RETENTION_STEPS = Lookup("retention", "retention_steps", "subject_id = %s", "position")
RETENTION_DUE = Lookup("retention", "retention_orders", "retain_until < %s", "retain_until")


class ReadModels:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.db = rt.db
        self.freshness = Freshness(rt.db, rt.tracking)

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

    @contextmanager
    def _snapshot(self) -> Iterator[Any]:
        """A read transaction; a driver error in it is STORAGE_UNAVAILABLE."""
        with storage_errors(), self.db.snapshot() as cur:
            yield cur

    def _fresh(
        self, projection: str, after: int | None = None, timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> None:
        """Wait until ``projection`` has applied ``after`` (when given), as every query does."""
        if after is not None:
            self.wait_for(after, [projection], timeout_s)

    def _rows(
        self,
        lookup: Lookup,
        params: tuple[Any, ...],
        *,
        limit: int = MAX_ROWS,
        **fresh: Unpack[Fresh],
    ) -> list[Row]:
        """The rows ``lookup`` selects with ``params``, at most ``limit`` (1..MAX_ROWS)."""
        self._fresh(lookup.projection, **fresh)
        spec: Table = BY_NAME[lookup.projection].table(lookup.table)
        cols = ", ".join(f'"{c}"' for c in spec.column_names)
        query = f'SELECT {cols} FROM "{spec.physical(LIVE)}" WHERE {lookup.where}'
        if lookup.order:
            query += f" ORDER BY {lookup.order}"
        query += f" LIMIT {max(1, min(int(limit), MAX_ROWS))}"
        return [self.db.decode_row(spec, r) for r in self._fetchall(query, params)]

    def _row(self, lookup: Lookup, params: tuple[Any, ...], **fresh: Unpack[Fresh]) -> Row | None:
        rows = self._rows(lookup, params, **fresh)
        return rows[0] if rows else None

    def _fetchall(self, query: str, params: tuple[Any, ...]) -> list[Any]:
        """Every row of ``query`` (``%s`` parameters), in a read transaction."""
        with self._snapshot() as cur:
            cur.execute(self.db.sql(query), params)
            return list(cur.fetchall())

    def _scalar(self, query: str, params: tuple[Any, ...]) -> Any:
        rows = self._fetchall(query, params)
        return rows[0][0] if rows else None

    # -- orders ----------------------------------------------------------------------------
    def order(self, order_no: str, **fresh: Unpack[Fresh]) -> Row | None:
        return self._row(ORDER, (order_no,), **fresh)

    def orders_by_account(
        self, account_no: str, *, limit: int = 100, **fresh: Unpack[Fresh]
    ) -> list[Row]:
        return self._rows(ORDERS_BY_ACCOUNT, (account_no,), limit=limit, **fresh)

    def orders_by_status(
        self,
        status: str,
        since: datetime,
        until: datetime,
        *,
        limit: int = 100,
        **fresh: Unpack[Fresh],
    ) -> list[Row]:
        """Orders in ``status`` submitted in [since, until)."""
        params = (status, self.db.ts(since), self.db.ts(until))
        return self._rows(ORDERS_BY_STATUS, params, limit=limit, **fresh)

    def orders_by_seller(
        self, seller_id: str, *, limit: int = 100, **fresh: Unpack[Fresh]
    ) -> list[Row]:
        return self._rows(ORDERS_BY_SELLER, (seller_id,), limit=limit, **fresh)

    # -- entitlements ----------------------------------------------------------------------
    def entitlement(self, code: str, **fresh: Unpack[Fresh]) -> Row | None:
        return self._row(ENTITLEMENT, (code,), **fresh)

    def entitlements_by_account(self, account_no: str, **fresh: Unpack[Fresh]) -> list[Row]:
        return self._rows(ENTITLEMENTS_BY_ACCOUNT, (account_no, account_no), **fresh)

    def entitlement_history(self, code: str, **fresh: Unpack[Fresh]) -> list[Row]:
        return self._rows(ENTITLEMENT_HISTORY, (code,), **fresh)

    def campaign_counts(self, campaign: str, **fresh: Unpack[Fresh]) -> dict[str, int]:
        """``{"coupon/consumed": 12, …}`` for one campaign."""
        self._fresh("entitlements", **fresh)
        rows = self._fetchall(
            'SELECT kind, status, count(*) FROM "pj_entitlements" WHERE campaign = %s '
            "GROUP BY kind, status ORDER BY kind, status",
            (campaign,),
        )
        return {f"{kind}/{status}": int(n) for kind, status, n in rows}

    # -- limits ----------------------------------------------------------------------------
    def linked_accounts(self, account_no: str, **fresh: Unpack[Fresh]) -> list[str]:
        """Every account linked to this one, itself included (transitively, 3.1.5)."""
        self._fresh("limits", **fresh)
        rows = self._fetchall(
            'SELECT n.account_no FROM "pj_link_nodes" n WHERE n.kind = %s AND '
            'n.group_id = (SELECT group_id FROM "pj_link_nodes" WHERE node = %s) '
            "ORDER BY n.account_no",
            ("account", f"account:{account_no}"),
        )
        return [str(r[0]) for r in rows] or [account_no]

    def group_quantity(
        self, sku: str, account_no: str, at: datetime, **fresh: Unpack[Fresh]
    ) -> Row | None:
        """What the account's group (or the account alone, for a per-account rule) bought of
        ``sku`` in the rule's period containing ``at``; None when no rule applies then."""
        rule = self._row(LIMIT_RULE, (sku,), **fresh)
        if rule is None or at < rule["valid_from"]:
            return None
        period = (at - rule["valid_from"]).days // rule["period_days"]
        start = rule["valid_from"] + timedelta(days=period * rule["period_days"])
        end = start + timedelta(days=rule["period_days"])
        bounds = (sku, self.db.ts(start), self.db.ts(end))
        if rule["per_account"]:
            quantity = self._scalar(
                'SELECT sum(quantity) FROM "pj_limit_purchases" WHERE account_no = %s '
                "AND sku = %s AND at >= %s AND at < %s",
                (account_no, *bounds),
            )
        else:
            quantity = self._scalar(
                'SELECT sum(p.quantity) FROM "pj_link_nodes" n JOIN "pj_limit_purchases" p '
                "ON p.account_no = n.account_no WHERE n.kind = 'account' AND n.group_id = "
                '(SELECT group_id FROM "pj_link_nodes" WHERE node = %s) '
                "AND p.sku = %s AND p.at >= %s AND p.at < %s",
                (f"account:{account_no}", *bounds),
            )
        bought = int(quantity or 0)
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

    # -- flags and refusals ------------------------------------------------------------------
    def flags(self, order_no: str, **fresh: Unpack[Fresh]) -> list[Row]:
        return self._rows(FLAGS, (order_no,), **fresh)

    def unreviewed_flags(self, *, limit: int = 100, **fresh: Unpack[Fresh]) -> list[Row]:
        return self._rows(UNREVIEWED_FLAGS, (), limit=limit, **fresh)

    def refusals_in_window(
        self, account_no: str, at: datetime, window_days: int, **fresh: Unpack[Fresh]
    ) -> int:
        """Non-quality refusals of delivery by the account in (at - window, at] (6.1(5))."""
        self._fresh("flags", **fresh)
        since = at - timedelta(days=window_days)
        return int(
            self._scalar(
                'SELECT count(*) FROM "pj_refusals" WHERE account_no = %s AND '
                "quality_reason = %s AND at > %s AND at <= %s",
                (account_no, False, self.db.ts(since), self.db.ts(at)),
            )
        )

    # -- payments ----------------------------------------------------------------------------
    def payments(self, order_no: str, **fresh: Unpack[Fresh]) -> list[Row]:
        rows = self._rows(PAYMENTS, (order_no,), **fresh)
        for row in rows:
            row["outstanding_fen"] = row["paid_fen"] - row["refunded_fen"]
        return rows

    def refunds(self, order_no: str, **fresh: Unpack[Fresh]) -> list[Row]:
        return self._rows(REFUNDS, (order_no,), **fresh)

    def reconciliation(self, **fresh: Unpack[Fresh]) -> list[Row]:
        """Order and method pairs where refunds, done or under way, exceed what was paid.
        The rules never allow it (3.1.4): this list must always be empty."""
        return self._rows(RECONCILIATION, (), **fresh)

    # -- retention ---------------------------------------------------------------------------
    def retention(self, order_no: str, **fresh: Unpack[Fresh]) -> Row | None:
        return self._row(RETENTION, (order_no,), **fresh)

    def retention_steps(self, subject_id: str, **fresh: Unpack[Fresh]) -> list[Row]:
        return self._rows(RETENTION_STEPS, (subject_id,), **fresh)

    def retention_due(
        self, before: datetime, *, limit: int = 100, **fresh: Unpack[Fresh]
    ) -> list[Row]:
        """Completed transactions whose legal retention ends before ``before``."""
        return self._rows(RETENTION_DUE, (self.db.ts(before),), limit=limit, **fresh)
