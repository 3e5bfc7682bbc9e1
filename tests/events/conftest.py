"""A fixed clock for the event planning tests: Wednesday 2 December 2026, noon in London. This
week's cycle (week of 30 November) is open; its charge run is 7PM Tuesday 8 December."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import time_machine

LONDON = ZoneInfo("Europe/London")
NOW = dt.datetime(2026, 12, 2, 12, 0, tzinfo=LONDON)


def london(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=LONDON)


@pytest.fixture(autouse=True)
def _wednesday_noon():
    with time_machine.travel(NOW, tick=True) as traveller:
        yield traveller


@pytest.fixture
def this_week(db):
    from events.selectors import cycle_for_week

    return cycle_for_week(dt.date(2026, 11, 30))


@pytest.fixture
def next_week(db):
    from events.selectors import cycle_for_week

    return cycle_for_week(dt.date(2026, 12, 7))


@pytest.fixture
def place(make_member):
    """A pre-order of a new member for an event, in a given status (no Stripe: the planning
    rules only count pre-orders)."""
    from tests.factories import stored_preorder

    def make(event, status: str = "pending"):
        return stored_preorder(make_member(), event, status)

    return make
