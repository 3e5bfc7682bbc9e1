"""Saved cards against a real localstripe: week 2 pays with week 1's card without a new
SetupIntent and the run charges that card; what Stripe no longer holds, or holds for someone
else, is neither offered nor accepted."""

import datetime as dt

import pytest
import time_machine

from events.selectors import cycle_for_week
from payments import run_execution
from payments.cards import usable_cards, verify_saved_card
from payments.models import ChargeAttempt
from payments.services import CardSetupError
from preorders.decisions import approve
from preorders.models import PreOrder
from preorders.services import PreorderError, edit_preorder, place_preorder
from preorders.states import Status
from tests.conftest import _add_tickets, close_window
from tests.stripe_helpers import (
    attach_card_without_consent,
    new_confirmed_setup_intent,
    save_card,
    setup_intent_count,
    stripe_get,
    stripe_post,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.stripe]


def _approve_and_charge(preorder: PreOrder) -> PreOrder:
    close_window(preorder.cycle_id)
    approve(preorder.event_id, [preorder.pk], actor=None)
    run_execution.run_charges(preorder.cycle_id, trigger="test", early=True)
    return PreOrder.objects.get(pk=preorder.pk)


def test_week_two_uses_the_saved_card_without_a_new_setup_intent_and_the_run_charges_it(
    stripe_server, member, make_event, open_cycle
):
    week1_event = make_event(title="Week one")
    _add_tickets(week1_event, 2)
    week1 = place_preorder(
        member, week1_event.pk, new_confirmed_setup_intent(stripe_server, member)
    )
    assert _approve_and_charge(week1).status == Status.TICKET_SENT

    next_cycle = cycle_for_week(open_cycle.week_start + dt.timedelta(weeks=1))
    week2_event = make_event(cycle=next_cycle, title="Week two")
    _add_tickets(week2_event, 2)
    with time_machine.travel(next_cycle.opens_at + dt.timedelta(hours=1), tick=True):
        cards = usable_cards(member)
        assert [(c.payment_method_id, c.last4) for c in cards] == [
            (week1.payment_method_id, "4242")
        ]
        intents_before = setup_intent_count(stripe_server)
        week2 = place_preorder(member, week2_event.pk, payment_method_id=cards[0].payment_method_id)
        assert setup_intent_count(stripe_server) == intents_before
        assert week2.setup_intent_id is None
        assert (week2.payment_method_id, week2.card_last4) == (week1.payment_method_id, "4242")
        assert "(saved card)" in week2.log_entries.get(action="placed").note
        week2 = _approve_and_charge(week2)

    assert week2.status == Status.TICKET_SENT
    attempt = ChargeAttempt.objects.get(preorder=week2)
    intent = stripe_get(stripe_server, f"payment_intents/{attempt.payment_intent_id}")
    assert intent["payment_method"] == week1.payment_method_id
    assert intent["customer"] == member.stripe_customer_id
    assert (intent["amount"], intent["status"]) == (week2.amount_pence, "succeeded")


def test_a_card_detached_at_stripe_is_neither_offered_nor_accepted(
    stripe_server, member, make_event
):
    event = make_event()
    kept = save_card(stripe_server, member)
    gone = save_card(stripe_server, member)
    stripe_post(stripe_server, f"payment_methods/{gone}/detach")

    assert [card.payment_method_id for card in usable_cards(member)] == [kept]
    with pytest.raises(PreorderError, match="not one of your saved cards"):
        place_preorder(member, event.pk, payment_method_id=gone)
    assert not PreOrder.objects.exists()


def test_another_customers_payment_method_is_refused(
    stripe_server, member, make_member, make_event
):
    event = make_event()
    save_card(stripe_server, member)
    theirs = save_card(stripe_server, make_member())
    with pytest.raises(PreorderError, match="not one of your saved cards"):
        place_preorder(member, event.pk, payment_method_id=theirs)
    with pytest.raises(PreorderError, match="not one of your saved cards"):
        place_preorder(member, event.pk, payment_method_id="pm_doesnotexist")
    assert not PreOrder.objects.exists()


def test_a_member_without_a_customer_has_no_saved_cards(stripe_server, member, make_event):
    assert usable_cards(member) == []
    with pytest.raises(CardSetupError, match="not one of your saved cards"):
        verify_saved_card(member, "pm_card_visa")


def test_an_expired_card_is_not_offered_and_is_refused(stripe_server, member, make_event):
    event = make_event()
    save_card(stripe_server, member)
    expired = attach_card_without_consent(stripe_server, member.stripe_customer_id, exp_year=2020)
    assert expired not in [card.payment_method_id for card in usable_cards(member)]
    with pytest.raises(PreorderError, match="has expired"):
        place_preorder(member, event.pk, payment_method_id=expired)


def test_a_card_attached_without_off_session_consent_is_refused(stripe_server, member, make_event):
    event = make_event()
    save_card(stripe_server, member)
    unconsented = attach_card_without_consent(stripe_server, member.stripe_customer_id)
    with pytest.raises(PreorderError, match="not saved for later payments"):
        place_preorder(member, event.pk, payment_method_id=unconsented)
    assert not PreOrder.objects.exists()


def test_editing_switches_to_another_saved_card_and_keeps_the_rules(
    stripe_server, member, make_event
):
    event = make_event()
    first = save_card(stripe_server, member)
    second = save_card(stripe_server, member)
    preorder = place_preorder(member, event.pk, payment_method_id=first)
    edited = edit_preorder(member, preorder.pk, event_id=event.pk, payment_method_id=second)
    assert (edited.payment_method_id, edited.setup_intent_id) == (second, None)
    assert edited.log_entries.get(action="edited").note == "card visa •••• 4242 → visa •••• 4242"
    # One live pre-order a week, whatever the card.
    with pytest.raises(PreorderError, match="already have a pre-order"):
        place_preorder(member, event.pk, payment_method_id=first)
    with pytest.raises(PreorderError, match="saved cards or enter a new card"):
        edit_preorder(
            member, preorder.pk, event_id=event.pk, payment_method_id=first, setup_intent_id="seti"
        )


def test_the_default_card_is_offered_first(stripe_server, member):
    first = save_card(stripe_server, member)
    second = save_card(stripe_server, member)
    stripe_post(
        stripe_server,
        f"customers/{member.stripe_customer_id}",
        {"invoice_settings[default_payment_method]": second},
    )
    cards = usable_cards(member)
    assert (cards[0].payment_method_id, cards[0].is_default) == (second, True)
    assert {c.payment_method_id for c in cards} == {first, second}


def test_a_saved_card_keeps_the_window_and_the_price_snapshot(stripe_server, member, make_event):
    event = make_event(public_price_pence=2500, discount_percent=10)
    card = save_card(stripe_server, member)
    with time_machine.travel(event.cycle.closes_at, tick=False):
        with pytest.raises(PreorderError, match="closed at 11:59PM Sunday"):
            place_preorder(member, event.pk, payment_method_id=card)
    assert not PreOrder.objects.exists()
    preorder = place_preorder(member, event.pk, payment_method_id=card)
    event.public_price_pence = 9900
    event.save()
    assert PreOrder.objects.get(pk=preorder.pk).amount_pence == 2250
