"""London wall-clock wording for instants, the way members read deadlines."""

import datetime as dt
from zoneinfo import ZoneInfo

from django.conf import settings


def to_london(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(ZoneInfo(settings.PRESALE_TIME_ZONE))


def clock(moment: dt.datetime) -> str:
    """'7PM', '11:59PM', 'midnight'."""
    local = to_london(moment)
    if (local.hour, local.minute) == (0, 0):
        return "midnight"
    hour = local.hour % 12 or 12
    suffix = "AM" if local.hour < 12 else "PM"
    return f"{hour}{suffix}" if local.minute == 0 else f"{hour}:{local.minute:02d}{suffix}"


def day(moment: dt.datetime) -> str:
    """'Tuesday 1 December'."""
    local = to_london(moment)
    return f"{local:%A} {local.day} {local:%B}"


def when(moment: dt.datetime) -> str:
    """'7PM Tuesday 1 December'."""
    return f"{clock(moment)} {day(moment)}"


def short_datetime(moment: dt.datetime) -> str:
    """'Sat 5 Dec 2026, 8PM'."""
    local = to_london(moment)
    return f"{local:%a} {local.day} {local:%b %Y}, {clock(moment)}"
