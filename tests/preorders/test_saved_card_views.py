"""The pre-order form with saved cards, over HTTP against a real localstripe: the saved card is
offered without a SetupIntent, a bad or foreign card id is refused with a message and saves
nothing, and "Use a different card" brings the card field back."""

import pytest
from django.test import Client
from django.urls import reverse

from preorders.models import PreOrder
from tests.stripe_helpers import save_card, setup_intent_count

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.stripe]


@pytest.fixture
def member_client(member) -> Client:
    client = Client()
    client.force_login(member)
    return client


def test_the_form_offers_saved_cards_without_making_a_setup_intent(
    stripe_server, member, member_client, make_event
):
    event = make_event()
    card = save_card(stripe_server, member)
    intents = setup_intent_count(stripe_server)
    html = member_client.get(reverse("preorders:place", args=[event.pk])).content.decode()
    assert f'value="{card}" checked' in html
    assert "Visa •••• 4242</strong>, expires 12/34" in html
    assert "data-client-secret" not in html and "js.stripe.com" not in html
    assert setup_intent_count(stripe_server) == intents

    new = member_client.get(reverse("preorders:place", args=[event.pk]), {"card": "new"})
    assert 'data-client-secret="seti_' in new.content.decode()
    assert "Use a saved card instead" in new.content.decode()


def test_bad_or_foreign_card_ids_are_refused_with_a_message(
    stripe_server, member, member_client, make_member, make_event
):
    event = make_event()
    save_card(stripe_server, member)
    theirs = save_card(stripe_server, make_member())
    url = reverse("preorders:place", args=[event.pk])
    for data, message in (
        ({"payment_method_id": "not-a-card"}, "Please choose one of your saved cards."),
        ({"payment_method_id": "pm_" + "x" * 300}, "Ensure this value has at most 255"),
        ({"payment_method_id": theirs}, "not one of your saved cards"),
        ({"payment_method_id": "pm_nosuchcard"}, "not one of your saved cards"),
        ({"payment_method_id": theirs, "setup_intent_id": "seti_x"}, "saved cards or enter"),
        ({}, "Please choose one of your saved cards or enter a new card."),
    ):
        response = member_client.post(url, data)
        assert response.status_code == 400, data
        assert message in response.content.decode(), data
    assert not PreOrder.objects.exists()
