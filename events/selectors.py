"""Reads about events and cycles."""

import datetime as dt

from django.db.models import QuerySet
from django.utils import timezone

from events.models import Event, PresaleCycle
from events.schedule import WeeklySchedule


def cycle_for_week(week_start: dt.date) -> PresaleCycle:
    """The stored cycle for a week, created from the schedule the first time it is needed."""
    times = WeeklySchedule.from_settings().cycle(week_start)
    cycle, _ = PresaleCycle.objects.get_or_create(
        week_start=times.week_start,
        defaults={
            "opens_at": times.opens_at,
            "closes_at": times.closes_at,
            "charge_at": times.charge_at,
        },
    )
    return cycle


def current_cycle(now: dt.datetime | None = None) -> PresaleCycle:
    """The cycle whose window is open now, or else the next one to open."""
    now = now or timezone.now()
    # A stored cycle keeps the instants members were told, even if the schedule changed since.
    stored = (
        PresaleCycle.objects.filter(opens_at__lte=now, closes_at__gt=now)
        .exclude(closed_early_at__lte=now)
        .order_by("opens_at")
        .first()
    )
    if stored is not None:
        return stored
    times = WeeklySchedule.from_settings().current_or_next(now)
    cycle = cycle_for_week(times.week_start)
    if cycle.window_ends_at <= now:
        # Staff closed this window early: members now look ahead to the next one.
        cycle = cycle_for_week(times.week_start + dt.timedelta(weeks=1))
    return cycle


def open_cycle(now: dt.datetime | None = None) -> PresaleCycle | None:
    now = now or timezone.now()
    cycle = current_cycle(now)
    return cycle if cycle.is_open_at(now) else None


def events_of_cycle(cycle: PresaleCycle) -> QuerySet[Event]:
    return cycle.events.order_by("starts_at", "id")


# How many weeks after the current one staff may prepare (next week and the week after).
PLANNING_WEEKS_AHEAD = 2


def planning_cycles(now: dt.datetime | None = None) -> list[PresaleCycle]:
    """The current cycle and the ones staff may prepare ahead, created if need be."""
    current = current_cycle(now)
    return [current] + [
        cycle_for_week(current.week_start + dt.timedelta(weeks=n))
        for n in range(1, PLANNING_WEEKS_AHEAD + 1)
    ]


def cycles_taking_events(now: dt.datetime | None = None) -> QuerySet[PresaleCycle]:
    """Cycles an event may be created in or moved to: prepared ahead or still open."""
    now = now or timezone.now()
    last = planning_cycles(now)[-1]
    return (
        PresaleCycle.objects.filter(
            charge_run_started_at__isnull=True, closes_at__gt=now, week_start__lte=last.week_start
        )
        .exclude(closed_early_at__lte=now)
        .order_by("week_start")
    )


def member_visible_events(cycle: PresaleCycle, now: dt.datetime | None = None) -> QuerySet[Event]:
    """Members see a cycle's events only once its window has opened."""
    now = now or timezone.now()
    if now < cycle.opens_at:
        return Event.objects.none()
    return events_of_cycle(cycle)
