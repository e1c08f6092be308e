"""A realistic stretch of mall traffic as commands with their times, made without feedback.

``generate_traffic(orders, seed)`` yields ``(command dict, time)`` pairs in time order: the
catalogue set-up, then every order's story (paid and delivered, lapsed, cancelled, split
payments, shortages, refused and failed deliveries, returns, coupons and F-codes, a resale
cluster, a restricted account, price errors, mutual terminations, promotions, refunds and
completed transactions). Some commands are meant to be refused: they show the rules at work,
and ``Traffic.steps()`` names the refusal code each one should get (``Step.expect``).

Nothing here reads the ledger. Where a later command needs an earlier result, the generator
knows it already: refunds made by a closure or a return get ids ``<order_no>/R<n>`` in the
order the domain makes them (ledger/domain/order/refunds.py), so ``OrderScript`` mirrors that
arithmetic. The timings assume the DOMAIN.md section 9 policy defaults (30-minute payment
deadline, 7-day return window, 3 refusals in 90 days).

The same ``(orders, seed, run_id)`` always gives the same commands. Every business key
(orders, accounts, codes, promotions, the limited SKUs) starts with ``run_id`` (default
``demo<seed>``), so a second run into a shared database can use a fresh prefix. Command dicts
are JSON-ready (times as ISO strings), so they can be written out as a JSONL workload.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from ledger.demo.people import People, Person
from ledger.domain import codes
from ledger.domain.china_time import end_of_day_after

CHINA = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 3, 1, 0, 0, tzinfo=CHINA)
ORDERS_PER_DAY = 40
H, D = 60, 24 * 60  # minutes in an hour, in a day
RETURN_WINDOW_DAYS = 7  # Policy.return_window_days default

SELF_OPERATED = "xiaomi-self"
CATALOGUE: tuple[tuple[str, int], ...] = (
    ("XM-15-256G", 449900),
    ("XM-15U-512G", 649900),
    ("RN-14-PRO", 179900),
    ("XM-PAD-7", 199900),
    ("XM-WATCH-S4", 99900),
    ("XM-BAND-9", 24900),
    ("XM-BUDS-5", 69900),
    ("MIJIA-VAC-X20", 299900),
    ("MIJIA-KETTLE-2", 9900),
    ("XM-TV-S65", 399900),
    ("PB-20K", 12900),
    ("XM-ROUTER-BE", 59900),
)
PHONES = CATALOGUE[:3]
GIFTS: tuple[tuple[str, int], ...] = (
    ("GIFT-CASE", 4900),
    ("GIFT-CHARGER-67W", 9900),
    ("GIFT-BUDS-LITE", 19900),
)
ENGRAVED = ("XM-15-ENGRAVED", 469900)  # made to order: no seven-day no-reason return
CARRIERS = ("SF", "JD", "ZTO", "YTO", "EMS")
SIGNERS = ("self", "self", "self", "self", "family", "designated_recipient", "agent")

Fields = dict[str, Any]


@dataclass(frozen=True)
class Step:
    """One command at its time; ``expect`` is the refusal code the rules should answer
    with, or None when the command should be accepted."""

    command: Fields
    at: datetime
    scenario: str
    expect: str | None = None


@dataclass(frozen=True)
class Slot:
    kind: str
    start: datetime
    order_nos: tuple[str, ...]
    showcase: bool  # the run's guaranteed instance of its kind: every optional refusal on


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


class OrderScript:
    """One order's commands on its own time line, with the money the domain will hold."""

    def __init__(self, scene: Scene, order_no: str, person: Person, account_no: str) -> None:
        self.scene = scene
        self.no = order_no
        self.person = person
        self.account = account_no
        self.at = scene.start
        self.steps = 0
        self.total = 0
        self.purchase_type = "consumer"
        self.gifts: list[Fields] = []
        self.paid: dict[str, int] = {}
        self.refunded: dict[str, int] = {}
        self.pending: dict[str, tuple[str, int]] = {}
        self.next_refund = 1
        self.payments = 0
        self.return_deadline: datetime | None = None

    # -- time and emission --------------------------------------------------------------
    def wait(self, lo_minutes: float, hi_minutes: float) -> None:
        seconds = self.scene.rng.randint(int(lo_minutes * 60), int(hi_minutes * 60))
        self.at += timedelta(seconds=seconds)

    def not_before(self, moment: datetime) -> None:
        self.at = max(self.at, moment)

    def cmd(self, command_type: str, expect: str | None = None, **fields: Any) -> bool:
        """Emit an order command; True when it is meant to be accepted."""
        self.steps += 1
        command_id = f"{self.no}.{self.steps:02d}"
        command = {"type": command_type, "command_id": command_id, "order_no": self.no}
        self.scene.emit({**command, **fields}, self.at, expect)
        return expect is None

    # -- submission and payment ---------------------------------------------------------
    def submit(
        self,
        lines: list[Fields],
        *,
        gifts: list[Fields] | None = None,
        expect: str | None = None,
        **over: Any,
    ) -> None:
        fields: Fields = {
            "account_no": self.account,
            "lines": lines,
            "gifts": gifts or [],
            "seller_id": SELF_OPERATED,
            "shipping_region": self.person.region,
            "contact": self.person.contact(),
            **over,
        }
        if self.scene.rng.random() < 0.2 and "seller_id" not in over:
            fields["seller_id"] = f"merchant-{self.scene.rng.randint(1000, 9999)}"
            fields["seller_kind"] = "third_party"
        if self.cmd("submit_order", expect, **fields):
            self.total = sum(
                ln["quantity"] * ln["unit_price_fen"] - ln["discount_fen"] for ln in lines
            )
            self.gifts = list(gifts or [])
            self.purchase_type = fields.get("purchase_type", "consumer")

    def outstanding(self) -> int:
        return self.total - sum(self.paid.values())

    def pay(self, method: str, amount: int | None = None, expect: str | None = None) -> None:
        amount = self.outstanding() if amount is None else amount
        self.payments += 1
        accepted = self.cmd(
            "receive_payment",
            expect,
            payment_id=f"{self.no}.P{self.payments}",
            method=method,
            payer_account=self.person.payer(method),
            amount_fen=amount,
        )
        if accepted:
            self.paid[method] = self.paid.get(method, 0) + amount

    def pay_in_full(self, split: bool = False) -> None:
        """One method, or Alipay for part and WeChat Pay for the rest (two payments)."""
        self.wait(1, 20)
        if not split:
            self.pay(self.scene.method())
            return
        part = max(100, self.total * self.scene.rng.randint(30, 70) // 10000 * 100)
        self.pay("alipay", min(part, self.total - 100))
        self.wait(1, 5)
        self.pay("wechat")

    # -- delivery ------------------------------------------------------------------------
    def ship(self, expect: str | None = None) -> None:
        carrier = self.scene.rng.choice(CARRIERS)
        tracking = carrier + "".join(self.scene.rng.choices("0123456789", k=13))
        fields: Fields = {"carrier": carrier, "tracking_no": tracking}
        if expect is None:
            fields["estimated_delivery"] = iso(self.at + timedelta(days=2))
            if self.scene.rng.random() < 0.2:
                fields["promised_delivery"] = iso(self.at + timedelta(days=3))
        self.cmd("ship_order", expect, **fields)

    def deliver(self) -> None:
        self.cmd("deliver_order", signer_relation=self.scene.rng.choice(SIGNERS))
        if self.purchase_type == "consumer":
            self.return_deadline = end_of_day_after(self.at, RETURN_WINDOW_DAYS)

    def ship_and_deliver(self) -> None:
        self.wait(2 * H, 30 * H)
        self.ship()
        self.wait(20 * H, 3 * D)
        self.deliver()

    # -- closures, refunds, completion (mirrors ledger/domain/order/refunds.py) -----------
    def refundable(self, method: str) -> int:
        pending = sum(amount for m, amount in self.pending.values() if m == method)
        return self.paid[method] - self.refunded.get(method, 0) - pending

    def new_refund(self, method: str, amount: int) -> str:
        refund_id = f"{self.no}/R{self.next_refund}"
        self.next_refund += 1
        self.pending[refund_id] = (method, amount)
        return refund_id

    def refund_everything(self, withheld: int = 0) -> None:
        """What a closure or an inspected return refunds: per method, largest first."""
        for method in sorted(self.paid, key=lambda m: (-self.refundable(m), m)):
            outstanding = self.refundable(method)
            kept = min(withheld, outstanding)
            withheld -= kept
            if outstanding - kept > 0:
                self.new_refund(method, outstanding - kept)

    def close(self, command_type: str, expect: str | None = None, **fields: Any) -> None:
        """A command that closes the order (when accepted): refunds follow."""
        if self.cmd(command_type, expect, **fields):
            self.refund_everything()

    def settle(self) -> None:
        """The payment channels confirm each refund within the 7 days it is due."""
        for refund_id, (method, amount) in list(self.pending.items()):
            self.wait(2 * H, 3 * D)
            self.cmd("complete_refund", refund_id=refund_id)
            self.refunded[method] = self.refunded.get(method, 0) + amount
            del self.pending[refund_id]

    def complete(self, early: bool = False) -> None:
        """Completion (ECL 31) once the return window and every refund are over; ``early``
        first tries before the window has ended, which the rules refuse."""
        if early and self.return_deadline is not None and self.at < self.return_deadline:
            self.wait(1 * H, 20 * H)
            if self.at < self.return_deadline:
                self.cmd("complete_transaction", expect=codes.TRANSACTION_NOT_COMPLETE.code)
        if self.return_deadline is not None:
            self.not_before(self.return_deadline)
        self.wait(1 * H, 30 * H)
        self.cmd("complete_transaction")


class Scene:
    """One scenario instance: its own random stream, start time and order numbers."""

    def __init__(self, traffic: Traffic, index: int, slot: Slot) -> None:
        self.traffic = traffic
        self.kind = slot.kind
        self.start = slot.start
        self.showcase = slot.showcase
        self.rng = random.Random(f"mall-ledger-demo-scene:{traffic.seed}:{index}")
        self.order_nos = slot.order_nos
        self._unused_order_nos = iter(slot.order_nos)
        self.steps: list[Step] = []

    def emit(self, command: Fields, at: datetime, expect: str | None = None) -> None:
        assert at >= self.start, f"{self.kind}: a step before its scene starts"
        self.steps.append(Step(command, at, self.kind, expect))

    def other(
        self,
        command_type: str,
        command_id: str,
        at: datetime,
        expect: str | None = None,
        **fields: Any,
    ) -> None:
        """A command that is not about one order (codes, limits, accounts)."""
        self.emit({"type": command_type, "command_id": command_id, **fields}, at, expect)

    def customer_order(self) -> OrderScript:
        index = self.rng.randrange(self.traffic.pool_size)
        person = self.traffic.people.person(index)
        return OrderScript(self, next(self._unused_order_nos), person, self.traffic.account(index))

    def in_transit(
        self, split_chance: float = 0.0, transit_max_minutes: float = 2 * D
    ) -> OrderScript:
        """A customer's order submitted, paid in full and shipped: the courier is due."""
        o = self.customer_order()
        o.submit(self.basket())
        o.pay_in_full(split=split_chance > 0 and self.rng.random() < split_chance)
        o.wait(2 * H, 30 * H)
        o.ship()
        o.wait(20 * H, transit_max_minutes)
        return o

    def special_order(self, person: Person, account_no: str) -> OrderScript:
        """The scene's next order number, for a given buyer."""
        return OrderScript(self, next(self._unused_order_nos), person, account_no)

    def method(self) -> str:
        return self.rng.choices(("alipay", "wechat", "unionpay"), weights=(50, 40, 10))[0]

    def chance(self, p: float) -> bool:
        """An optional turn of the story; always taken in the run's showcase instance."""
        return self.showcase or self.rng.random() < p

    def basket(self, *, phone: bool = False, discount_pct: int = 0) -> list[Fields]:
        first = self.rng.choice(PHONES if phone else CATALOGUE)
        others = [p for p in CATALOGUE if p != first]
        picked = [first, *self.rng.sample(others, self.rng.choice((0, 0, 0, 1, 2)))]
        lines: list[Fields] = []
        for sku, price in picked:
            quantity = 2 if price < 20000 and self.rng.random() < 0.3 else 1
            discount = price * discount_pct // 10000 * 100 if not lines else 0
            lines.append(
                {
                    "sku": sku,
                    "quantity": quantity,
                    "unit_price_fen": price,
                    "discount_fen": discount,
                }
            )
        return lines

    def gift(self) -> list[Fields]:
        gift_sku, price = self.rng.choice(GIFTS)
        return [{"gift_id": "G1", "sku": gift_sku, "price_fen": price}]

    def coupon(self, o: OrderScript, lines: list[Fields]) -> list[str]:
        """Issue a coupon to the buyer and take its value off the first line."""
        code = f"{o.no}-CPN"
        value = 10000 if lines[0]["unit_price_fen"] >= 100000 else 1000
        self.other(
            "issue_entitlement",
            f"{code}.issue",
            o.at,
            code=code,
            kind="coupon",
            campaign="spring-2026",
            value_fen=value,
            holder_account=o.account,
            valid_until=iso(o.at + timedelta(days=30)),
        )
        lines[0]["discount_fen"] += value
        o.wait(1, 30)
        return [code]


class Traffic:
    """The plan (which stories, when, with which order numbers) and its steps."""

    def __init__(self, orders: int, seed: int, run_id: str | None = None) -> None:
        if orders < 1:
            raise ValueError("orders must be at least 1")
        self.orders = orders
        self.seed = seed
        self.run_id = run_id or f"demo{seed}"
        self.people = People(seed)
        self.pool_size = customer_pool_size(orders)
        self.days = max(1, math.ceil(orders / ORDERS_PER_DAY))
        self.plan = self._plan(random.Random(f"mall-ledger-demo-plan:{seed}:{orders}"))
        self.promo_active = self.active_promotion_no(self.run_id)
        self.promo_expired = f"{self.run_id}-CNY26"
        self._specials = 0

    @staticmethod
    def active_promotion_no(run_id: str) -> str:
        """The run's first command defines this promotion: its stream marks the run id used."""
        return f"{run_id}-SPRING26"

    def _plan(self, rng: random.Random) -> list[Slot]:
        kinds = [(kind, True) for kind in showcase_kinds(self.orders)]
        budget = self.orders - sum(SCENE_ORDERS.get(k, 1) for k, _ in kinds)
        while budget > 0:
            fits = [k for k in FILL_WEIGHTS if SCENE_ORDERS.get(k, 1) <= budget]
            kind = rng.choices(fits, weights=[FILL_WEIGHTS[k] for k in fits])[0]
            kinds.append((kind, False))
            budget -= SCENE_ORDERS.get(kind, 1)
        rng.shuffle(kinds)
        starts = sorted(
            START
            + timedelta(
                days=rng.randrange(self.days),
                minutes=rng.randrange(8 * H, 23 * H + 30),
                seconds=rng.randrange(60),
            )
            for _ in kinds
        )
        numbers = (f"{self.run_id}-{n:06d}" for n in itertools.count(1))
        return [
            Slot(
                kind,
                start.astimezone(UTC),
                tuple(itertools.islice(numbers, SCENE_ORDERS.get(kind, 1))),
                showcase,
            )
            for (kind, showcase), start in zip(kinds, starts, strict=True)
        ]

    def account(self, pool_index: int) -> str:
        return f"{self.run_id}-U{pool_index:05d}"

    def special(self) -> tuple[Person, str]:
        """A person and account of their own, outside the customer pool."""
        self._specials += 1
        person = self.people.person(self.pool_size + self._specials - 1)
        return person, f"{self.run_id}-S{self._specials:05d}"

    def scenario_counts(self) -> dict[str, int]:
        return dict(sorted(Counter(slot.kind for slot in self.plan).items()))

    def order_numbers(self) -> list[str]:
        return [no for slot in self.plan for no in slot.order_nos]

    def setup_steps(self) -> list[Step]:
        at = START.astimezone(UTC)
        last_start = self.plan[-1].start if self.plan else at
        promotions = (
            (
                self.promo_active,
                START - timedelta(days=5),
                last_start + timedelta(days=60),
                "spring sale: 5% off the first line",
            ),
            (
                self.promo_expired,
                datetime(2026, 1, 20, tzinfo=CHINA),
                datetime(2026, 2, 20, tzinfo=CHINA),
                "Spring Festival sale (over)",
            ),
        )
        return [
            Step(
                {
                    "type": "define_promotion",
                    "command_id": f"{no}.define",
                    "promotion_no": no,
                    "valid_from": iso(since),
                    "valid_until": iso(until),
                    "description": text,
                },
                at,
                "setup",
            )
            for no, since, until, text in promotions
        ]

    def steps(self) -> Iterator[Step]:
        """Every step in time order: scenes are built one by one and merged by time."""
        self._specials = 0
        heap: list[tuple[datetime, int, Step]] = []
        seq = itertools.count()
        for step in self.setup_steps():
            heapq.heappush(heap, (step.at, next(seq), step))
        for index, slot in enumerate(self.plan):
            while heap and heap[0][0] <= slot.start:
                yield heapq.heappop(heap)[2]
            scene = Scene(self, index, slot)
            SCENES[slot.kind](scene)
            for step in scene.steps:
                heapq.heappush(heap, (step.at, next(seq), step))
        while heap:
            yield heapq.heappop(heap)[2]


def generate_traffic(
    orders: int, seed: int, run_id: str | None = None
) -> Iterator[tuple[Fields, datetime]]:
    """``(command, time)`` pairs in time order; some commands are meant to be refused."""
    for step in Traffic(orders, seed, run_id).steps():
        yield step.command, step.at


def customer_pool_size(orders: int) -> int:
    """Regular customers: about three orders each."""
    return max(12, orders // 3)


# ---------------------------------------------------------------------------------------
# Scenes: one function per kind of story.


def delivered(s: Scene) -> None:
    o = s.customer_order()
    promo = s.rng.random() < 0.3
    lines = s.basket(discount_pct=5 if promo else 0)
    coupons = s.coupon(o, lines) if s.rng.random() < 0.15 else []
    o.submit(
        lines,
        gifts=s.gift() if s.rng.random() < 0.2 else [],
        coupons=coupons,
        promotion_nos=[s.traffic.promo_active] if promo else [],
    )
    o.pay_in_full(split=s.rng.random() < 0.1)
    o.ship_and_deliver()
    o.complete(early=s.rng.random() < 0.2)


def split_payment(s: Scene) -> None:
    o = s.customer_order()
    o.submit(s.basket(phone=True))
    o.wait(1, 10)
    part = o.total * s.rng.randint(30, 70) // 10000 * 100
    o.pay("alipay", part)
    if s.chance(0.5):
        o.wait(1, 3)
        o.ship(expect=codes.NOT_PAID.code)  # a part payment forms no contract (3.1.2, 3.1.3)
    o.wait(1, 8)
    o.pay("wechat")
    o.ship_and_deliver()
    o.complete()


def payment_lapsed(s: Scene) -> None:
    o = s.customer_order()
    o.submit(s.basket())
    if s.chance(0.3):
        o.wait(10, 25)
        o.cmd("lapse_payment_deadline", expect=codes.DEADLINE_NOT_REACHED.code)
    o.not_before(s.start + timedelta(minutes=31))
    o.wait(1, 20)
    if s.chance(0.4):
        o.pay(s.method(), expect=codes.PAYMENT_DEADLINE_PASSED.code)
        o.wait(1, 10)
    o.close("lapse_payment_deadline")
    o.wait(1, 60)
    o.complete()


def cancelled_unpaid(s: Scene) -> None:
    o = s.customer_order()
    o.submit(s.basket())
    o.wait(2, 25)
    o.close("cancel_order", reason="changed my mind")
    o.complete()


def shortage(s: Scene, resolution: str) -> None:
    o = s.customer_order()
    lines = s.basket(phone=True)
    o.submit(lines)
    o.pay_in_full(split=s.rng.random() < 0.3)
    o.wait(1 * H, 8 * H)
    o.cmd("declare_stock_shortage", skus=[lines[0]["sku"]])
    o.wait(1 * H, 24 * H)
    if resolution == "cancel":
        o.close("cancel_order", reason="would rather not wait for stock")
    elif resolution == "refund":
        o.close("resolve_stock_shortage", resolution="refund")
    else:
        if s.chance(0.5):
            o.ship(expect=codes.SHORTAGE_UNRESOLVED.code)
            o.wait(5, 60)
        other = next(sku for sku, _ in PHONES if sku != lines[0]["sku"])
        o.cmd("resolve_stock_shortage", resolution="exchange", exchange_sku=other)
        o.ship_and_deliver()
    o.settle()
    o.complete()


def refused_delivery(s: Scene, quality: bool) -> None:
    o = s.in_transit(split_chance=0.2, transit_max_minutes=3 * D)
    reason = "screen cracked in the box" if quality else "no longer wanted"
    o.cmd("refuse_delivery", quality_reason=quality, reason=reason)
    o.wait(2 * H, 10 * H)
    o.close("close_order", ground="delivery_refused")
    o.settle()
    o.complete()


def no_answer_closure(s: Scene) -> None:
    """3.2.4(2): the courier calls the reserved phone twice without answer, then it closes."""
    o = s.in_transit()
    o.cmd("record_delivery_failure", reason="no_answer")
    o.wait(5, 30)
    o.cmd("record_contact_call", answered=False)
    if s.chance(0.5):
        o.wait(5, 60)
        o.close("close_order", expect=codes.TWO_CALLS_REQUIRED.code, ground="no_answer")
    o.wait(2 * H, 6 * H)
    o.cmd("record_contact_call", answered=False)
    o.wait(10, 3 * H)
    o.close("close_order", ground="no_answer")
    o.settle()
    o.complete()


def bad_address_closure(s: Scene) -> None:
    o = s.in_transit()
    if s.chance(0.3):
        o.close(
            "close_order", expect=codes.DELIVERY_FAILURE_NOT_RECORDED.code, ground="bad_address"
        )
        o.wait(5, 60)
    o.cmd("record_delivery_failure", reason="bad_address")
    o.wait(1 * H, 20 * H)
    o.close("close_order", ground="bad_address")
    o.settle()
    o.complete()


def redelivered(s: Scene) -> None:
    """Nobody to sign (or a typhoon): a failed attempt, a call, then delivery after all."""
    o = s.in_transit()
    o.cmd(
        "record_delivery_failure",
        reason=s.rng.choice(("nobody_to_sign", "nobody_to_sign", "force_majeure")),
    )
    o.wait(1 * H, 4 * H)
    o.cmd("record_contact_call", answered=True)
    o.wait(18 * H, 2 * D)
    o.deliver()
    o.complete()


def no_reason_return(s: Scene, gift_back: bool, coupon: bool) -> None:
    """Seven days, no reason (CPL 25): gifts back, or a gift kept and paid for (3.1.8)."""
    o = s.customer_order()
    lines = s.basket(phone=True)
    coupons = s.coupon(o, lines) if coupon else []
    gifts = s.gift()
    o.submit(lines, gifts=gifts, coupons=coupons)
    o.pay_in_full(split=s.rng.random() < 0.2)
    o.ship_and_deliver()
    o.wait(6 * H, 5 * D)
    return_id = f"{o.no}.RT1"
    o.cmd("request_return", return_id=return_id, kind="no_reason", service_region=o.person.region)
    o.wait(1 * D, 3 * D)
    o.cmd("receive_return", return_id=return_id)
    o.wait(2 * H, 2 * D)
    returned = [g["gift_id"] for g in gifts] if gift_back else []
    o.cmd("inspect_return", return_id=return_id, gifts_returned=returned)
    o.refund_everything(withheld=0 if gift_back else sum(g["price_fen"] for g in gifts))
    o.settle()
    o.complete()


def quality_return(s: Scene) -> None:
    """After signing, a quality claim stays open (CPL 24, CC 497), even past the 7 days."""
    o = s.customer_order()
    o.submit(s.basket(phone=True))
    o.pay_in_full()
    o.ship_and_deliver()
    return_id = f"{o.no}.RT1"
    if s.chance(0.5):
        assert o.return_deadline is not None
        o.not_before(o.return_deadline)
        o.wait(1 * H, 6 * D)
        o.cmd(
            "request_return",
            expect=codes.RETURN_WINDOW_CLOSED.code,
            return_id=return_id,
            kind="no_reason",
            service_region=o.person.region,
        )
    o.wait(1 * H, 2 * D)
    o.cmd(
        "request_return",
        return_id=return_id,
        kind="quality",
        service_region=o.person.region,
        visible_damage_claimed=s.rng.random() < 0.3,
    )
    o.wait(1 * D, 3 * D)
    o.cmd("receive_return", return_id=return_id)
    o.wait(2 * H, 2 * D)
    o.cmd("inspect_return", return_id=return_id, gifts_returned=[])
    o.refund_everything()
    o.settle()
    o.complete()


def coupon_forfeit(s: Scene) -> None:
    """3.1.11: a cancelled order's F-code and coupon stay used; reusing one is refused."""
    first = s.customer_order()
    sku, price = s.rng.choice(PHONES)
    f_code, coupon = f"{first.no}-F", f"{first.no}-CPN"
    s.other(
        "issue_entitlement",
        f"{f_code}.issue",
        first.at,
        code=f_code,
        kind="f_code",
        campaign="f-code-launch",
        sku=sku,
        holder_account=first.account,
    )
    s.other(
        "issue_entitlement",
        f"{coupon}.issue",
        first.at,
        code=coupon,
        kind="coupon",
        campaign="spring-2026",
        value_fen=10000,
        holder_account=first.account,
    )
    first.wait(5, 60)
    line = {"sku": sku, "quantity": 1, "unit_price_fen": price, "discount_fen": 10000}
    first.submit([line], f_codes=[f_code], coupons=[coupon])
    first.wait(3, 25)
    first.close("cancel_order", reason="ordered the wrong colour")
    first.complete()
    second = s.special_order(first.person, first.account)
    second.at = first.at
    second.wait(10, 6 * H)
    second.submit([dict(line)], expect=codes.ENTITLEMENT_ALREADY_CONSUMED.code, coupons=[coupon])
    second.wait(1, 5)
    second.submit(
        [{**line, "discount_fen": 0}],
        expect=codes.ENTITLEMENT_ALREADY_CONSUMED.code,
        f_codes=[f_code],
    )
    second.wait(1, 10)
    second.submit([{**line, "discount_fen": 0}])
    second.pay_in_full()
    second.ship_and_deliver()
    second.complete()


def price_error(s: Scene, resolution: str) -> None:
    """3.1.7: displayed and correct price recorded; honoured, or adjusted with consent."""
    o = s.customer_order()
    sku, correct = s.rng.choice(CATALOGUE[:4])
    displayed = correct // 10
    o.submit([{"sku": sku, "quantity": 1, "unit_price_fen": displayed, "discount_fen": 0}])
    if resolution == "honoured":
        o.pay_in_full()
    o.wait(1, 4)
    o.cmd(
        "detect_price_error",
        sku=sku,
        displayed_price_fen=displayed,
        correct_price_fen=correct,
        cause="unit price entered without its last digit",
    )
    o.wait(1, 3)
    if resolution == "honoured":
        o.cmd("resolve_price_error", resolution="honoured")
    elif resolution == "adjusted" and (s.showcase or s.rng.random() < 0.7):
        o.cmd(
            "resolve_price_error",
            expect=codes.USER_CONSENT_REQUIRED.code,
            resolution="adjusted",
            adjusted_total_fen=correct,
        )
        o.wait(1, 5)
        o.cmd(
            "resolve_price_error",
            resolution="adjusted",
            user_consented=True,
            adjusted_total_fen=correct,
        )
        o.total = correct
        o.wait(1, 10)  # still inside the 30-minute payment deadline
        o.pay(s.method())
    else:
        o.close("resolve_price_error", resolution="terminated", user_consented=True)
        o.complete()
        return
    o.ship_and_deliver()
    o.complete()


def mutual_termination(s: Scene, accepted: bool) -> None:
    """After payment a cancel is only a request the seller accepts or declines (3.1.2)."""
    o = s.customer_order()
    o.submit(s.basket())
    o.pay_in_full(split=s.rng.random() < 0.3)
    o.wait(10, 5 * H)
    if s.chance(0.6):
        o.cmd("cancel_order", expect=codes.CONTRACT_ALREADY_FORMED.code, reason="found it cheaper")
        o.wait(1, 10)
    o.cmd("request_mutual_termination", requested_by="user", reason="found it cheaper")
    o.wait(1 * H, 12 * H)
    if accepted:
        o.close("accept_mutual_termination")
        o.settle()
    else:
        o.cmd("decline_mutual_termination", reason="already handed to the courier")
        o.ship_and_deliver()
    o.complete()


def promotion_expired(s: Scene) -> None:
    """3.1.10: an expired promotion is refused at submission; the running one applies."""
    o = s.customer_order()
    o.submit(
        s.basket(discount_pct=10),
        expect=codes.PROMOTION_NOT_ACTIVE.code,
        promotion_nos=[s.traffic.promo_expired],
    )
    o.wait(1, 5)
    o.submit(s.basket(discount_pct=5), promotion_nos=[s.traffic.promo_active])
    o.pay_in_full()
    o.ship_and_deliver()
    o.complete()


def goodwill_refund(s: Scene) -> None:
    """A part refund for a late delivery, to a card the user names (consent, 3.1.4)."""
    o = s.customer_order()
    o.submit(s.basket(phone=True))
    o.pay_in_full()
    o.ship_and_deliver()
    o.wait(2 * H, 2 * D)
    method = sorted(o.paid)[0]
    consent = f"{o.no}.CS1"
    o.cmd(
        "record_refund_consent",
        consent_id=consent,
        method=method,
        destination_account=o.person.bank_card,
    )
    o.wait(5, 60)
    o.cmd(
        "initiate_refund",
        expect=codes.OVER_REFUND.code,
        method=method,
        amount_fen=o.paid[method] + 1000,
        purpose="price_adjustment",
        consent_id=consent,
    )
    o.wait(1, 10)
    amount = s.rng.choice((2000, 5000, 10000))
    o.cmd(
        "initiate_refund",
        method=method,
        amount_fen=amount,
        purpose="price_adjustment",
        consent_id=consent,
    )
    o.new_refund(method, amount)
    o.settle()
    o.complete()


def group_purchase(s: Scene) -> None:
    """3.3.2: an enterprise group purchase has no seven-day no-reason return."""
    o = s.customer_order()
    sku, price = s.rng.choice((("XM-BAND-9", 24900), ("PB-20K", 12900), ("XM-BUDS-5", 69900)))
    quantity = s.rng.choice((20, 30, 50))
    o.submit(
        [{"sku": sku, "quantity": quantity, "unit_price_fen": price, "discount_fen": 0}],
        purchase_type="enterprise_group",
    )
    o.wait(1, 20)
    o.pay("unionpay")
    o.ship_and_deliver()
    o.wait(1 * D, 4 * D)
    o.cmd(
        "request_return",
        expect=codes.GROUP_PURCHASE_NO_REASON_RETURN.code,
        return_id=f"{o.no}.RT1",
        kind="no_reason",
        service_region=o.person.region,
    )
    o.wait(1 * H, 1 * D)
    o.complete()


def outside_mainland(s: Scene) -> None:
    """3.3.3: goods are sold and serviced in mainland China only."""
    o = s.customer_order()
    p = o.person
    o.submit(
        s.basket(),
        expect=codes.OUTSIDE_MAINLAND.code,
        shipping_region=p.away_region,
        contact=p.contact(address=p.away_address),
    )
    o.wait(5, 2 * H)
    o.submit(s.basket())
    o.pay_in_full()
    o.ship_and_deliver()
    o.complete()


def custom_made(s: Scene) -> None:
    """CPL 25: made-to-order goods have no no-reason return."""
    o = s.customer_order()
    sku, price = ENGRAVED
    o.submit(
        [
            {
                "sku": sku,
                "quantity": 1,
                "unit_price_fen": price,
                "discount_fen": 0,
                "no_reason_exclusion": "custom_made",
            }
        ]
    )
    o.pay_in_full()
    o.ship_and_deliver()
    o.wait(1 * D, 4 * D)
    o.cmd(
        "request_return",
        expect=codes.GOODS_EXCLUDED_FROM_NO_REASON_RETURN.code,
        return_id=f"{o.no}.RT1",
        kind="no_reason",
        service_region=o.person.region,
    )
    o.complete()


def resale_cluster(s: Scene) -> None:
    """3.1.5 / 3.1.6: four accounts, one address and phone, a limited SKU; the limit refuses
    two orders, an automated flag is reviewed by a person (PIPL 24) before a closure."""
    controller, _ = s.traffic.special()
    accounts = [s.traffic.special() for _ in range(4)]
    sku, limit = f"{s.order_nos[0]}-LTD", 2  # a flash-sale SKU of this cluster's own
    s.other(
        "define_purchase_limit",
        f"{sku}.limit",
        s.start,
        sku=sku,
        limit_qty=limit,
        period_days=30,
        valid_from=iso(s.start),
    )
    phones = (controller.phone, *controller.phone_variants(), controller.phone)
    addresses = (
        controller.address,
        controller.address,
        controller.address_variant(),
        controller.address,
    )
    orders = []
    for i, (person, account) in enumerate(accounts):
        o = s.special_order(person, account)
        o.at = s.start + timedelta(minutes=1 + 3 * i, seconds=s.rng.randrange(60))
        contact = {**person.contact(), "phone": phones[i], "address": addresses[i]}
        o.submit(
            [{"sku": sku, "quantity": 1, "unit_price_fen": 549900, "discount_fen": 0}],
            expect=None if i < limit else codes.PURCHASE_LIMIT_EXCEEDED.code,
            shipping_region=controller.region,
            contact=contact,
            seller_id=SELF_OPERATED,
        )
        orders.append(o)
    kept, closed = orders[0], orders[1]
    for o in (kept, closed):
        o.not_before(orders[-1].at)
        o.pay_in_full()
    review_flags(s, kept, closed)
    kept.ship_and_deliver()
    kept.wait(1 * D, 3 * D)
    kept.cmd(
        "raise_flag",
        flag_id=f"{kept.no}.F2",
        criterion=1,
        automated=False,
        evidence={"orders": [kept.no, closed.no], "signals": ["one_controller"]},
    )
    kept.wait(10, 60)
    kept.cmd(
        "close_order",
        expect=codes.ALREADY_DELIVERED.code,
        ground="abnormal_order",
        evidence={"flag_id": f"{kept.no}.F2"},
    )
    kept.complete()
    closed.settle()
    closed.complete()


def review_flags(s: Scene, kept: OrderScript, closed: OrderScript) -> None:
    evidence = {
        "orders": [kept.no, closed.no],
        "signals": ["same_address", "same_phone", "purchase_limit_refusals"],
    }
    for o in (closed, kept):
        o.not_before(max(kept.at, closed.at))
        o.wait(30, 2 * H)
        o.cmd("raise_flag", flag_id=f"{o.no}.F1", criterion=2, automated=True, evidence=evidence)
    closed.wait(1, 20)
    closed.close(
        "close_order",
        expect=codes.FLAG_NOT_REVIEWED.code,
        ground="abnormal_order",
        evidence={"flag_id": f"{closed.no}.F1"},
    )
    closed.wait(1 * H, 6 * H)
    closed.cmd(
        "review_flag",
        flag_id=f"{closed.no}.F1",
        reviewer_id="risk-reviewer-07",
        outcome="confirmed",
        note="one buyer behind both accounts",
    )
    closed.wait(5, 30)
    closed.close(
        "close_order",
        ground="abnormal_order",
        evidence={"flag_id": f"{closed.no}.F1", "orders": [kept.no, closed.no]},
    )
    kept.not_before(closed.at)
    kept.wait(5, 60)
    kept.cmd(
        "review_flag",
        flag_id=f"{kept.no}.F1",
        reviewer_id="risk-reviewer-07",
        outcome="dismissed",
        note="first order within the limit",
    )
    kept.wait(1, 10)
    kept.cmd(
        "close_order",
        expect=codes.FLAG_DISMISSED.code,
        ground="abnormal_order",
        evidence={"flag_id": f"{kept.no}.F1"},
    )


def refused_and_closed(o: OrderScript, submit_after: datetime) -> None:
    """One order of the restricted account: paid, shipped, refused without a quality reason."""
    o.not_before(submit_after)
    o.wait(10, 12 * H)
    o.submit(o.scene.basket())
    o.pay_in_full()
    o.wait(2 * H, 20 * H)
    o.ship()
    o.wait(20 * H, 2 * D)
    o.cmd("refuse_delivery", quality_reason=False, reason="not home, do not want it")
    o.wait(1 * H, 6 * H)
    o.close("close_order", ground="delivery_refused")


def restricted_account(s: Scene) -> None:
    """6.1(5): three non-quality refusals let the platform restrict the account; a new
    order is then refused, and for its open order the seller decides to close (6.2)."""
    person, account = s.traffic.special()
    o1, o2, o4, o3, o5 = (s.special_order(person, account) for _ in range(5))
    refused_and_closed(o1, s.start)
    refused_and_closed(o2, o1.at)
    at = o2.at + timedelta(minutes=30)
    s.other(
        "restrict_account",
        f"{account}.restrict1",
        at,
        expect=codes.REFUSAL_THRESHOLD_NOT_MET.code,
        account_no=account,
        ground="6.1(5)",
        evidence={"orders": [o1.no, o2.no], "signals": ["non_quality_refusals"]},
    )
    o4.not_before(at)
    o4.wait(1 * H, 10 * H)
    o4.submit(s.basket())
    o4.pay_in_full()
    refused_and_closed(o3, o4.at)
    at = o3.at + timedelta(minutes=45)
    s.other(
        "restrict_account",
        f"{account}.restrict2",
        at,
        account_no=account,
        ground="6.1(5)",
        evidence={"orders": [o1.no, o2.no, o3.no], "signals": ["non_quality_refusals"]},
    )
    o5.not_before(at + timedelta(minutes=20))
    o5.submit(s.basket(), expect=codes.ACCOUNT_RESTRICTED.code)
    o4.not_before(at + timedelta(hours=1))
    o4.close("close_order", expect=codes.DISPOSITION_NOT_CLOSE.code, ground="account_restricted")
    o4.wait(30, 3 * H)
    s.other(
        "decide_open_order",
        f"{account}.decide-{o4.no}",
        o4.at,
        account_no=account,
        order_no=o4.no,
        disposition="close",
    )
    o4.wait(5, 60)
    o4.close("close_order", ground="account_restricted")
    for o in (o1, o2, o3, o4):
        o.settle()
        o.complete()


SCENES: dict[str, Callable[[Scene], None]] = {
    "paid_and_delivered": delivered,
    "split_payment": split_payment,
    "payment_lapsed": payment_lapsed,
    "cancelled_before_payment": cancelled_unpaid,
    "shortage_cancelled": lambda s: shortage(s, "cancel"),
    "shortage_exchanged": lambda s: shortage(s, "exchange"),
    "shortage_refunded": lambda s: shortage(s, "refund"),
    "refused_quality": lambda s: refused_delivery(s, quality=True),
    "refused_non_quality": lambda s: refused_delivery(s, quality=False),
    "no_answer_closure": no_answer_closure,
    "bad_address_closure": bad_address_closure,
    "redelivered": redelivered,
    "return_gifts_back": lambda s: no_reason_return(s, gift_back=True, coupon=False),
    "return_gift_kept": lambda s: no_reason_return(s, gift_back=False, coupon=False),
    "return_coupon_restored": lambda s: no_reason_return(s, gift_back=True, coupon=True),
    "quality_return": quality_return,
    "coupon_forfeited": coupon_forfeit,
    "price_error_honoured": lambda s: price_error(s, "honoured"),
    "price_error_adjusted": lambda s: price_error(s, "adjusted"),
    "mutual_termination_accepted": lambda s: mutual_termination(s, accepted=True),
    "mutual_termination_declined": lambda s: mutual_termination(s, accepted=False),
    "promotion_expired": promotion_expired,
    "goodwill_refund": goodwill_refund,
    "group_purchase": group_purchase,
    "outside_mainland": outside_mainland,
    "custom_made": custom_made,
    "resale_cluster": resale_cluster,
    "restricted_account": restricted_account,
}
# Order numbers a scene uses, where more than one.
SCENE_ORDERS = {"coupon_forfeited": 2, "resale_cluster": 4, "restricted_account": 5}
# How often each kind comes back once every kind has had its showcase instance.
FILL_WEIGHTS: dict[str, float] = {
    "paid_and_delivered": 40,
    "split_payment": 6,
    "payment_lapsed": 8,
    "cancelled_before_payment": 6,
    "shortage_cancelled": 1,
    "shortage_exchanged": 1,
    "shortage_refunded": 1,
    "refused_quality": 2,
    "refused_non_quality": 2,
    "no_answer_closure": 2,
    "bad_address_closure": 1,
    "redelivered": 3,
    "return_gifts_back": 3,
    "return_gift_kept": 2,
    "return_coupon_restored": 2,
    "quality_return": 3,
    "coupon_forfeited": 1,
    "price_error_honoured": 1,
    "price_error_adjusted": 1,
    "mutual_termination_accepted": 2,
    "mutual_termination_declined": 1,
    "promotion_expired": 2,
    "goodwill_refund": 1,
    "group_purchase": 2,
    "outside_mainland": 1,
    "custom_made": 1,
    "resale_cluster": 0.3,
    "restricted_account": 0.3,
}
# Orders needed for one showcase instance of every kind.
MIN_ORDERS_FOR_EVERY_PATH = sum(SCENE_ORDERS.get(kind, 1) for kind in SCENES)


def showcase_kinds(orders: int) -> list[str]:
    """One instance of every kind that fits in ``orders``, in a fixed order."""
    kinds, budget = [], orders
    for kind in SCENES:
        size = SCENE_ORDERS.get(kind, 1)
        if size <= budget:
            kinds.append(kind)
            budget -= size
    return kinds


def personal_strings(seed: int, orders: int) -> set[str]:
    """Every name, phone, address, IP and payer account the demo may send for this seed and
    size (each in every written form it uses): the traffic is generated (no database) and
    everyone it drew is listed."""
    traffic = Traffic(orders, seed)
    for _ in traffic.steps():
        pass
    return {text for person in traffic.people.generated() for text in person.strings()}
