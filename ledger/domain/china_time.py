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
