"""The rules staff meet when they prepare events (events/planning.py): each refusal says why and
saves nothing; every change is in the event's audit log with who, when and old → new."""

import datetime as dt

import pytest

from events.models import Event, EventLogEntry
from events.planning import (
    EventDetails,
    EventRuleError,
    PriceChangeNeedsConfirmation,
    copy_week,
    create_event,
    delete_event,
    one_week_later,
    update_event,
)
from events.selectors import cycle_for_week
from preorders.models import PreOrder
from tests.events.conftest import london
from tickets.models import Ticket

pytestmark = pytest.mark.django_db


def details(cycle, **changes) -> EventDetails:
    values = {
        "cycle": cycle,
        "title": "Soul Night",
        "starts_at": london(2026, 12, 12, 20, 0),
        "venue": "The Cellar",
        "public_price_pence": 2500,
    }
    return EventDetails(**{**values, **changes})


def snapshot() -> tuple:
    return (
        list(Event.objects.order_by("pk").values()),
        EventLogEntry.objects.count(),
        list(Ticket.objects.values_list("pk", flat=True)),
    )


def test_an_event_is_created_with_every_field_and_logged(this_week, staff):
    event = create_event(
        details(
            this_week,
            description="Northern soul all night",
            discount_fixed_pence=250,
            fulfilment_mode="ballot",
            public_sale_url="https://tickets.example/soul",
            public_sale_at=london(2026, 12, 9, 10, 0),
        ),
        actor=staff,
    )
    event.refresh_from_db()
    assert (event.public_price_pence, event.discount_fixed_pence) == (2500, 250)
    assert event.member_price_pence == 2250
    assert event.public_sale_url == "https://tickets.example/soul"
    assert event.public_sale_at == london(2026, 12, 9, 10, 0)
    entry = EventLogEntry.objects.get(event=event)
    assert (entry.action, entry.actor) == ("event_created", staff)
    assert "Public price: £25" in entry.detail and "Discount (fixed): £2.50" in entry.detail
    assert "Starts: Sat 12 Dec 2026, 8PM" in entry.detail


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"starts_at": london(2026, 12, 8, 19, 0)}, "starts_at", "after its week's charge run"),
        ({"starts_at": london(2026, 12, 5, 20, 0)}, "starts_at", "7PM Tuesday 8 December"),
        ({"public_price_pence": 29}, "public_price_pence", "at least 30p"),
        ({"public_price_pence": 0}, "public_price_pence", "Stripe's minimum"),
        ({"discount_fixed_pence": 2500}, "discount_fixed_pence", "less than the price (£25)"),
        ({"discount_fixed_pence": 2600}, "discount_fixed_pence", "less than the price"),
        ({"discount_percent": 99}, "public_price_pence", "members would pay £0.25"),
        (
            {"discount_percent": 10, "discount_fixed_pence": 100},
            "discount_percent",
            "not both",
        ),
        (
            {"public_sale_at": london(2026, 12, 13, 9, 0)},
            "public_sale_at",
            "before the event starts",
        ),
    ],
)
def test_a_refused_event_says_why_and_saves_nothing(this_week, staff, changes, field, words):
    before = snapshot()
    with pytest.raises(EventRuleError) as refused:
        create_event(details(this_week, **changes), actor=staff)
    assert any(words in message for message in refused.value.errors[field])
    assert snapshot() == before


def test_thirty_pence_is_the_lowest_price_accepted(this_week, staff):
    event = create_event(details(this_week, public_price_pence=30, discount_percent=0), actor=staff)
    assert event.member_price_pence == 30


def test_an_event_of_a_week_whose_run_started_cannot_be_created(this_week, staff):
    this_week.charge_run_started_at = london(2026, 12, 8, 19, 0)
    this_week.save()
    with pytest.raises(EventRuleError, match="charge run has started"):
        create_event(details(this_week), actor=staff)


def test_an_event_of_a_week_whose_run_started_cannot_be_changed(this_week, next_week, staff):
    """README: "a week whose charge run has started takes no new or changed events"."""
    event = create_event(details(this_week), actor=staff)
    this_week.charge_run_started_at = london(2026, 12, 8, 19, 0)
    this_week.save()
    before = snapshot()
    with pytest.raises(EventRuleError, match="charge run has started"):
        update_event(event.pk, details(this_week, venue="Main Room"), actor=staff)
    with pytest.raises(EventRuleError, match="charge run has started"):  # nor moved out of it
        update_event(
            event.pk,
            details(next_week, starts_at=london(2026, 12, 19, 20, 0)),
            actor=staff,
        )
    assert snapshot() == before
    assert Event.objects.get(pk=event.pk).venue == "The Cellar"


def test_an_edit_is_logged_field_by_field_in_pounds_and_london_time(this_week, staff, reviewer):
    event = create_event(details(this_week), actor=staff)
    event, changes = update_event(
        event.pk,
        details(
            this_week,
            public_price_pence=2250,
            venue="Main Room",
            starts_at=london(2026, 12, 12, 21, 30),
        ),
        actor=reviewer,
    )
    assert set(changes) == {"public_price_pence", "venue", "starts_at"}
    entry = EventLogEntry.objects.filter(event=event, action="event_updated").get()
    assert entry.actor == reviewer
    assert "Public price: £25 → £22.50" in entry.detail
    assert "Venue: The Cellar → Main Room" in entry.detail
    assert "Starts: Sat 12 Dec 2026, 8PM → Sat 12 Dec 2026, 9:30PM" in entry.detail
    assert "2250" not in entry.detail
    assert entry.data["changes"]["public_price_pence"] == [2500, 2250]


def test_saving_without_a_change_logs_nothing(this_week, staff):
    event = create_event(details(this_week), actor=staff)
    _, changes = update_event(event.pk, details(this_week), actor=staff)
    assert changes == {}
    assert EventLogEntry.objects.filter(action="event_updated").count() == 0


def test_an_event_without_pre_orders_moves_to_another_week(this_week, next_week, staff):
    event = create_event(details(this_week), actor=staff)
    event, _ = update_event(
        event.pk, details(next_week, starts_at=london(2026, 12, 19, 20, 0)), actor=staff
    )
    assert event.cycle == next_week
    entry = EventLogEntry.objects.get(event=event, action="event_updated")
    assert "Week: week of 30 November 2026 → week of 7 December 2026" in entry.detail


@pytest.mark.parametrize("status", ["pending", "approved", "cancelled"])
def test_an_event_with_pre_orders_cannot_move_to_another_week(
    this_week, next_week, staff, place, status
):
    event = create_event(details(this_week), actor=staff)
    place(event, status)
    before = snapshot()
    with pytest.raises(EventRuleError, match="cannot move to another week"):
        update_event(
            event.pk, details(next_week, starts_at=london(2026, 12, 19, 20, 0)), actor=staff
        )
    assert snapshot() == before


def test_a_price_change_after_pre_orders_needs_confirmation_and_keeps_their_price(
    this_week, staff, place
):
    event = create_event(details(this_week, discount_percent=10), actor=staff)
    preorder = place(event)
    before = snapshot()
    with pytest.raises(PriceChangeNeedsConfirmation) as warning:
        update_event(
            event.pk, details(this_week, public_price_pence=3000, discount_percent=10), actor=staff
        )
    assert "1 pre-order was placed at the member price of £22.50 and keeps it" in str(warning.value)
    assert "New pre-orders will pay £27" in str(warning.value)
    assert snapshot() == before

    event, _ = update_event(
        event.pk,
        details(this_week, public_price_pence=3000, discount_percent=10),
        actor=staff,
        confirm_price_change=True,
    )
    assert event.member_price_pence == 2700
    assert PreOrder.objects.get(pk=preorder.pk).amount_pence == 2250
    entry = EventLogEntry.objects.get(event=event, action="event_updated")
    assert "1 placed pre-order keeps £22.50" in entry.detail


def test_other_edits_after_pre_orders_need_no_confirmation(this_week, staff, place):
    event = create_event(details(this_week), actor=staff)
    place(event)
    event, changes = update_event(event.pk, details(this_week, venue="Main Room"), actor=staff)
    assert list(changes) == ["venue"]


@pytest.mark.parametrize(
    ("status", "words"),
    [("pending", "1 live pre-order"), ("cancelled", "history of 1 cancelled pre-order")],
)
def test_an_event_with_pre_orders_cannot_be_deleted(this_week, staff, place, status, words):
    event = create_event(details(this_week), actor=staff)
    place(event, status)
    before = snapshot()
    with pytest.raises(EventRuleError, match=words):
        delete_event(event.pk, actor=staff)
    assert snapshot() == before


def test_deleting_an_event_keeps_a_record_in_the_weeks_log(this_week, staff):
    event = create_event(details(this_week), actor=staff)
    Ticket.objects.create(event=event, code="SOUL-1")
    assert delete_event(event.pk, actor=staff) == "Soul Night"
    assert not Event.objects.filter(pk=event.pk).exists()
    assert not Ticket.objects.exists()
    entry = EventLogEntry.objects.get(action="event_deleted")
    assert (entry.cycle, entry.actor, entry.event) == (this_week, staff, None)
    assert "Soul Night" in entry.detail and "1 unused ticket codes" in entry.detail


def test_copying_a_week_moves_times_by_seven_days_with_empty_pools(this_week, staff):
    first = create_event(
        details(this_week, public_sale_at=london(2026, 12, 10, 10, 0), discount_percent=15),
        actor=staff,
    )
    second = create_event(
        details(this_week, title="Jazz", starts_at=london(2026, 12, 11, 19, 30)), actor=staff
    )
    Ticket.objects.create(event=first, code="SOUL-1")

    result = copy_week(this_week.pk, actor=staff)

    target = cycle_for_week(dt.date(2026, 12, 7))
    assert result.target == target
    copies = list(Event.objects.filter(cycle=target).order_by("starts_at"))
    assert [(e.title, e.starts_at) for e in copies] == [
        ("Jazz", london(2026, 12, 18, 19, 30)),
        ("Soul Night", london(2026, 12, 19, 20, 0)),
    ]
    soul = copies[1]
    assert soul.public_sale_at == london(2026, 12, 17, 10, 0)
    assert (soul.discount_percent, soul.venue, soul.public_price_pence) == (15, "The Cellar", 2500)
    assert not Ticket.objects.filter(event__in=copies).exists()
    assert Event.objects.filter(cycle=this_week).count() == 2  # the originals stay
    assert EventLogEntry.objects.filter(action="week_copied", cycle=target).count() == 1
    assert {e.data["copied_from"] for e in EventLogEntry.objects.filter(event__in=copies)} == {
        first.pk,
        second.pk,
    }


def test_copying_twice_copies_nothing_more(this_week, staff):
    create_event(details(this_week), actor=staff)
    copy_week(this_week.pk, actor=staff)
    again = copy_week(this_week.pk, actor=staff)
    assert again.copied == [] and len(again.already_there) == 1
    assert Event.objects.count() == 2


def test_a_week_is_not_copied_onto_a_week_whose_run_started(this_week, next_week, staff):
    create_event(details(this_week), actor=staff)
    next_week.charge_run_started_at = london(2026, 12, 15, 19, 0)
    next_week.save()
    before = snapshot()
    with pytest.raises(EventRuleError, match="Soul Night: That week's charge run has started"):
        copy_week(this_week.pk, actor=staff)
    assert snapshot() == before


def test_a_week_later_keeps_the_london_clock_across_the_clock_change():
    # Saturday 27 March 2027 8PM GMT → Saturday 3 April 8PM BST (only 167 hours later).
    before = london(2027, 3, 27, 20, 0)
    after = one_week_later(before)
    assert after == london(2027, 4, 3, 20, 0)
    assert after - before == dt.timedelta(hours=167)


def test_the_database_refuses_a_price_below_stripes_minimum(this_week):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError, match="event_price_at_least_30p"), transaction.atomic():
        Event.objects.create(
            cycle=this_week,
            title="Too cheap",
            starts_at=london(2026, 12, 12, 20, 0),
            venue="Bar",
            public_price_pence=29,
        )
