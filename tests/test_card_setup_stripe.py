"""Saving a card through a real localstripe: one Customer per member, and only SetupIntents that
Stripe says succeeded for this member's Customer are accepted."""

import pytest

from members.models import Member
from payments.services import CardSetupError, ensure_customer, start_card_setup, verify_card_setup
from tests.stripe_helpers import (
    DECLINED_AT_SETUP,
    NEEDS_3DS,
    confirm_card_setup,
    new_confirmed_setup_intent,
    stripe_get,
)

pytestmark = [pytest.mark.django_db, pytest.mark.stripe]


def test_customer_is_created_once_and_reused(stripe_server, member):
    first = ensure_customer(member)
    again = ensure_customer(Member.objects.get(pk=member.pk))
    assert first == again
    assert first.startswith("cus_")
    customer = stripe_get(stripe_server, f"customers/{first}")
    assert customer["email"] == member.email
    assert customer["metadata"]["member_id"] == str(member.pk)
    start_card_setup(Member.objects.get(pk=member.pk))
    assert Member.objects.get(pk=member.pk).stripe_customer_id == first


def test_setup_intent_is_for_off_session_use_of_the_members_customer(stripe_server, member):
    handle = start_card_setup(member)
    intent = stripe_get(stripe_server, f"setup_intents/{handle.id}")
    assert intent["usage"] == "off_session"
    assert intent["customer"] == member.stripe_customer_id
    assert handle.client_secret.startswith(handle.id)


def test_an_unconfirmed_setup_intent_is_reused_instead_of_creating_another(stripe_server, member):
    first = start_card_setup(member)
    second = start_card_setup(member, reuse_setup_intent_id=first.id)
    assert second.id == first.id
    confirm_card_setup(stripe_server, first.client_secret)
    third = start_card_setup(member, reuse_setup_intent_id=first.id)
    assert third.id != first.id


def test_verified_card_is_attached_to_the_customer(stripe_server, member):
    setup_intent_id = new_confirmed_setup_intent(stripe_server, member)
    card = verify_card_setup(member, setup_intent_id)
    assert card.customer_id == member.stripe_customer_id
    assert card.last4 == "4242"
    assert card.brand == "visa"
    method = stripe_get(stripe_server, f"payment_methods/{card.payment_method_id}")
    assert method["customer"] == member.stripe_customer_id


def test_card_declined_at_setup_is_refused(stripe_server, member):
    handle = start_card_setup(member)
    result = confirm_card_setup(stripe_server, handle.client_secret, DECLINED_AT_SETUP)
    assert result["status_code"] == 402
    with pytest.raises(CardSetupError, match="not been confirmed"):
        verify_card_setup(member, handle.id)


def test_unconfirmed_or_unauthenticated_setup_intent_is_refused(stripe_server, member):
    unconfirmed = start_card_setup(member)
    with pytest.raises(CardSetupError, match="not been confirmed"):
        verify_card_setup(member, unconfirmed.id)
    needs_3ds = start_card_setup(member)
    result = confirm_card_setup(stripe_server, needs_3ds.client_secret, NEEDS_3DS)
    assert result["status"] == "requires_action"
    with pytest.raises(CardSetupError, match="not been confirmed"):
        verify_card_setup(member, needs_3ds.id)


def test_another_members_setup_intent_is_refused(stripe_server, member, make_member):
    other = make_member()
    others_intent = new_confirmed_setup_intent(stripe_server, other)
    ensure_customer(member)
    with pytest.raises(CardSetupError, match="does not belong to your account"):
        verify_card_setup(member, others_intent)


@pytest.mark.parametrize(
    "bogus", [None, "", "pi_123", "seti_", "seti_abc/../../customers", "seti_" + "a" * 300, 42]
)
def test_malformed_ids_never_reach_stripe(stripe_server, member, bogus):
    with pytest.raises(CardSetupError, match="missing or malformed"):
        verify_card_setup(member, bogus)


def test_unknown_setup_intent_is_refused(stripe_server, member):
    ensure_customer(member)
    with pytest.raises(CardSetupError, match="could not find"):
        verify_card_setup(member, "seti_doesnotexist123")
