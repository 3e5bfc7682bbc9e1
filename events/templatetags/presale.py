"""Template filters for money and London times."""

import datetime as dt

from django import template

from events import london
from events.pricing import format_pence

register = template.Library()


@register.filter
def pence(value: int | None) -> str:
    return "" if value is None else format_pence(int(value))


@register.filter
def london_when(moment: dt.datetime | None) -> str:
    return london.when(moment) if moment else ""


@register.filter
def london_day(moment: dt.datetime | None) -> str:
    return london.day(moment) if moment else ""


@register.filter
def london_clock(moment: dt.datetime | None) -> str:
    return london.clock(moment) if moment else ""


@register.filter
def london_datetime(moment: dt.datetime | None) -> str:
    return london.short_datetime(moment) if moment else ""


@register.filter
def london_short_day(moment: dt.datetime | None) -> str:
    """'Tue 8 Dec'."""
    if not moment:
        return ""
    local = london.to_london(moment)
    return f"{local:%a} {local.day} {local:%b}"


@register.filter
def percent_of(part: int, whole: int) -> int:
    """Bar widths: part as a whole-number percentage of whole, capped at 100."""
    if not whole:
        return 100 if part else 0
    return min(100, round(part * 100 / whole))


@register.filter
def get_item(mapping: dict, key):
    return mapping.get(key, 0)
