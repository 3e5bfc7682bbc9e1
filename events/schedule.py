"""The weekly presale schedule, in London wall-clock time, turned into exact instants.

A cycle is named by the Monday of the week its pre-order window opens in. Its window opens at
PRESALE_WINDOW_OPENS, stays open up to and including the second PRESALE_WINDOW_CLOSES names, and
its charge run is due at the first PRESALE_CHARGE_AT after that. All arithmetic is done on London
wall-clock times and only then converted to instants, so "Tuesday 19:00" stays 19:00 on both
sides of a clock change.
"""

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.conf import settings

WEEKDAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
_SPEC = re.compile(r"^(MON|TUE|WED|THU|FRI|SAT|SUN)\s+(\d{1,2}):(\d{2})(?::(\d{2}))?$")


@dataclass(frozen=True)
class WeeklyTime:
    """A weekday and a wall-clock time, e.g. TUE 19:00."""

    weekday: int  # Monday is 0
    time: dt.time

    @classmethod
    def parse(cls, spec: str) -> "WeeklyTime":
        match = _SPEC.match(spec.strip().upper())
        if not match:
            raise ValueError(f"{spec!r} is not a weekly time like 'TUE 19:00' or 'SUN 23:59:59'.")
        day, hour, minute, second = match.groups()
        return cls(WEEKDAYS.index(day), dt.time(int(hour), int(minute), int(second or 0)))

    def on_or_after(self, start: dt.datetime) -> dt.datetime:
        """The first naive wall-clock datetime at or after `start` that falls on this time."""
        days_ahead = (self.weekday - start.weekday()) % 7
        candidate = dt.datetime.combine(start.date() + dt.timedelta(days=days_ahead), self.time)
        if candidate < start:
            candidate += dt.timedelta(days=7)
        return candidate


@dataclass(frozen=True)
class CycleTimes:
    week_start: dt.date
    opens_at: dt.datetime  # aware; first instant the window is open
    closes_at: dt.datetime  # aware; first instant the window is closed
    charge_at: dt.datetime  # aware; when the charge run is due

    @property
    def last_open_moment(self) -> dt.datetime:
        """The last whole second of the window, as members are told it ("Sunday 11:59pm")."""
        return self.closes_at - dt.timedelta(seconds=1)


@dataclass(frozen=True)
class WeeklySchedule:
    opens: WeeklyTime
    closes: WeeklyTime  # the last open second
    charge: WeeklyTime
    zone: ZoneInfo

    @classmethod
    def from_settings(cls) -> "WeeklySchedule":
        return cls(
            opens=WeeklyTime.parse(settings.PRESALE_WINDOW_OPENS),
            closes=WeeklyTime.parse(settings.PRESALE_WINDOW_CLOSES),
            charge=WeeklyTime.parse(settings.PRESALE_CHARGE_AT),
            zone=ZoneInfo(settings.PRESALE_TIME_ZONE),
        )

    def _aware(self, wall: dt.datetime) -> dt.datetime:
        # Round-tripping through UTC moves a wall time that falls in a spring-forward gap to the
        # real instant an hour later, instead of keeping an impossible local time.
        # The result is kept in UTC: arithmetic on a London-zoned datetime works on the wall
        # clock, which is off by an hour next to a clock change.
        return wall.replace(tzinfo=self.zone).astimezone(dt.UTC)

    def cycle(self, week_start: dt.date) -> CycleTimes:
        if week_start.weekday() != 0:
            raise ValueError(f"A cycle is named by a Monday, not {week_start:%A %d %B %Y}.")
        monday = dt.datetime.combine(week_start, dt.time())
        opens = self.opens.on_or_after(monday)
        last_open = self.closes.on_or_after(opens)
        closes = last_open + dt.timedelta(seconds=1)
        charge = self.charge.on_or_after(closes)
        return CycleTimes(
            week_start=week_start,
            opens_at=self._aware(opens),
            closes_at=self._aware(closes),
            charge_at=self._aware(charge),
        )

    def current_or_next(self, moment: dt.datetime) -> CycleTimes:
        """The cycle whose window is open at `moment`, or else the next one to open."""
        local_day = moment.astimezone(self.zone).date()
        this_monday = local_day - dt.timedelta(days=local_day.weekday())
        for weeks in (-1, 0, 1):
            times = self.cycle(this_monday + dt.timedelta(weeks=weeks))
            if moment < times.closes_at:
                return times
        return self.cycle(this_monday + dt.timedelta(weeks=2))
