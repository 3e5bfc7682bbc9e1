"""Freed places go to the next member in line: 5 places, 7 members, one 0341 card among the
approved. The first waitlisted member is charged and gets the freed ticket; the last is told
"not allocated" at the cut-off only, once. With the waitlist off, the brief's literal rule."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from events.models import Event, EventLogEntry
from notifications.models import OutboundEmail
from payments import refill, run_execution
from preorders import decisions, waitlist
from preorders.models import PreOrder
from preorders.services import place_preorder
from preorders.states import Status
from tests.conftest import _add_tickets, close_window
from tests.stripe_helpers import (
    DECLINED_OFF_SESSION,
    SUCCEEDS,
    new_confirmed_setup_intent,
    payment_intents_by_preorder,
)
from tickets.selectors import pool_summary

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.stripe]


@pytest.fixture
def week(stripe_server, make_member, make_event):
    """7 members pre-order an event with 5 places; the third one's card is 0341. Staff
    auto-fulfil first come first served: 5 approved, 2 still pending."""
    event = make_event(public_price_pence=2500, discount_percent=10)
    _add_tickets(event, 5)
    cards = [SUCCEEDS, SUCCEEDS, DECLINED_OFF_SESSION] + [SUCCEEDS] * 4
    preorders = []
    for card in cards:
        member = make_member()
        preorders.append(
            place_preorder(
                member, event.pk, new_confirmed_setup_intent(stripe_server, member, card)
            )
        )
    close_window(event.cycle_id)
    decisions.auto_fulfil(event.pk, actor=None)
    return event, preorders


def _statuses(preorders):
    fresh = dict(PreOrder.objects.values_list("pk", "status"))
    return [fresh[p.pk] for p in preorders]


def _emails(preorder, template="not_allocated"):
    return OutboundEmail.objects.filter(preorder=preorder, template=template).count()


def test_a_declined_place_goes_to_the_first_in_line_and_the_last_is_told_at_the_cut_off(
    week, stripe_server
):
    event, preorders = week
    run_execution.run_charges(event.cycle_id, trigger="test", early=True)
    first, last = preorders[5], preorders[6]
    assert _statuses(preorders)[5:] == [Status.WAITLISTED, Status.WAITLISTED]
    assert [p.waitlist_position for p in PreOrder.objects.filter(pk__in=[first.pk, last.pk])
            .order_by("waitlist_position")] == [1, 2]  # fmt: skip
    assert _emails(first) == _emails(last) == 0  # not final yet: nobody is told

    result = refill.refill_due()  # what beat does every minute

    assert result == {"promoted": 1, "not_allocated": 0}
    assert _statuses(preorders) == [Status.TICKET_SENT] * 2 + [Status.FAILED] + [
        Status.TICKET_SENT
    ] * 3 + [Status.WAITLISTED]
    first.refresh_from_db()
    assert first.ticket is not None
    assert _emails(first, "ticket") == 1
    assert _emails(last) == 0
    last.refresh_from_db()
    assert (last.waitlist_position, last.waitlist_place) == (2, 1)  # next in line now
    assert pool_summary(event.pk).left == 0

    cut_off = waitlist.closes_at(event)
    assert cut_off.astimezone(dt.UTC).weekday() == 2  # Wednesday
    with time_machine.travel(cut_off - dt.timedelta(seconds=1)):
        assert refill.refill_due() == {"promoted": 0, "not_allocated": 0}
    with time_machine.travel(cut_off):
        assert refill.refill_due() == {"promoted": 0, "not_allocated": 1}
        assert refill.refill_due() == {"promoted": 0, "not_allocated": 0}
    assert _statuses([last]) == [Status.NOT_ALLOCATED]
    assert _emails(last) == 1
    # One charge per pre-order at Stripe, none for the one never promoted.
    assert payment_intents_by_preorder(stripe_server) == {str(p.pk): 1 for p in preorders[:6]}


def test_without_the_waitlist_pending_is_not_allocated_at_the_lock(week, settings):
    settings.PRESALE_WAITLIST = False
    event, preorders = week
    run_execution.run_charges(event.cycle_id, trigger="test", early=True)
    assert _statuses(preorders)[5:] == [Status.NOT_ALLOCATED] * 2
    assert [_emails(p) for p in preorders[5:]] == [1, 1]
    assert refill.refill_due() == {"promoted": 0, "not_allocated": 0}
    assert _statuses(preorders)[2] == Status.FAILED
    assert pool_summary(event.pk).left == 1  # the brief: a declined place stays empty


def test_manual_events_refill_only_when_staff_offer_freed_places(week, staff):
    event, preorders = week
    Event.objects.filter(pk=event.pk).update(refill_mode=Event.RefillMode.MANUAL)
    run_execution.run_charges(event.cycle_id, trigger="test", early=True)
    assert refill.refill_due()["promoted"] == 0
    assert _statuses(preorders)[5] == Status.WAITLISTED
    assert refill.refill_event(event.pk, actor=staff) == 1
    assert _statuses(preorders)[5:] == [Status.TICKET_SENT, Status.WAITLISTED]
    entry = PreOrder.objects.get(pk=preorders[5].pk).log_entries.get(to_status=Status.APPROVED)
    assert entry.actor == staff


def test_a_ballot_waitlist_is_the_full_recorded_ranking(stripe_server, make_member, make_event):
    event = make_event(fulfilment_mode=Event.FulfilmentMode.BALLOT)
    _add_tickets(event, 1)
    preorders = []
    for _ in range(6):
        member = make_member()
        preorders.append(
            place_preorder(member, event.pk, new_confirmed_setup_intent(stripe_server, member))
        )
    close_window(event.cycle_id)
    decisions.lock_decisions(event.cycle_id)
    entry = EventLogEntry.objects.get(event=event, action="waitlist")
    assert waitlist.verify_waitlist(entry)
    order = entry.data["order"]
    assert sorted(order) == sorted(p.pk for p in preorders)
    assert waitlist.rank_ballot(entry.data["candidates"], entry.data["seed"]) == order
    positions = dict(PreOrder.objects.values_list("pk", "waitlist_position"))
    assert [positions[pk] for pk in order] == list(range(1, 7))
    # Tampering with the record is caught.
    entry.data["order"] = list(reversed(order))
    assert not waitlist.verify_waitlist(entry)


def test_the_waitlist_closes_at_the_public_sale_or_wednesday_noon(make_event, settings):
    event = make_event()
    noon = waitlist.closes_at(event).astimezone(ZoneInfo("Europe/London"))
    charge = event.cycle.charge_at.astimezone(ZoneInfo("Europe/London"))
    assert (noon.strftime("%a %H:%M"), (noon.date() - charge.date()).days) == ("Wed 12:00", 1)
    settings.PRESALE_WAITLIST_CUTOFF = "THU 18:30"
    assert waitlist.closes_at(event).astimezone(ZoneInfo("Europe/London")).strftime("%a %H:%M") == (
        "Thu 18:30"
    )
    event.public_sale_at = event.cycle.charge_at + dt.timedelta(hours=3)
    assert waitlist.closes_at(event) == event.public_sale_at


def test_promotion_never_exceeds_the_pool(week):
    event, _ = week
    run_execution.run_charges(event.cycle_id, trigger="test", early=True)
    # No place has freed yet for anyone else: promoting again changes nothing.
    refill.refill_due()
    assert waitlist.promote(event.pk) == []
    summary = pool_summary(event.pk)
    assert summary.holding <= summary.supply


def test_promoted_members_wait_for_a_live_run_then_are_charged(week):
    event, preorders = week
    run_execution.run_charges(event.cycle_id, trigger="test", early=True)
    from payments.models import ChargeRun

    live = ChargeRun.objects.create(cycle_id=event.cycle_id, trigger="schedule")
    ChargeRun.objects.filter(pk=live.pk).update(heartbeat_at=timezone.now())
    refill.refill_due()
    # Promoted under the locks, but not charged by a second run beside the live one.
    assert _statuses(preorders)[5] == Status.APPROVED
    ChargeRun.objects.filter(pk=live.pk).update(finished_at=timezone.now())
    refill.refill_due()  # the next minute
    assert _statuses(preorders)[5] == Status.TICKET_SENT


def test_a_refund_before_the_cut_off_frees_its_place_for_the_next_in_line(
    week, stripe_server, staff
):
    from payments.refunds import refund_preorder

    event, preorders = week
    run_execution.run_charges(event.cycle_id, trigger="test", early=True)
    refill.refill_due()  # the declined place goes to the first in line
    refunded, last = preorders[0], preorders[6]
    old_code = PreOrder.objects.get(pk=refunded.pk).ticket.code

    refund_preorder(refunded.pk, actor=staff, reason="Cannot come after all")

    # The emailed code stays void; a new one takes its place, and the next in line gets it.
    replaced = EventLogEntry.objects.get(event=event, action="pool_replace")
    assert old_code in replaced.detail and replaced.actor == staff
    client = Client()
    client.force_login(staff)
    pool_page = client.get(reverse("tickets:pool", args=[event.pk])).content.decode()
    assert f"in place of refunded ticket {old_code}" in pool_page
    assert (
        refunded.log_entries.get(to_status=Status.REFUNDED).note.count(
            "its place offered to the waitlist"
        )
        == 1
    )
    assert pool_summary(event.pk).left == 1
    assert refill.refill_due() == {"promoted": 1, "not_allocated": 0}
    assert _statuses([refunded, last]) == [Status.REFUNDED, Status.TICKET_SENT]
    ticket = PreOrder.objects.get(pk=last.pk).ticket
    assert ticket.code != old_code and _emails(last, "ticket") == 1
    assert pool_summary(event.pk).left == 0
    assert payment_intents_by_preorder(stripe_server)[str(last.pk)] == 1


def test_a_refund_frees_no_place_when_nobody_waits_or_the_waitlist_has_closed(
    week, stripe_server, staff
):
    from payments.refunds import refund_preorder

    event, preorders = week
    run_execution.run_charges(event.cycle_id, trigger="test", early=True)
    with time_machine.travel(waitlist.closes_at(event)):
        assert refill.refill_due() == {"promoted": 0, "not_allocated": 2}
        refund_preorder(preorders[0].pk, actor=staff, reason="Cannot come")
    assert not EventLogEntry.objects.filter(action="pool_replace").exists()
    assert pool_summary(event.pk).left == 1  # the declined place, now the public sale's


def test_a_deactivated_member_leaves_the_line_and_the_place_goes_to_the_next(week, staff):
    """A deactivated member must never be charged for a freed place: their waitlisted pre-order
    becomes "not allocated" (with its email), and promotion skips any inactive member."""
    from members import staff_services

    event, preorders = week
    run_execution.run_charges(event.cycle_id, trigger="test", early=True)
    first, last = preorders[5], preorders[6]

    ended = staff_services.deactivate(first.member_id, actor=staff)

    assert ended == [first.pk]
    assert _statuses([first]) == [Status.NOT_ALLOCATED] and _emails(first) == 1
    # Even one left in line by another path (deactivated without the service) is skipped.
    PreOrder.objects.filter(pk=first.pk).update(status=Status.WAITLISTED)
    assert refill.refill_due() == {"promoted": 1, "not_allocated": 0}
    assert _statuses([first, last]) == [Status.WAITLISTED, Status.TICKET_SENT]
