"""Which stored presale cycle is current or open, in London time, with early closes."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import time_machine

from events import selectors
from events.models import PresaleCycle

LONDON = ZoneInfo("Europe/London")
UTC = dt.UTC

pytestmark = pytest.mark.django_db


def london(*args: int, fold: int = 0) -> dt.datetime:
    return dt.datetime(*args, tzinfo=LONDON, fold=fold)


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _default_schedule(settings):
    # The environment may override the schedule; these tests are about the documented default.
    settings.PRESALE_TIME_ZONE = "Europe/London"
    settings.PRESALE_WINDOW_OPENS = "MON 00:00"
    settings.PRESALE_WINDOW_CLOSES = "SUN 23:59:59"
    settings.PRESALE_CHARGE_AT = "TUE 19:00"


@pytest.fixture
def friday_schedule(settings):
    settings.PRESALE_WINDOW_OPENS = "MON 00:00"
    settings.PRESALE_WINDOW_CLOSES = "FRI 17:59:59"
    settings.PRESALE_CHARGE_AT = "SAT 10:00"


def close_early(cycle: PresaleCycle, at: dt.datetime) -> None:
    cycle.closed_early_at = at
    cycle.save(update_fields=["closed_early_at"])


# --- cycle_for_week ------------------------------------------------------------------------------


def test_cycle_for_week_stores_the_schedules_instants():
    cycle = selectors.cycle_for_week(dt.date(2027, 3, 22))
    cycle.refresh_from_db()

    assert cycle.week_start == dt.date(2027, 3, 22)
    assert cycle.opens_at == utc(2027, 3, 22, 0, 0)
    assert cycle.closes_at == utc(2027, 3, 28, 23, 0)
    assert cycle.charge_at == utc(2027, 3, 30, 18, 0)
    assert cycle.closed_early_at is None


def test_cycle_for_week_is_created_once():
    first = selectors.cycle_for_week(dt.date(2026, 11, 23))
    second = selectors.cycle_for_week(dt.date(2026, 11, 23))

    assert first.pk == second.pk
    assert PresaleCycle.objects.count() == 1


def test_cycle_for_week_refuses_a_non_monday():
    with pytest.raises(ValueError):
        selectors.cycle_for_week(dt.date(2026, 11, 24))
    assert not PresaleCycle.objects.exists()


def test_a_stored_cycle_keeps_its_instants_when_the_schedule_changes(settings):
    stored = selectors.cycle_for_week(dt.date(2026, 11, 23))
    settings.PRESALE_WINDOW_CLOSES = "FRI 17:59:59"
    settings.PRESALE_CHARGE_AT = "SAT 10:00"

    again = selectors.cycle_for_week(dt.date(2026, 11, 23))

    assert again.pk == stored.pk
    assert again.closes_at == utc(2026, 11, 30, 0, 0)
    assert again.charge_at == utc(2026, 12, 1, 19, 0)


# --- current_cycle / open_cycle at the boundary --------------------------------------------------


@pytest.mark.parametrize(
    ("last_second", "first_closed", "week"),
    [
        (london(2026, 11, 29, 23, 59, 59), london(2026, 11, 30, 0, 0), dt.date(2026, 11, 23)),
        (utc(2027, 7, 11, 22, 59, 59), utc(2027, 7, 11, 23, 0), dt.date(2027, 7, 5)),
        (london(2027, 3, 28, 23, 59, 59), london(2027, 3, 29, 0, 0), dt.date(2027, 3, 22)),
        (london(2027, 10, 31, 23, 59, 59), london(2027, 11, 1, 0, 0), dt.date(2027, 10, 25)),
    ],
    ids=["winter", "summer-utc", "spring-forward", "fall-back"],
)
def test_sunday_235959_is_open_and_monday_midnight_is_the_next_week(
    last_second, first_closed, week
):
    with time_machine.travel(last_second, tick=False):
        current = selectors.current_cycle()
        assert current.week_start == week
        assert selectors.open_cycle() == current
        assert current.is_open

    with time_machine.travel(first_closed, tick=False):
        current.refresh_from_db()
        assert not current.is_open
        following = selectors.current_cycle()
        assert following.week_start == week + dt.timedelta(weeks=1)
        assert following.opens_at == first_closed
        assert selectors.open_cycle() == following


def test_an_explicit_now_wins_over_the_clock():
    with time_machine.travel(london(2026, 11, 25, 12, 0), tick=False):
        cycle = selectors.current_cycle(london(2027, 3, 24, 12, 0))

    assert cycle.week_start == dt.date(2027, 3, 22)


def test_in_the_spring_gap_the_open_cycle_charges_at_7pm_bst():
    with time_machine.travel(london(2027, 3, 28, 1, 30), tick=False):
        cycle = selectors.open_cycle()

    assert cycle is not None
    assert cycle.week_start == dt.date(2027, 3, 22)
    assert cycle.closes_at == utc(2027, 3, 28, 23, 0)
    assert cycle.charge_at == utc(2027, 3, 30, 18, 0)


@pytest.mark.parametrize("fold", [0, 1])
def test_in_the_repeated_autumn_hour_the_open_cycle_charges_at_7pm_gmt(fold):
    with time_machine.travel(london(2027, 10, 31, 1, 30, fold=fold), tick=False):
        cycle = selectors.open_cycle()

    assert cycle is not None
    assert cycle.week_start == dt.date(2027, 10, 25)
    assert cycle.opens_at == utc(2027, 10, 24, 23, 0)
    assert cycle.closes_at == utc(2027, 11, 1, 0, 0)
    assert cycle.charge_at == utc(2027, 11, 2, 19, 0)


# --- early close ---------------------------------------------------------------------------------


def test_an_early_close_shuts_the_window_and_points_at_next_week():
    now = london(2026, 11, 27, 12, 0)
    this_week = selectors.cycle_for_week(dt.date(2026, 11, 23))
    close_early(this_week, now - dt.timedelta(hours=1))

    assert selectors.open_cycle(now) is None
    current = selectors.current_cycle(now)
    assert current.week_start == dt.date(2026, 11, 30)
    assert current.opens_at > now

    monday = london(2026, 11, 30, 0, 0)
    assert selectors.open_cycle(monday) == current


def test_an_early_close_takes_effect_at_its_exact_instant():
    at = london(2026, 11, 27, 12, 0)
    close_early(selectors.cycle_for_week(dt.date(2026, 11, 23)), at)

    assert selectors.open_cycle(at - dt.timedelta(microseconds=1)).week_start == dt.date(
        2026, 11, 23
    )
    assert selectors.open_cycle(at) is None
    assert selectors.current_cycle(at).week_start == dt.date(2026, 11, 30)


def test_an_early_close_with_the_clock_pinned():
    close_early(selectors.cycle_for_week(dt.date(2027, 3, 22)), london(2027, 3, 28, 0, 30))

    with time_machine.travel(london(2027, 3, 28, 1, 30), tick=False):
        assert selectors.open_cycle() is None
        assert selectors.current_cycle().week_start == dt.date(2027, 3, 29)


def test_an_early_close_later_than_the_scheduled_close_changes_nothing():
    cycle = selectors.cycle_for_week(dt.date(2026, 11, 23))
    close_early(cycle, london(2026, 11, 30, 6, 0))

    assert selectors.open_cycle(london(2026, 11, 29, 23, 59, 59)) == cycle
    assert selectors.current_cycle(london(2026, 11, 30, 0, 0)).week_start == dt.date(2026, 11, 30)


# --- a custom schedule ---------------------------------------------------------------------------


@pytest.mark.usefixtures("friday_schedule")
def test_custom_schedule_closes_friday_and_charges_saturday():
    before = london(2026, 11, 27, 17, 59, 59)
    cycle = selectors.open_cycle(before)

    assert cycle is not None
    assert cycle.week_start == dt.date(2026, 11, 23)
    assert cycle.closes_at == london(2026, 11, 27, 18, 0)
    assert cycle.charge_at == london(2026, 11, 28, 10, 0)

    at_close = london(2026, 11, 27, 18, 0)
    assert selectors.open_cycle(at_close) is None
    assert selectors.current_cycle(at_close).week_start == dt.date(2026, 11, 30)


@pytest.mark.usefixtures("friday_schedule")
def test_custom_schedule_over_the_weekend_looks_ahead_to_monday():
    with time_machine.travel(london(2026, 11, 28, 9, 0), tick=False):
        assert selectors.open_cycle() is None
        current = selectors.current_cycle()

    assert current.week_start == dt.date(2026, 11, 30)
    assert current.opens_at == london(2026, 11, 30, 0, 0)
    assert current.closes_at == london(2026, 12, 4, 18, 0)
    assert current.charge_at == london(2026, 12, 5, 10, 0)


@pytest.mark.usefixtures("friday_schedule")
def test_custom_schedule_across_the_autumn_change_charges_at_10am_gmt():
    cycle = selectors.current_cycle(london(2027, 10, 27, 12, 0))

    assert cycle.week_start == dt.date(2027, 10, 25)
    assert cycle.closes_at == utc(2027, 10, 29, 17, 0)
    assert cycle.charge_at == utc(2027, 10, 30, 9, 0)
    assert selectors.cycle_for_week(dt.date(2027, 11, 1)).charge_at == utc(2027, 11, 6, 10, 0)


def test_a_stored_cycle_stays_open_after_the_schedule_is_shortened(settings):
    # Members were told this week closes on Sunday; a later schedule change must not cut it short
    # (PresaleCycle's docstring), and the pre-order service still accepts orders for it.
    stored = selectors.cycle_for_week(dt.date(2026, 11, 23))
    settings.PRESALE_WINDOW_CLOSES = "FRI 17:59:59"
    settings.PRESALE_CHARGE_AT = "SAT 10:00"

    saturday = london(2026, 11, 28, 12, 0)

    assert stored.is_open_at(saturday)
    assert selectors.open_cycle(saturday) == stored
