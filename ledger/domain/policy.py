"""Open values of DOMAIN.md section 9, as one immutable policy object."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Policy:
    # 3.1.3: "the specified time" to pay; the agreement leaves the length open.
    payment_deadline_min: int = 30
    # 6.1(5) / 3.1.6(4): non-quality refusals that let the platform restrict an account.
    refusal_threshold: int = 3
    refusal_window_days: int = 90
    # CPL 25 / 7D art. 6: the no-reason window, counted from the day after signing.
    return_window_days: int = 7
    return_window_holiday_extension: bool = False
    # 7D art. 15: coupons come back on a no-reason return unless agreed otherwise.
    coupons_restored_on_no_reason_return: bool = True
