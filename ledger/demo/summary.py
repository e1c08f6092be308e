"""What a demo run did: tallied from the command results, then read back from the ledger.

The summary holds counts and sums only (orders, commands, refusal codes, fen), never a
name, phone, address or account, so it can be printed and logged. ``build_summary`` gives
the deterministic part (same seed and size → same dict); timing and where the run wrote
are kept apart by the caller.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ledger.application import CommandResult, Ledger
from ledger.demo.traffic import CHINA, Step, Traffic
from ledger.domain.errors import LedgerError, NotFound
from ledger.domain.order.events import GiftPriceCharged

NEVER_SUBMITTED = "never submitted (refused at submission)"
ENTITLEMENT_TOPICS = {
    "issued": "entitlement/Issued",
    "consumed": "entitlement/Consumed",
    "forfeited": "entitlement/Forfeited",
    "restored": "entitlement/Restored",
}


@dataclass
class Tally:
    """Outcomes as they come back, checked against what each step was meant to get."""

    accepted: int = 0
    duplicates: int = 0
    refusals: Counter[tuple[str, str]] = field(default_factory=Counter)
    topics: Counter[str] = field(default_factory=Counter)
    events_written: int = 0
    unexpected: list[str] = field(default_factory=list)

    def record(self, step: Step, outcome: CommandResult | LedgerError) -> None:
        command_id = step.command["command_id"]
        what = f"{step.command['type']} {command_id} ({step.scenario})"
        if isinstance(outcome, LedgerError):
            self.refusals[(outcome.code, outcome.clause)] += 1
            if outcome.code != step.expect:
                wanted = step.expect or "acceptance"
                self.unexpected.append(f"{what}: expected {wanted}, got {outcome.code}")
            return
        if outcome.duplicate:
            self.duplicates += 1
        else:
            self.accepted += 1
            self.topics.update(outcome.events)
            self.events_written += len(outcome.events) + 1  # and the command's own record
        if step.expect is not None:
            self.unexpected.append(f"{what}: expected {step.expect}, was accepted")

    @property
    def refused(self) -> int:
        return sum(self.refusals.values())


@dataclass
class OrderFigures:
    states: dict[str, dict[str, int]] = field(default_factory=dict)
    paid: int = 0
    refunded: int = 0
    refunds_outstanding: int = 0
    unpaid_on_open_orders: int = 0
    gift_charges: int = 0
    completed: int = 0

    def count(self, state: str, completed: bool) -> None:
        entry = self.states.setdefault(state, {"orders": 0, "completed": 0})
        entry["orders"] += 1
        entry["completed"] += int(completed)
        self.completed += int(completed)


def read_orders(ledger: Ledger, order_nos: list[str]) -> OrderFigures:
    """Final state and money of every planned order, read back from the ledger."""
    figures = OrderFigures()
    for order_no in order_nos:
        try:
            order = ledger.order(order_no)
        except NotFound:
            figures.count(NEVER_SUBMITTED, completed=False)
            continue
        if order.is_closed:
            state = f"closed: {order.closed_ground} ({order.closed_clause})"
        else:
            state = order.status
        figures.count(state, completed=order.completed_at is not None)
        figures.paid += order.paid_total_fen
        figures.refunded += sum(order.refunded_fen.values())
        figures.refunds_outstanding += sum(r["amount_fen"] for r in order.pending_refunds.values())
        figures.unpaid_on_open_orders += order.outstanding_fen  # nothing once closed
        for event in ledger.app.repository.event_store.get(order.id):
            if isinstance(event, GiftPriceCharged):
                figures.gift_charges += event.price_fen
    figures.states = dict(sorted(figures.states.items(), key=lambda kv: (-kv[1]["orders"], kv[0])))
    return figures


def china_day(moment: datetime) -> str:
    return moment.astimezone(CHINA).date().isoformat()


def build_summary(
    ledger: Ledger, traffic: Traffic, tally: Tally, first: datetime, last: datetime
) -> dict[str, Any]:
    """The deterministic summary: the same for the same seed and size, on any backend."""
    figures = read_orders(ledger, traffic.order_numbers())
    refusals = sorted(tally.refusals.items(), key=lambda kv: (-kv[1], kv[0]))
    return {
        "seed": traffic.seed,
        "orders": traffic.orders,
        "simulated": {"from": china_day(first), "until": china_day(last)},
        "scenarios": traffic.scenario_counts(),
        "commands": {
            "total": tally.accepted + tally.duplicates + tally.refused,
            "accepted": tally.accepted,
            "refused": tally.refused,
            "duplicates": tally.duplicates,
            "unexpected": len(tally.unexpected),
        },
        "final_states": figures.states,
        "transactions_completed": figures.completed,
        "refusals": [
            {"code": code, "clause": clause, "count": count} for (code, clause), count in refusals
        ],
        "money_fen": {
            "paid": figures.paid,
            "refunded": figures.refunded,
            "gift_charges": figures.gift_charges,
            "kept": figures.paid - figures.refunded,
            "refunds_outstanding": figures.refunds_outstanding,
            "unpaid_on_open_orders": figures.unpaid_on_open_orders,
        },
        "entitlements": {name: tally.topics[topic] for name, topic in ENTITLEMENT_TOPICS.items()},
        "events_written": tally.events_written,
    }


def yuan(fen: int) -> str:
    return f"{fen:>15,} fen  (¥{fen / 100:,.2f})"


def render_text(summary: dict[str, Any], timing: dict[str, Any], run: dict[str, Any]) -> str:
    """The human summary: counts and sums only."""
    lines = [
        f"mall-ledger demo: seed {summary['seed']}, {summary['orders']} orders, "
        f"run {run['run_id']} on {run['database']}",
        f"simulated {summary['simulated']['from']} to {summary['simulated']['until']} (China time)",
        "",
        "Scenarios                                     instances",
        *(f"  {kind:<42}{n:>9}" for kind, n in summary["scenarios"].items()),
        "",
        "Final order states                               orders  completed",
        *(
            f"  {state:<45}{v['orders']:>7}{v['completed']:>11}"
            for state, v in summary["final_states"].items()
        ),
        f"  {'transactions completed (ECL 31)':<45}{summary['transactions_completed']:>18}",
        "",
        "Refusals: the rules at work                     clause     count",
        *(f"  {r['code']:<44}{r['clause']:<9}{r['count']:>7}" for r in summary["refusals"]),
        "",
        "Money",
        *(
            f"  {name.replace('_', ' '):<28}{yuan(fen)}"
            for name, fen in summary["money_fen"].items()
        ),
        "",
        "Entitlements (F-codes and coupons): "
        + ", ".join(f"{n} {name}" for name, n in summary["entitlements"].items()),
        "",
    ]
    lines += _totals(summary, timing)
    return "\n".join(lines)


def _totals(summary: dict[str, Any], timing: dict[str, Any]) -> list[str]:
    commands = summary["commands"]
    verdict = (
        "every outcome as the rules predict"
        if commands["unexpected"] == 0
        else f"{commands['unexpected']} UNEXPECTED outcome(s), listed on stderr"
    )
    return [
        f"Commands: {commands['total']:,} ({commands['accepted']:,} accepted, "
        f"{commands['refused']:,} refused, {commands['duplicates']} duplicates): {verdict}",
        f"Events written: {summary['events_written']:,}",
        f"Elapsed: {timing['elapsed_s']:.2f} s, {timing['events_per_s']:,.0f} events/s, "
        f"{timing['commands_per_s']:,.0f} commands/s",
    ]
