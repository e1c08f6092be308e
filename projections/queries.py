"""Queries on the read models, for backend services (DOMAIN.md §8).

Every query takes ``after``: the position a command returned. The query then first waits
(``timeout_s``) until the projection it reads has applied that position, so a service reads
its own writes; ``ProjectionBehind`` if it does not get there in time. A database that cannot
be reached or fails is ``StorageUnavailable`` (``STORAGE_UNAVAILABLE``), as on the write side:
no driver exception reaches the caller.

Personal fields come back sealed (``s1:<subject>:…`` tokens); ``Ledger.reveal(token, field)``
unseals one for a role allowed to see it, and reads ``[erased]`` once the subject's key is gone.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from ledger.driver_errors import storage_errors
from ledger.storage_url import StorageUrl
from projections.db import Row
from projections.engine import Runtime, ensure_live, open_runtime
from projections.freshness import DEFAULT_TIMEOUT_S, Freshness
from projections.registry import BY_NAME, PROJECTIONS
from projections.schema import LIVE, Table

MAX_ROWS = 1000


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

    def _select(
        self,
        projection: str,
        table: str,
        where: str,
        params: tuple[Any, ...],
        *,
        order: str = "",
        limit: int = MAX_ROWS,
        after: int | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> list[Row]:
        if after is not None:
            self.wait_for(after, [projection], timeout_s)
        spec: Table = BY_NAME[projection].table(table)
        cols = ", ".join(f'"{c}"' for c in spec.column_names)
        query = f'SELECT {cols} FROM "{spec.physical(LIVE)}" WHERE {where}'
        if order:
            query += f" ORDER BY {order}"
        query += f" LIMIT {max(1, min(int(limit), MAX_ROWS))}"
        with self._snapshot() as cur:
            cur.execute(self.db.sql(query), params)
            return [self.db.decode_row(spec, r) for r in cur.fetchall()]

    def _scalar(self, query: str, params: tuple[Any, ...]) -> Any:
        with self._snapshot() as cur:
            cur.execute(self.db.sql(query), params)
            found = cur.fetchone()
        return None if found is None else found[0]

    def _one(self, rows: list[Row]) -> Row | None:
        return rows[0] if rows else None

    # -- orders ----------------------------------------------------------------------------
    def order(
        self, order_no: str, *, after: int | None = None, timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> Row | None:
        return self._one(
            self._select(
                "orders", "orders", "order_no = %s", (order_no,), after=after, timeout_s=timeout_s
            )
        )

    def orders_by_account(
        self,
        account_no: str,
        *,
        limit: int = 100,
        after: int | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> list[Row]:
        return self._select(
            "orders",
            "orders",
            "account_no = %s",
            (account_no,),
            order="submitted_at DESC",
            limit=limit,
            after=after,
            timeout_s=timeout_s,
        )

    def orders_by_status(
        self,
        status: str,
        since: datetime,
        until: datetime,
        *,
        limit: int = 100,
        after: int | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> list[Row]:
        """Orders in ``status`` submitted in [since, until)."""
        return self._select(
            "orders",
            "orders",
            "status = %s AND submitted_at >= %s AND submitted_at < %s",
            (status, self.db.ts(since), self.db.ts(until)),
            order="submitted_at",
            limit=limit,
            after=after,
            timeout_s=timeout_s,
        )

    def orders_by_seller(
        self,
        seller_id: str,
        *,
        limit: int = 100,
        after: int | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> list[Row]:
        return self._select(
            "orders",
            "orders",
            "seller_id = %s",
            (seller_id,),
            order="submitted_at DESC",
            limit=limit,
            after=after,
            timeout_s=timeout_s,
        )

    # -- entitlements ----------------------------------------------------------------------
    def entitlement(
        self, code: str, *, after: int | None = None, timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> Row | None:
        return self._one(
            self._select(
                "entitlements",
                "entitlements",
                "code = %s",
                (code,),
                after=after,
                timeout_s=timeout_s,
            )
        )

    def entitlements_by_account(
        self, account_no: str, *, after: int | None = None, timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> list[Row]:
        return self._select(
            "entitlements",
            "entitlements",
            "consumed_account = %s OR holder_account = %s",
            (account_no, account_no),
            order="code",
            after=after,
            timeout_s=timeout_s,
        )

    def entitlement_history(
        self, code: str, *, after: int | None = None, timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> list[Row]:
        return self._select(
            "entitlements",
            "entitlement_history",
            "code = %s",
            (code,),
            order="position",
            after=after,
            timeout_s=timeout_s,
        )

    def campaign_counts(
        self, campaign: str, *, after: int | None = None, timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> dict[str, int]:
        """``{"coupon/consumed": 12, …}`` for one campaign."""
        if after is not None:
            self.wait_for(after, ["entitlements"], timeout_s)
        with self._snapshot() as cur:
            cur.execute(
                self.db.sql(
                    'SELECT kind, status, count(*) FROM "pj_entitlements" WHERE campaign = %s '
                    "GROUP BY kind, status ORDER BY kind, status"
                ),
                (campaign,),
            )
            return {f"{kind}/{status}": int(n) for kind, status, n in cur.fetchall()}

    # -- limits ----------------------------------------------------------------------------
    def linked_accounts(
        self, account_no: str, *, after: int | None = None, timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> list[str]:
        """Every account linked to this one, itself included (transitively, 3.1.5)."""
        if after is not None:
            self.wait_for(after, ["limits"], timeout_s)
        with self._snapshot() as cur:
            cur.execute(
                self.db.sql(
                    'SELECT n.account_no FROM "pj_link_nodes" n WHERE n.kind = %s AND '
                    'n.group_id = (SELECT group_id FROM "pj_link_nodes" WHERE node = %s) '
                    "ORDER BY n.account_no"
                ),
                ("account", f"account:{account_no}"),
            )
            return [str(r[0]) for r in cur.fetchall()] or [account_no]

    def group_quantity(
        self,
        sku: str,
        account_no: str,
        at: datetime,
        *,
        after: int | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> Row | None:
        """What the account's group (or the account alone, for a per-account rule) bought of
        ``sku`` in the rule's period containing ``at``; None when no rule applies then."""
        rules = self._select(
            "limits", "limit_rules", "sku = %s", (sku,), after=after, timeout_s=timeout_s
        )
        if not rules or at < rules[0]["valid_from"]:
            return None
        rule = rules[0]
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
    def flags(
        self, order_no: str, *, after: int | None = None, timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> list[Row]:
        return self._select(
            "flags", "flags", "order_no = %s", (order_no,), order="raised_position", after=after
        )

    def unreviewed_flags(self, *, limit: int = 100, after: int | None = None) -> list[Row]:
        return self._select(
            "flags", "flags", "outcome IS NULL", (), order="raised_at", limit=limit, after=after
        )

    def refusals_in_window(
        self,
        account_no: str,
        at: datetime,
        window_days: int,
        *,
        after: int | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> int:
        """Non-quality refusals of delivery by the account in (at - window, at] (6.1(5))."""
        if after is not None:
            self.wait_for(after, ["flags"], timeout_s)
        since = at - timedelta(days=window_days)
        return int(
            self._scalar(
                'SELECT count(*) FROM "pj_refusals" WHERE account_no = %s AND '
                "quality_reason = %s AND at > %s AND at <= %s",
                (account_no, False, self.db.ts(since), self.db.ts(at)),
            )
        )

    # -- payments ----------------------------------------------------------------------------
    def payments(
        self, order_no: str, *, after: int | None = None, timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> list[Row]:
        rows = self._select(
            "payments", "payments", "order_no = %s", (order_no,), order="method", after=after
        )
        for row in rows:
            row["outstanding_fen"] = row["paid_fen"] - row["refunded_fen"]
        return rows

    def refunds(
        self, order_no: str, *, after: int | None = None, timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> list[Row]:
        return self._select(
            "payments", "refunds", "order_no = %s", (order_no,), order="refund_id", after=after
        )

    def reconciliation(
        self, *, after: int | None = None, timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> list[Row]:
        """Order and method pairs where refunds, done or under way, exceed what was paid.
        The rules never allow it (3.1.4): this list must always be empty."""
        return self._select(
            "payments",
            "payments",
            "refunded_fen + pending_fen > paid_fen",
            (),
            order="order_no, method",
            after=after,
            timeout_s=timeout_s,
        )

    # -- retention ---------------------------------------------------------------------------
    def retention(
        self, order_no: str, *, after: int | None = None, timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> Row | None:
        return self._one(
            self._select(
                "retention",
                "retention_orders",
                "order_no = %s",
                (order_no,),
                after=after,
                timeout_s=timeout_s,
            )
        )

    def retention_steps(
        self, subject_id: str, *, after: int | None = None, timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> list[Row]:
        return self._select(
            "retention",
            "retention_steps",
            "subject_id = %s",
            (subject_id,),
            order="position",
            after=after,
            timeout_s=timeout_s,
        )

    def retention_due(self, before: datetime, *, limit: int = 100) -> list[Row]:
        """Completed transactions whose legal retention ends before ``before``."""
        return self._select(
            "retention",
            "retention_orders",
            "retain_until < %s",
            (self.db.ts(before),),
            order="retain_until",
            limit=limit,
        )
