"""The weekly presale schedule: London wall-clock specs turned into exact instants."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from events.schedule import CycleTimes, WeeklySchedule, WeeklyTime

LONDON = ZoneInfo("Europe/London")
UTC = dt.UTC


def london(*args: int, fold: int = 0) -> dt.datetime:
    return dt.datetime(*args, tzinfo=LONDON, fold=fold)


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def elapsed(start: dt.datetime, end: dt.datetime) -> dt.timedelta:
    """Real time between two instants: subtracting datetimes of one zone gives wall-clock time."""
    return end.astimezone(UTC) - start.astimezone(UTC)


def wall(moment: dt.datetime) -> dt.datetime:
    """The London wall clock at an instant. Going through UTC first, because astimezone() to the
    datetime's own zone returns it unchanged, impossible local times included."""
    return moment.astimezone(UTC).astimezone(LONDON).replace(tzinfo=None)


def schedule(opens: str, closes: str, charge: str, zone: str = "Europe/London") -> WeeklySchedule:
    return WeeklySchedule(
        opens=WeeklyTime.parse(opens),
        closes=WeeklyTime.parse(closes),
        charge=WeeklyTime.parse(charge),
        zone=ZoneInfo(zone),
    )


DEFAULT = schedule("MON 00:00", "SUN 23:59:59", "TUE 19:00")
# Closes at Friday 18:00 sharp: the spec names the last open second.
FRIDAY = schedule("MON 00:00", "FRI 17:59:59", "SAT 10:00")
# A window that runs over the week boundary, so the cycle open on a Monday is last week's.
MIDWEEK = schedule("WED 12:00", "TUE 11:59:59", "TUE 19:00")

MONDAYS_2027 = [dt.date(2027, 1, 4) + dt.timedelta(weeks=n) for n in range(52)]


# --- WeeklyTime --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "weekday", "time"),
    [
        ("TUE 19:00", 1, dt.time(19, 0)),
        ("SUN 23:59:59", 6, dt.time(23, 59, 59)),
        ("MON 00:00", 0, dt.time(0, 0)),
        ("mon 0:00", 0, dt.time(0, 0)),
        ("  Fri 18:30  ", 4, dt.time(18, 30)),
        ("SAT\t7:05:09", 5, dt.time(7, 5, 9)),
        ("WED 12:00:00", 2, dt.time(12, 0)),
        ("THU 23:00", 3, dt.time(23, 0)),
    ],
)
def test_weekly_time_parses(spec, weekday, time):
    assert WeeklyTime.parse(spec) == WeeklyTime(weekday, time)


@pytest.mark.parametrize(
    "spec",
    [
        "",
        "   ",
        "TUE",
        "19:00",
        "TUESDAY 19:00",
        "TUES 19:00",
        "XYZ 10:00",
        "TUE19:00",
        "TUE 19",
        "TUE 19:0",
        "TUE 123:00",
        "TUE 19:00:5",
        "TUE 19:00:00:00",
        "TUE 24:00",
        "TUE 19:60",
        "TUE 19:00:60",
        "TUE -1:00",
        "TUE 7PM",
        "TUE 7:00 PM",
        "TUE 19:00 extra",
        "19:00 TUE",
    ],
)
def test_weekly_time_rejects_bad_specs(spec):
    with pytest.raises(ValueError):
        WeeklyTime.parse(spec)


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        (dt.datetime(2026, 12, 1, 18, 59, 59), dt.datetime(2026, 12, 1, 19, 0)),
        (dt.datetime(2026, 12, 1, 19, 0), dt.datetime(2026, 12, 1, 19, 0)),
        (dt.datetime(2026, 12, 1, 19, 0, 1), dt.datetime(2026, 12, 8, 19, 0)),
        (dt.datetime(2026, 11, 30, 0, 0), dt.datetime(2026, 12, 1, 19, 0)),
        (dt.datetime(2026, 12, 2, 8, 0), dt.datetime(2026, 12, 8, 19, 0)),
        (dt.datetime(2026, 12, 6, 23, 59, 59), dt.datetime(2026, 12, 8, 19, 0)),
    ],
)
def test_on_or_after_is_inclusive_and_at_most_a_week_ahead(start, expected):
    assert WeeklyTime.parse("TUE 19:00").on_or_after(start) == expected


# --- cycle() -------------------------------------------------------------------------------------


def test_default_cycle_in_winter():
    times = DEFAULT.cycle(dt.date(2026, 11, 23))

    assert times == CycleTimes(
        week_start=dt.date(2026, 11, 23),
        opens_at=utc(2026, 11, 23, 0, 0),
        closes_at=utc(2026, 11, 30, 0, 0),
        charge_at=utc(2026, 12, 1, 19, 0),
    )
    assert wall(times.last_open_moment) == dt.datetime(2026, 11, 29, 23, 59, 59)
    for moment in (times.opens_at, times.closes_at, times.charge_at):
        assert moment.utcoffset() is not None


def test_default_cycle_in_summer_charges_at_18_utc():
    times = DEFAULT.cycle(dt.date(2027, 7, 5))

    assert times.opens_at == utc(2027, 7, 4, 23, 0)
    assert times.closes_at == utc(2027, 7, 11, 23, 0)
    assert times.charge_at == utc(2027, 7, 13, 18, 0)
    assert wall(times.charge_at) == dt.datetime(2027, 7, 13, 19, 0)


@pytest.mark.parametrize("days", range(1, 7))
def test_cycle_is_named_by_a_monday(days):
    with pytest.raises(ValueError, match="Monday"):
        DEFAULT.cycle(dt.date(2027, 3, 22) + dt.timedelta(days=days))


@pytest.mark.parametrize("week_start", MONDAYS_2027, ids=str)
def test_every_cycle_of_2027_keeps_its_london_wall_clock(week_start):
    times = DEFAULT.cycle(week_start)
    next_monday = week_start + dt.timedelta(weeks=1)

    assert wall(times.opens_at) == dt.datetime.combine(week_start, dt.time(0, 0))
    assert wall(times.last_open_moment) == dt.datetime.combine(
        next_monday - dt.timedelta(days=1), dt.time(23, 59, 59)
    )
    assert wall(times.closes_at) == dt.datetime.combine(next_monday, dt.time(0, 0))
    assert wall(times.charge_at) == dt.datetime.combine(
        next_monday + dt.timedelta(days=1), dt.time(19, 0)
    )
    assert times.closes_at == DEFAULT.cycle(next_monday).opens_at


def test_spring_forward_week_closes_at_monday_midnight_bst():
    times = DEFAULT.cycle(dt.date(2027, 3, 22))

    assert times.opens_at == utc(2027, 3, 22, 0, 0)
    assert times.closes_at == utc(2027, 3, 28, 23, 0)
    assert times.last_open_moment == utc(2027, 3, 28, 22, 59, 59)
    assert elapsed(times.opens_at, times.closes_at) == dt.timedelta(days=7, hours=-1)


def test_charge_run_stays_at_7pm_across_spring_forward():
    before = DEFAULT.cycle(dt.date(2027, 3, 15))
    after = DEFAULT.cycle(dt.date(2027, 3, 22))

    assert before.charge_at == utc(2027, 3, 23, 19, 0)
    assert after.charge_at == utc(2027, 3, 30, 18, 0)
    assert wall(before.charge_at).time() == wall(after.charge_at).time() == dt.time(19, 0)
    assert elapsed(before.charge_at, after.charge_at) == dt.timedelta(days=7, hours=-1)


def test_fall_back_week_closes_at_monday_midnight_gmt():
    times = DEFAULT.cycle(dt.date(2027, 10, 25))

    assert times.opens_at == utc(2027, 10, 24, 23, 0)
    assert times.closes_at == utc(2027, 11, 1, 0, 0)
    assert times.last_open_moment == utc(2027, 10, 31, 23, 59, 59)
    assert elapsed(times.opens_at, times.closes_at) == dt.timedelta(days=7, hours=1)


def test_charge_run_stays_at_7pm_across_fall_back():
    before = DEFAULT.cycle(dt.date(2027, 10, 18))
    after = DEFAULT.cycle(dt.date(2027, 10, 25))

    assert before.charge_at == utc(2027, 10, 26, 18, 0)
    assert after.charge_at == utc(2027, 11, 2, 19, 0)
    assert wall(before.charge_at).time() == wall(after.charge_at).time() == dt.time(19, 0)
    assert elapsed(before.charge_at, after.charge_at) == dt.timedelta(days=7, hours=1)


def test_a_time_in_the_spring_gap_becomes_the_real_instant_an_hour_later():
    times = schedule("MON 00:00", "FRI 17:59:59", "SUN 01:30").cycle(dt.date(2027, 3, 22))

    assert times.charge_at == utc(2027, 3, 28, 1, 30)
    assert wall(times.charge_at) == dt.datetime(2027, 3, 28, 2, 30)


def test_a_repeated_autumn_time_is_its_first_occurrence():
    times = schedule("MON 00:00", "FRI 17:59:59", "SUN 01:30").cycle(dt.date(2027, 10, 25))

    # An instant in the repeated hour never compares equal across zones (PEP 495), so compare UTC.
    assert times.charge_at.astimezone(UTC) == utc(2027, 10, 31, 0, 30)
    assert wall(times.charge_at) == dt.datetime(2027, 10, 31, 1, 30)


@pytest.mark.parametrize(
    ("closes", "week_start"),
    [
        ("SUN 23:59:59", dt.date(2027, 3, 22)),
        ("SUN 23:59:59", dt.date(2027, 10, 25)),
        ("SUN 00:59:59", dt.date(2027, 3, 22)),
        ("SUN 01:59:59", dt.date(2027, 10, 25)),
        ("SUN 00:59:59", dt.date(2027, 10, 25)),
    ],
    ids=str,
)
def test_last_open_moment_is_one_real_second_before_the_close(closes, week_start):
    times = schedule("MON 00:00", closes, "TUE 19:00").cycle(week_start)

    assert elapsed(times.last_open_moment, times.closes_at) == dt.timedelta(seconds=1)


def test_custom_schedule_closes_friday_and_charges_saturday_of_the_same_week():
    times = FRIDAY.cycle(dt.date(2026, 11, 23))

    assert times.opens_at == utc(2026, 11, 23, 0, 0)
    assert times.closes_at == utc(2026, 11, 27, 18, 0)
    assert wall(times.last_open_moment) == dt.datetime(2026, 11, 27, 17, 59, 59)
    assert times.charge_at == utc(2026, 11, 28, 10, 0)


def test_a_closing_spec_without_seconds_names_the_last_open_second():
    times = schedule("MON 00:00", "FRI 18:00", "SAT 10:00").cycle(dt.date(2026, 11, 23))

    assert times.last_open_moment == utc(2026, 11, 27, 18, 0, 0)
    assert times.closes_at == utc(2026, 11, 27, 18, 0, 1)


def test_midweek_window_runs_over_the_week_boundary():
    times = MIDWEEK.cycle(dt.date(2026, 11, 23))

    assert times.opens_at == utc(2026, 11, 25, 12, 0)
    assert times.closes_at == utc(2026, 12, 1, 12, 0)
    assert times.charge_at == utc(2026, 12, 1, 19, 0)


def test_schedule_in_another_zone_uses_that_wall_clock():
    paris = schedule("MON 00:00", "SUN 23:59:59", "TUE 19:00", zone="Europe/Paris")

    assert paris.cycle(dt.date(2026, 11, 23)).opens_at == utc(2026, 11, 22, 23, 0)


# --- current_or_next() ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("last_second", "first_closed", "week", "next_week"),
    [
        (
            london(2026, 11, 29, 23, 59, 59),
            london(2026, 11, 30, 0, 0),
            dt.date(2026, 11, 23),
            dt.date(2026, 11, 30),
        ),
        (
            utc(2027, 7, 11, 22, 59, 59),
            utc(2027, 7, 11, 23, 0),
            dt.date(2027, 7, 5),
            dt.date(2027, 7, 12),
        ),
        (
            london(2027, 3, 28, 23, 59, 59),
            london(2027, 3, 29, 0, 0),
            dt.date(2027, 3, 22),
            dt.date(2027, 3, 29),
        ),
        (
            london(2027, 10, 31, 23, 59, 59),
            london(2027, 11, 1, 0, 0),
            dt.date(2027, 10, 25),
            dt.date(2027, 11, 1),
        ),
    ],
    ids=["winter", "summer-utc", "spring-forward", "fall-back"],
)
def test_sunday_last_second_is_open_and_monday_midnight_opens_the_next_week(
    last_second, first_closed, week, next_week
):
    current = DEFAULT.current_or_next(last_second)
    assert current.week_start == week
    assert current.opens_at <= last_second < current.closes_at
    assert current.closes_at == first_closed

    following = DEFAULT.current_or_next(first_closed)
    assert following.week_start == next_week
    assert following.opens_at == first_closed


def test_the_last_microsecond_of_sunday_is_still_open():
    moment = london(2026, 11, 29, 23, 59, 59) + dt.timedelta(microseconds=999_999)

    assert DEFAULT.current_or_next(moment).week_start == dt.date(2026, 11, 23)


@pytest.mark.parametrize(
    "moment",
    [
        london(2027, 3, 28, 0, 59, 59),
        london(2027, 3, 28, 1, 30),  # does not exist on the clock: 01:30 UTC
        london(2027, 3, 28, 2, 0),
        london(2027, 10, 31, 1, 30, fold=0),
        london(2027, 10, 31, 1, 30, fold=1),
        london(2027, 10, 31, 2, 0),
    ],
    ids=str,
)
def test_moments_around_the_clock_change_belong_to_that_week(moment):
    times = DEFAULT.current_or_next(moment)

    assert times.week_start == moment.date() - dt.timedelta(days=6)
    assert times.opens_at <= moment < times.closes_at


def test_the_same_instant_in_any_zone_gives_the_same_cycle():
    moment = utc(2027, 3, 28, 23, 0)

    assert DEFAULT.current_or_next(moment) == DEFAULT.current_or_next(moment.astimezone(LONDON))
    assert DEFAULT.current_or_next(moment).week_start == dt.date(2027, 3, 29)


@given(
    st.datetimes(
        min_value=dt.datetime(2020, 1, 1),
        max_value=dt.datetime(2035, 12, 31),
        timezones=st.just(UTC),
    )
)
def test_default_windows_tile_time_so_some_cycle_is_always_open(moment):
    times = DEFAULT.current_or_next(moment)

    assert times.week_start.weekday() == 0
    assert times.opens_at <= moment < times.closes_at
    assert wall(times.opens_at).date() == times.week_start


@given(
    st.datetimes(
        min_value=dt.datetime(2020, 1, 1),
        max_value=dt.datetime(2035, 12, 31),
        timezones=st.just(UTC),
    ),
    st.sampled_from([DEFAULT, FRIDAY, MIDWEEK]),
)
def test_current_or_next_is_the_first_cycle_not_yet_closed(moment, weekly):
    times = weekly.current_or_next(moment)
    previous = weekly.cycle(times.week_start - dt.timedelta(weeks=1))

    assert moment < times.closes_at
    assert previous.closes_at <= moment


@pytest.mark.parametrize(
    ("moment", "week", "is_open"),
    [
        (london(2026, 11, 23, 0, 0), dt.date(2026, 11, 23), True),
        (london(2026, 11, 27, 17, 59, 59), dt.date(2026, 11, 23), True),
        (london(2026, 11, 27, 18, 0), dt.date(2026, 11, 30), False),
        (london(2026, 11, 28, 10, 0), dt.date(2026, 11, 30), False),
        (london(2026, 11, 29, 23, 59, 59), dt.date(2026, 11, 30), False),
        (london(2026, 11, 30, 0, 0), dt.date(2026, 11, 30), True),
    ],
    ids=str,
)
def test_friday_close_schedule_points_at_the_next_week_over_the_weekend(moment, week, is_open):
    times = FRIDAY.current_or_next(moment)

    assert times.week_start == week
    assert (times.opens_at <= moment < times.closes_at) is is_open


@pytest.mark.parametrize(
    ("moment", "week", "is_open"),
    [
        (london(2026, 11, 30, 9, 0), dt.date(2026, 11, 23), True),
        (london(2026, 12, 1, 11, 59, 59), dt.date(2026, 11, 23), True),
        (london(2026, 12, 1, 12, 0), dt.date(2026, 11, 30), False),
        (london(2026, 12, 2, 11, 59, 59), dt.date(2026, 11, 30), False),
        (london(2026, 12, 2, 12, 0), dt.date(2026, 11, 30), True),
    ],
    ids=str,
)
def test_midweek_schedule_is_still_in_last_weeks_cycle_on_monday(moment, week, is_open):
    times = MIDWEEK.current_or_next(moment)

    assert times.week_start == week
    assert (times.opens_at <= moment < times.closes_at) is is_open


# --- from_settings() -----------------------------------------------------------------------------


def test_from_settings_reads_the_presale_settings(settings):
    settings.PRESALE_WINDOW_OPENS = "MON 00:00"
    settings.PRESALE_WINDOW_CLOSES = "FRI 17:59:59"
    settings.PRESALE_CHARGE_AT = "SAT 10:00"
    settings.PRESALE_TIME_ZONE = "Europe/London"

    assert WeeklySchedule.from_settings() == FRIDAY


@pytest.mark.parametrize(
    "name", ["PRESALE_WINDOW_OPENS", "PRESALE_WINDOW_CLOSES", "PRESALE_CHARGE_AT"]
)
def test_from_settings_refuses_a_bad_spec(settings, name):
    setattr(settings, name, "Tuesday at 7pm")

    with pytest.raises(ValueError, match="Tuesday at 7pm"):
        WeeklySchedule.from_settings()
