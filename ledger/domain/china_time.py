"""The China-time calendar, used only where a rule counts days (CPL 25, 7D art. 6; ECL 31)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

CHINA = ZoneInfo("Asia/Shanghai")


def china_date(moment: datetime) -> date:
    return moment.astimezone(CHINA).date()


def end_of_day_after(moment: datetime, days: int) -> datetime:
    """Signed on day D: the window ends at D+days, 24:00 China time (returned in UTC).

    The count starts the day after signing (7D art. 6), so 24:00 of D+days is the first
    instant that is too late.
    """
    first_day_too_late = china_date(moment) + timedelta(days=days + 1)
    return datetime.combine(first_day_too_late, time(0), CHINA).astimezone(UTC)


def add_years_china(moment: datetime, years: int) -> datetime:
    """Same China calendar date ``years`` later; 29 Feb becomes 28 Feb (DOMAIN.md section 7)."""
    local = moment.astimezone(CHINA)
    try:
        shifted = local.replace(year=local.year + years)
    except ValueError:
        shifted = local.replace(year=local.year + years, day=28)
    return shifted.astimezone(UTC)


def is_end_of_day(moment: datetime) -> bool:
    """True if ``moment`` is 00:00 China time: the 24:00 that ends the day before."""
    return moment.astimezone(CHINA).time() == time(0)


def retention_end(completed_at: datetime, years: int) -> datetime:
    """When a record kept ``years`` from ``completed_at`` may go (ECL 31: "自交易完成之日起不少于
    三年"), in UTC: the same China calendar date and time ``years`` later, 29 Feb becoming
    28 Feb (DOMAIN.md section 7).

    A completion at 00:00 China time is the 24:00 that ends the day before, the end of a
    return window (7D art. 6: the window's last day is the day it belongs to): a window
    ending at 24:00 on 28 Feb 2025 is kept until 24:00 on 28 Feb 2028, which is 29 Feb 2028
    00:00, not 1 March; one ending at 24:00 on 28 Feb 2028 (29 Feb 00:00) is kept until 24:00
    on 28 Feb 2031, not 28 Feb 00:00. Any other moment counts as ``add_years_china``.
    """
    if not is_end_of_day(completed_at):
        return add_years_china(completed_at, years)
    last_day = china_date(completed_at) - timedelta(days=1)
    try:
        same_day = last_day.replace(year=last_day.year + years)
    except ValueError:  # 29 Feb in a year without one
        same_day = last_day.replace(year=last_day.year + years, day=28)
    return datetime.combine(same_day + timedelta(days=1), time(0), CHINA).astimezone(UTC)


def china_text(moment: datetime) -> str:
    """A moment as a reader in China names it, ``2029-03-09 24:00`` for the end of a day
    (00:00 of the next), else ``2029-03-09 10:30`` (to the minute, seconds if any)."""
    if is_end_of_day(moment):
        return f"{china_date(moment) - timedelta(days=1)} 24:00"
    local = moment.astimezone(CHINA)
    shown = "%Y-%m-%d %H:%M:%S" if local.second or local.microsecond else "%Y-%m-%d %H:%M"
    return local.strftime(shown)
