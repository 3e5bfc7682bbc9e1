"""The member's side of a pre-order, against a real localstripe."""

import datetime as dt

import pytest
import time_machine
from django.core import mail

from events.selectors import cycle_for_week
from preorders.models import PreOrder, PreOrderLogEntry
from preorders.services import PreorderError, cancel_preorder, edit_preorder, place_preorder
from preorders.states import Status
from tests.stripe_helpers import new_confirmed_setup_intent

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.stripe]


@pytest.fixture
def event(make_event):
    return make_event(public_price_pence=2500, discount_percent=10)


@pytest.fixture
def placed(stripe_server, member, event):
    return place_preorder(member, event.pk, new_confirmed_setup_intent(stripe_server, member))


def test_placing_saves_a_pending_preorder_with_a_price_snapshot(stripe_server, member, event):
    setup_intent_id = new_confirmed_setup_intent(stripe_server, member)
    preorder = place_preorder(member, event.pk, setup_intent_id)
    assert preorder.status == Status.PENDING
    assert preorder.amount_pence == 2250
    assert preorder.cycle == event.cycle
    assert preorder.stripe_customer_id == member.stripe_customer_id
    assert preorder.payment_method_id.startswith("pm_")
    assert preorder.setup_intent_id == setup_intent_id
    assert (preorder.card_brand, preorder.card_last4) == ("visa", "4242")
    event.public_price_pence = 9900
    event.save()
    assert PreOrder.objects.get(pk=preorder.pk).amount_pence == 2250
    assert PreOrderLogEntry.objects.filter(preorder=preorder, action="placed").count() == 1


def test_placing_emails_the_member_after_commit(placed, member):
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [member.email]
    assert "Pre-order received" in message.subject
    assert "We'll charge your card at 7PM Tuesday" in message.body
    assert "£22.50" in message.body
    assert "Pre-order received." in message.alternatives[0].content


def test_a_second_preorder_in_the_same_cycle_is_refused(stripe_server, placed, member, make_event):
    other_event = make_event(title="Comedy Late")
    with pytest.raises(PreorderError, match="already have a pre-order"):
        place_preorder(member, other_event.pk, new_confirmed_setup_intent(stripe_server, member))
    assert PreOrder.objects.filter(member=member).count() == 1


def test_a_replayed_setup_intent_is_refused(stripe_server, placed, member):
    cancel_preorder(member, placed.pk)
    with pytest.raises(PreorderError, match="already been used"):
        place_preorder(member, placed.event_id, placed.setup_intent_id)
    assert PreOrder.objects.filter(member=member).count() == 1


def test_after_cancelling_a_member_may_pre_order_again(stripe_server, placed, member):
    cancel_preorder(member, placed.pk)
    again = place_preorder(
        member, placed.event_id, new_confirmed_setup_intent(stripe_server, member)
    )
    assert again.status == Status.PENDING
    assert PreOrder.objects.filter(member=member).count() == 2


def test_an_event_of_another_cycle_is_refused(stripe_server, member, make_event, open_cycle):
    next_week = cycle_for_week(open_cycle.week_start + dt.timedelta(weeks=1))
    future_event = make_event(cycle=next_week)
    with pytest.raises(PreorderError, match="Pre-orders for Jazz in the Cellar open at"):
        place_preorder(member, future_event.pk, new_confirmed_setup_intent(stripe_server, member))
    assert not PreOrder.objects.exists()


@pytest.mark.parametrize("bogus_event", [None, "", "abc", -1, 10**30, "1; DROP TABLE"])
def test_a_bogus_event_id_is_refused(stripe_server, member, bogus_event):
    with pytest.raises(PreorderError):
        place_preorder(member, bogus_event, "seti_whatever")
    assert not PreOrder.objects.exists()


def test_a_closed_window_refuses_new_preorders(stripe_server, member, event):
    setup_intent_id = new_confirmed_setup_intent(stripe_server, member)
    with time_machine.travel(event.cycle.closes_at, tick=False):
        with pytest.raises(PreorderError, match="closed at 11:59PM Sunday"):
            place_preorder(member, event.pk, setup_intent_id)
    assert not PreOrder.objects.exists()


def test_editing_switches_event_and_resnapshots_the_price(placed, member, make_event):
    cheaper = make_event(title="Comedy Late", public_price_pence=1800, discount_fixed_pence=300)
    edited = edit_preorder(member, placed.pk, event_id=cheaper.pk)
    assert edited.event == cheaper
    assert edited.amount_pence == 1500
    entry = PreOrderLogEntry.objects.get(preorder=placed, action="edited")
    assert "Comedy Late" in entry.note


def test_editing_replaces_the_card(stripe_server, placed, member):
    new_intent = new_confirmed_setup_intent(stripe_server, member)
    edited = edit_preorder(member, placed.pk, event_id=placed.event_id, setup_intent_id=new_intent)
    assert edited.setup_intent_id == new_intent
    assert edited.payment_method_id != placed.payment_method_id


def test_editing_with_nothing_changed_changes_nothing(placed, member):
    edit_preorder(member, placed.pk, event_id=placed.event_id)
    assert not PreOrderLogEntry.objects.filter(action="edited").exists()


def test_cancelling_is_logged_and_emailed(placed, member):
    cancelled = cancel_preorder(member, placed.pk)
    assert cancelled.status == Status.CANCELLED
    entry = PreOrderLogEntry.objects.get(preorder=placed, action="status")
    assert (entry.from_status, entry.to_status, entry.source) == ("pending", "cancelled", "member")
    assert "cancelled" in mail.outbox[-1].subject.lower()


def test_after_the_window_closes_edit_and_cancel_are_refused(placed, member, make_event):
    other = make_event(title="Comedy Late")
    with time_machine.travel(placed.cycle.closes_at, tick=False):
        with pytest.raises(PreorderError, match="locked"):
            cancel_preorder(member, placed.pk)
        with pytest.raises(PreorderError, match="locked"):
            edit_preorder(member, placed.pk, event_id=other.pk)
    reloaded = PreOrder.objects.get(pk=placed.pk)
    assert (reloaded.status, reloaded.event_id) == (Status.PENDING, placed.event_id)


def test_sunday_235959_is_still_open_for_cancelling(placed, member):
    with time_machine.travel(placed.cycle.closes_at - dt.timedelta(seconds=1), tick=False):
        assert cancel_preorder(member, placed.pk).status == Status.CANCELLED


def test_another_members_preorder_cannot_be_touched(placed, make_member, event):
    intruder = make_member()
    with pytest.raises(PreorderError, match="could not find"):
        cancel_preorder(intruder, placed.pk)
    with pytest.raises(PreorderError, match="could not find"):
        edit_preorder(intruder, placed.pk, event_id=event.pk)
    placed.refresh_from_db()
    assert placed.status == Status.PENDING


def test_a_decided_preorder_can_no_longer_change(placed, member):
    PreOrder.objects.filter(pk=placed.pk).update(status=Status.APPROVED)
    with pytest.raises(PreorderError, match="can no longer change"):
        cancel_preorder(member, placed.pk)
