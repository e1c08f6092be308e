"""Injected time: every event's timestamp comes from a Clock, so replays are deterministic."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol

from ledger.domain.errors import InvalidCommand

# A command's own time ("at") lies in this range. The earliest is before any record a
# Chinese online mall could hold (a historical import reaches back years, not decades); the
# latest is "now" plus the clock skew between the source system and ours: a later time has
# not happened yet, and would open or close windows (payment deadlines, return windows) that
# have not begun. "Now" is the later of the ledger's clock and the system's: a manual clock
# (tests, the demo) may lag behind the commands it is given, but nothing is dated after the
# real present.
EARLIEST_COMMAND_TIME = datetime(2000, 1, 1, tzinfo=UTC)
MAX_CLOCK_SKEW = timedelta(minutes=5)


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that moves only when told to: tests, the demo and imports of history use it."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start time")
        self._now = start.astimezone(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, delta: timedelta) -> datetime:
        if delta < timedelta(0):
            raise ValueError("time does not run backwards")
        with self._lock:
            self._now += delta
            return self._now

    def set(self, moment: datetime) -> None:
        if moment.tzinfo is None:
            raise ValueError("ManualClock.set needs a timezone-aware time")
        with self._lock:
            self._now = moment.astimezone(UTC)


def check_command_time(at: datetime, clock_now: datetime) -> datetime:
    """``at`` in UTC if it carries an offset and lies between ``EARLIEST_COMMAND_TIME`` and
    now (the later of ``clock_now`` and the system's time) plus ``MAX_CLOCK_SKEW``; else
    ``InvalidCommand`` naming ``at``. Compared before it is converted: converting a time at
    the edge of the calendar (year 1 at +08:00) overflows."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise InvalidCommand("at", "must carry a timezone offset")
    latest = max(clock_now, datetime.now(UTC)) + MAX_CLOCK_SKEW
    if not EARLIEST_COMMAND_TIME <= at <= latest:
        raise InvalidCommand(
            "at",
            f"must lie between {EARLIEST_COMMAND_TIME.isoformat()} and now plus "
            f"{int(MAX_CLOCK_SKEW.total_seconds() // 60)} minutes",
        )
    return at.astimezone(UTC)
