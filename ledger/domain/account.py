"""Accounts (6.1, 6.2): restriction or termination blocks new orders; for open orders the
seller decides, per order, to close or continue (6.2). Non-quality refusals are counted
here so 6.1(5) ("short period, several refusals") is checked against the record."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from eventsourcing.domain import Aggregate

from ledger.domain import codes
from ledger.domain.context import Ctx
from ledger.domain.errors import RuleViolation
from ledger.domain.ids import account_id
from ledger.domain.journal import JournaledAggregate
from ledger.domain.topics import topic

RESTRICTION_GROUNDS = tuple(f"6.1({n})" for n in range(1, 9))


@topic("account/Event")
class AccountEvent(Aggregate.Event):
    class_version = 1
    command_id: str


@topic("account/Registered")
class AccountRegistered(AccountEvent, Aggregate.Created):
    account_no: str

    def apply(self, agg: Any) -> None:
        agg.account_no = self.account_no
        agg.refusals = []
        agg.restricted_ground = None
        agg.terminated = False
        agg.dispositions = {}


@topic("account/NonQualityRefusalRecorded")
class NonQualityRefusalRecorded(AccountEvent):
    order_no: str

    def apply(self, agg: Any) -> None:
        agg.refusals.append(self.timestamp)


@topic("account/Restricted")
class AccountRestricted(AccountEvent):
    ground: str
    evidence: dict[str, Any]

    def apply(self, agg: Any) -> None:
        agg.restricted_ground = self.ground


@topic("account/Terminated")
class AccountTerminated(AccountEvent):
    ground: str

    def apply(self, agg: Any) -> None:
        agg.terminated = True


@topic("account/OpenOrderDispositionDecided")
class OpenOrderDispositionDecided(AccountEvent):
    order_no: str
    disposition: str

    def apply(self, agg: Any) -> None:
        agg.dispositions[self.order_no] = self.disposition


class Account(JournaledAggregate):
    TOPIC = "mall-ledger/account"
    Event = AccountEvent
    Created = AccountRegistered

    if TYPE_CHECKING:
        account_no: str
        refusals: list[datetime]
        restricted_ground: str | None
        terminated: bool
        dispositions: dict[str, str]

    @classmethod
    def register(cls, ctx: Ctx, account_no: str) -> Account:
        """Accounts are registered on the first event that concerns them."""
        return cls._create(
            AccountRegistered,
            id=account_id(account_no),
            timestamp=ctx.at,
            command_id=ctx.command_id,
            account_no=account_no,
        )

    def _emit(self, event_class: Any, ctx: Ctx, **fields: Any) -> None:
        self.trigger_event(event_class, timestamp=ctx.at, command_id=ctx.command_id, **fields)

    @property
    def is_blocked(self) -> bool:
        return self.restricted_ground is not None or self.terminated

    def check_may_order(self) -> None:
        if self.is_blocked:
            raise RuleViolation(
                codes.ACCOUNT_RESTRICTED,
                "the account is restricted or terminated and may not place orders",
            )

    def record_non_quality_refusal(self, ctx: Ctx, order_no: str) -> None:
        self._emit(NonQualityRefusalRecorded, ctx, order_no=order_no)

    def refusals_within(self, at: datetime, window_days: int) -> int:
        since = at - timedelta(days=window_days)
        return sum(1 for moment in self.refusals if moment > since)

    def restrict(
        self, ctx: Ctx, ground: str, evidence: dict[str, Any], threshold: int, window_days: int
    ) -> None:
        if self.is_blocked:
            raise RuleViolation(
                codes.ACCOUNT_ALREADY_RESTRICTED, "the account is already restricted"
            )
        self.check_ground(ctx, ground, threshold, window_days)
        self._emit(AccountRestricted, ctx, ground=ground, evidence=evidence)

    def terminate(self, ctx: Ctx, ground: str, threshold: int, window_days: int) -> None:
        if self.terminated:
            raise RuleViolation(
                codes.ACCOUNT_ALREADY_TERMINATED, "the account is already terminated"
            )
        self.check_ground(ctx, ground, threshold, window_days)
        self._emit(AccountTerminated, ctx, ground=ground)

    def check_ground(self, ctx: Ctx, ground: str, threshold: int, window_days: int) -> None:
        """One of the eight grounds; 6.1(5), "several refusals in a short period", is
        checked against the refusals on record."""
        if ground not in RESTRICTION_GROUNDS:
            raise RuleViolation(codes.UNKNOWN_GROUND, "the ground is not one of 6.1(1)-(8)")
        refusals = self.refusals_within(ctx.at, window_days)
        if ground == "6.1(5)" and refusals < threshold:
            raise RuleViolation(
                codes.REFUSAL_THRESHOLD_NOT_MET,
                f"the account has {refusals} non-quality refusals in "
                f"{window_days} days, {threshold} needed",
            )

    def decide_open_order(self, ctx: Ctx, order_no: str, disposition: str) -> None:
        """6.2: the seller decides for each open order whether it is closed or goes on."""
        if not self.is_blocked:
            raise RuleViolation(
                codes.ACCOUNT_NOT_RESTRICTED, "the account is in good standing", clause="6.2"
            )
        self._emit(OpenOrderDispositionDecided, ctx, order_no=order_no, disposition=disposition)

    def check_ground_matches(self, ground: str) -> None:
        """A closure citing the account's state must cite the state it is really in."""
        actual = self.terminated if ground == "account_terminated" else self.is_blocked
        if not actual:
            raise RuleViolation(
                codes.ACCOUNT_NOT_RESTRICTED,
                f"the account is not {ground.removeprefix('account_')}",
                clause="6.2" if ground == "account_terminated" else "6.1",
            )

    def check_disposition_close(self, order_no: str) -> None:
        if self.dispositions.get(order_no) != "close":
            raise RuleViolation(
                codes.DISPOSITION_NOT_CLOSE,
                f"order {order_no}: the seller has not decided to close it",
            )
