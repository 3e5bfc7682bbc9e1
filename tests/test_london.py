"""London wall-clock wording for deadlines, whatever zone the instant arrives in."""

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from events import london

LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")
UTC = dt.UTC


@pytest.fixture(autouse=True)
def _london_zone(settings):
    settings.PRESALE_TIME_ZONE = "Europe/London"


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (dt.datetime(2026, 12, 1, 19, 0, tzinfo=UTC), "7PM"),
        (dt.datetime(2027, 7, 13, 18, 0, tzinfo=UTC), "7PM"),
        (dt.datetime(2026, 11, 29, 23, 59, 59, tzinfo=LONDON), "11:59PM"),
        (dt.datetime(2027, 7, 11, 22, 59, 59, tzinfo=UTC), "11:59PM"),
        (dt.datetime(2026, 12, 1, 0, 0, tzinfo=LONDON), "midnight"),
        (dt.datetime(2026, 12, 1, 0, 5, tzinfo=LONDON), "12:05AM"),
        (dt.datetime(2026, 12, 1, 12, 0, tzinfo=LONDON), "12PM"),
        (dt.datetime(2026, 12, 1, 12, 30, tzinfo=LONDON), "12:30PM"),
        (dt.datetime(2026, 12, 1, 1, 0, tzinfo=LONDON), "1AM"),
        (dt.datetime(2026, 12, 1, 11, 59, tzinfo=LONDON), "11:59AM"),
        (dt.datetime(2026, 12, 1, 13, 1, tzinfo=LONDON), "1:01PM"),
        (dt.datetime(2026, 12, 1, 19, 0, 45, tzinfo=LONDON), "7PM"),
    ],
    ids=str,
)
def test_clock(moment, text):
    assert london.clock(moment) == text


def test_clock_on_both_sides_of_the_spring_gap():
    assert london.clock(dt.datetime(2027, 3, 28, 0, 59, tzinfo=UTC)) == "12:59AM"
    assert london.clock(dt.datetime(2027, 3, 28, 1, 0, tzinfo=UTC)) == "2AM"


def test_clock_through_the_repeated_autumn_hour():
    assert london.clock(dt.datetime(2027, 10, 31, 0, 30, tzinfo=UTC)) == "1:30AM"
    assert london.clock(dt.datetime(2027, 10, 31, 1, 30, tzinfo=UTC)) == "1:30AM"
    assert london.clock(dt.datetime(2027, 10, 31, 2, 30, tzinfo=UTC)) == "2:30AM"


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (dt.datetime(2026, 12, 1, 19, 0, tzinfo=LONDON), "Tuesday 1 December"),
        (dt.datetime(2027, 3, 28, 12, 0, tzinfo=LONDON), "Sunday 28 March"),
        (dt.datetime(2027, 10, 31, 23, 59, 59, tzinfo=LONDON), "Sunday 31 October"),
        # 23:30 UTC on a summer Monday is already Tuesday in London.
        (dt.datetime(2027, 7, 12, 23, 30, tzinfo=UTC), "Tuesday 13 July"),
        (dt.datetime(2026, 12, 31, 23, 30, tzinfo=UTC), "Thursday 31 December"),
    ],
    ids=str,
)
def test_day(moment, text):
    assert london.day(moment) == text


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (dt.datetime(2026, 12, 1, 19, 0, tzinfo=UTC), "7PM Tuesday 1 December"),
        (dt.datetime(2027, 3, 30, 18, 0, tzinfo=UTC), "7PM Tuesday 30 March"),
        (dt.datetime(2027, 11, 2, 19, 0, tzinfo=UTC), "7PM Tuesday 2 November"),
        (dt.datetime(2027, 3, 28, 22, 59, 59, tzinfo=UTC), "11:59PM Sunday 28 March"),
        (dt.datetime(2027, 7, 12, 23, 30, tzinfo=UTC), "12:30AM Tuesday 13 July"),
    ],
    ids=str,
)
def test_when(moment, text):
    assert london.when(moment) == text


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (dt.datetime(2026, 12, 5, 20, 0, tzinfo=LONDON), "Sat 5 Dec 2026, 8PM"),
        (dt.datetime(2027, 7, 3, 18, 30, tzinfo=UTC), "Sat 3 Jul 2027, 7:30PM"),
        (
            dt.datetime(2026, 12, 31, 23, 30, tzinfo=NEW_YORK),
            "Fri 1 Jan 2027, 4:30AM",
        ),
    ],
    ids=str,
)
def test_short_datetime(moment, text):
    assert london.short_datetime(moment) == text


def test_to_london_keeps_the_instant():
    moment = dt.datetime(2027, 7, 13, 18, 0, tzinfo=UTC)
    local = london.to_london(moment)

    assert local == moment
    assert local.replace(tzinfo=None) == dt.datetime(2027, 7, 13, 19, 0)
    assert local.tzname() == "BST"


def test_wording_follows_the_presale_time_zone_setting(settings):
    settings.PRESALE_TIME_ZONE = "Europe/Paris"

    assert london.when(dt.datetime(2026, 12, 1, 19, 0, tzinfo=UTC)) == "8PM Tuesday 1 December"


@given(
    st.datetimes(
        min_value=dt.datetime(2000, 1, 1),
        max_value=dt.datetime(2100, 1, 1),
        timezones=st.just(UTC),
    )
)
def test_clock_always_names_the_london_hour_and_minute(moment):
    text = london.clock(moment)
    local = moment.astimezone(LONDON)
    if (local.hour, local.minute) == (0, 0):
        assert text == "midnight"
        return
    match = re.fullmatch(r"(1[0-2]|[1-9])(?::([0-5]\d))?(AM|PM)", text)

    assert match, text
    hour, minute, suffix = match.groups()
    assert (int(hour) % 12) + (12 if suffix == "PM" else 0) == local.hour
    assert int(minute or 0) == local.minute
    assert minute != "00"
