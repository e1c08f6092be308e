"""The China-time calendar (ledger/domain/china_time.py): day counts for CPL 25 / 7D art. 6
and ECL 31, in Asia/Shanghai (UTC+8 all year since 1991), returned as UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from ledger.domain.china_time import (
    CHINA,
    add_years_china,
    china_date,
    china_text,
    end_of_day_after,
    retention_end,
)

MICRO = timedelta(microseconds=1)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def shanghai(*args: int) -> datetime:
    return datetime(*args, tzinfo=CHINA)


# -- china_date --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (utc(2026, 3, 2, 15, 59, 59, 999999), date(2026, 3, 2)),
        (utc(2026, 3, 2, 16, 0), date(2026, 3, 3)),  # UTC afternoon is the next day in China
        (utc(2026, 12, 31, 16, 0), date(2027, 1, 1)),
        (datetime(2026, 3, 2, 10, 59, tzinfo=timezone(timedelta(hours=-5))), date(2026, 3, 2)),
        (datetime(2026, 3, 2, 11, 0, tzinfo=timezone(timedelta(hours=-5))), date(2026, 3, 3)),
    ],
)
def test_the_china_date_is_taken_in_shanghai_whatever_the_offset_given(
    moment: datetime, expected: date
) -> None:
    assert china_date(moment) == expected


# -- end_of_day_after --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("signed", "deadline"),
    [
        pytest.param(shanghai(2026, 3, 2, 23, 30), utc(2026, 3, 9, 16, 0), id="23:30-china"),
        pytest.param(shanghai(2026, 3, 3, 0, 30), utc(2026, 3, 10, 16, 0), id="00:30-china"),
        pytest.param(shanghai(2026, 3, 2, 0, 0), utc(2026, 3, 9, 16, 0), id="first-instant"),
        pytest.param(
            shanghai(2026, 3, 2, 23, 59, 59, 999999), utc(2026, 3, 9, 16, 0), id="last-instant"
        ),
        # UTC midnight crossings: the same UTC day is two China days.
        pytest.param(utc(2026, 3, 2, 15, 59, 59, 999999), utc(2026, 3, 9, 16, 0), id="utc-pm"),
        pytest.param(utc(2026, 3, 2, 16, 0), utc(2026, 3, 10, 16, 0), id="utc-16:00"),
        pytest.param(utc(2026, 3, 2, 23, 59), utc(2026, 3, 10, 16, 0), id="utc-23:59"),
        pytest.param(utc(2026, 3, 3, 0, 0), utc(2026, 3, 10, 16, 0), id="utc-midnight"),
        # Leap day inside the window: 25 Feb + 7 days is 3 March in 2028, 4 March in 2027.
        pytest.param(shanghai(2028, 2, 25, 12, 0), utc(2028, 3, 3, 16, 0), id="leap-year"),
        pytest.param(shanghai(2027, 2, 25, 12, 0), utc(2027, 3, 4, 16, 0), id="common-year"),
        pytest.param(shanghai(2026, 12, 28, 20, 0), utc(2027, 1, 4, 16, 0), id="year-end"),
        # No DST: summer and winter deadlines both fall at 16:00 UTC.
        pytest.param(shanghai(2026, 7, 10, 9, 0), utc(2026, 7, 17, 16, 0), id="summer"),
        pytest.param(shanghai(2026, 1, 10, 9, 0), utc(2026, 1, 17, 16, 0), id="winter"),
    ],
)
def test_a_seven_day_window_ends_at_24_00_china_time_of_day_seven(
    signed: datetime, deadline: datetime
) -> None:
    ends = end_of_day_after(signed, 7)

    assert ends == deadline
    assert ends.utcoffset() == timedelta(0)
    assert ends.astimezone(CHINA).time() == datetime.min.time()


def test_the_window_end_is_the_first_instant_that_is_too_late() -> None:
    signed = shanghai(2026, 3, 2, 23, 30)
    ends = end_of_day_after(signed, 7)

    assert china_date(ends - MICRO) == date(2026, 3, 9)
    assert china_date(ends) == date(2026, 3, 10)


def test_a_zero_day_window_ends_at_midnight_after_signing() -> None:
    assert end_of_day_after(shanghai(2026, 3, 2, 8, 0), 0) == utc(2026, 3, 2, 16, 0)


def test_a_longer_policy_window_counts_calendar_days_the_same_way() -> None:
    assert end_of_day_after(shanghai(2026, 3, 2, 8, 0), 15) == utc(2026, 3, 17, 16, 0)


# -- add_years_china ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("moment", "years", "expected"),
    [
        pytest.param(utc(2026, 3, 9, 16, 0), 3, utc(2029, 3, 9, 16, 0), id="plain"),
        pytest.param(shanghai(2028, 2, 29, 12, 0), 3, shanghai(2031, 2, 28, 12, 0), id="29feb"),
        pytest.param(shanghai(2028, 2, 29, 12, 0), 4, shanghai(2032, 2, 29, 12, 0), id="to-leap"),
        # 07:00 on 29 Feb in China is 28 Feb 23:00 UTC: the China date is what counts.
        pytest.param(utc(2028, 2, 28, 23, 0), 3, utc(2031, 2, 27, 23, 0), id="29feb-china-only"),
        # 29 Feb 17:00 UTC is already 1 March in China: nothing to clamp.
        pytest.param(utc(2028, 2, 29, 17, 0), 3, shanghai(2031, 3, 1, 1, 0), id="29feb-utc-only"),
        pytest.param(shanghai(2027, 2, 28, 0, 0), 1, shanghai(2028, 2, 28, 0, 0), id="28feb"),
        pytest.param(shanghai(2026, 12, 31, 23, 59), 3, shanghai(2029, 12, 31, 23, 59), id="nye"),
    ],
)
def test_adding_years_keeps_the_china_calendar_date_and_29_february_becomes_28(
    moment: datetime, years: int, expected: datetime
) -> None:
    later = add_years_china(moment, years)

    assert later == expected
    assert later.utcoffset() == timedelta(0)


def test_adding_years_keeps_the_china_time_of_day() -> None:
    later = add_years_china(utc(2028, 2, 28, 23, 0, 5, 123), 3)

    local = later.astimezone(CHINA)
    assert (local.date(), local.time()) == (
        date(2031, 2, 28),
        datetime(1, 1, 1, 7, 0, 5, 123).time(),
    )


# -- retention_end (ECL 31) ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("completed", "expected"),
    [
        # Any moment but 00:00 counts as add_years_china: the same date and time.
        pytest.param(shanghai(2026, 3, 9, 10, 30), shanghai(2029, 3, 9, 10, 30), id="plain"),
        pytest.param(shanghai(2028, 2, 29, 7, 0), shanghai(2031, 2, 28, 7, 0), id="29feb"),
        # 24:00 on 28 Feb 2025 (a window's end) is kept until 24:00 on 28 Feb 2028, the
        # first instant of 29 Feb there; counting from 1 March would keep a day more.
        pytest.param(shanghai(2025, 3, 1), shanghai(2028, 2, 29), id="24:00-28feb-to-leap"),
        # 24:00 on 28 Feb 2028 (stored 29 Feb 00:00): until 24:00 on 28 Feb 2031, not the
        # 28 Feb 00:00 that reading it as 29 Feb and clamping gives (a day short).
        pytest.param(shanghai(2028, 2, 29), shanghai(2031, 3, 1), id="24:00-28feb-leap"),
        # 24:00 on 29 Feb 2028: its last day has no 2031 twin, so 24:00 on 28 Feb 2031.
        pytest.param(shanghai(2028, 3, 1), shanghai(2031, 3, 1), id="24:00-29feb"),
        pytest.param(shanghai(2026, 3, 10), shanghai(2029, 3, 10), id="24:00-plain"),
    ],
)
def test_retention_counts_three_china_years_from_the_day_completion_ends(
    completed: datetime, expected: datetime
) -> None:
    until = retention_end(completed, 3)

    assert until == expected
    assert until.utcoffset() == timedelta(0)


def test_a_moment_is_named_in_china_time_with_the_end_of_a_day_as_24_00() -> None:
    assert china_text(shanghai(2028, 2, 29)) == "2028-02-28 24:00"
    assert china_text(utc(2029, 3, 9, 1, 0)) == "2029-03-09 09:00"
    assert china_text(shanghai(2029, 3, 9, 9, 0, 5)) == "2029-03-09 09:00:05"
