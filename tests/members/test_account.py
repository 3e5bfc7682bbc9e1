"""The account page: details and a confirmed email change, password, signing out elsewhere,
and saved cards at a real localstripe (default, remove, the refusals)."""

import re

import pytest
import requests
from django.core import mail
from django.test import Client
from django.urls import reverse

from members.models import Member
from notifications.models import OutboundEmail
from notifications.services import REDACTED
from preorders.models import PreOrder
from preorders.services import place_preorder
from preorders.states import Status
from tests.stripe_helpers import save_card, stripe_get

pytestmark = [pytest.mark.django_db(transaction=True)]

PASSWORD = "a-Good-passw0rd"


def _client(member) -> Client:
    client = Client()
    assert client.login(username=member.email, password=PASSWORD)
    return client


def _link(to: str) -> str:
    message = next(m for m in mail.outbox if m.to == [to])
    return re.search(r"http://\S+/account/email/\S+/", message.body).group(0)


def test_the_account_page_is_for_members_only(client, member):
    assert client.get(reverse("members:account")).status_code == 302
    page = _client(member).get(reverse("members:account"))
    assert page.status_code == 200
    assert "Alice Archer" in page.content.decode()


def test_changing_the_email_needs_the_link_sent_to_the_new_address(member):
    client = _client(member)
    response = client.post(
        reverse("members:account_details"),
        {"full_name": "Alice  B. Archer", "email": "Alice.New@Example.com"},
    )
    assert response.status_code == 302
    member.refresh_from_db()
    assert (member.full_name, member.email) == ("Alice B. Archer", "alice@example.com")
    link = _link("alice.new@example.com")
    path = link.removeprefix("http://127.0.0.1:8000")
    stored = OutboundEmail.objects.get(template="email_change_confirm")
    assert stored.body_text == REDACTED  # the working link is not kept once sent

    # Following the link shows a button; only pressing it changes the address.
    assert "Yes, use this address" in client.get(path).content.decode()
    member.refresh_from_db()
    assert member.email == "alice@example.com"
    assert client.post(path).status_code == 302
    member.refresh_from_db()
    assert member.email == "alice.new@example.com"
    notice = next(m for m in mail.outbox if m.to == ["alice@example.com"])
    assert "changed from alice@example.com to alice.new@example.com" in " ".join(
        notice.body.split()
    )
    # Once used, the link is dead; the member signs in with the new address.
    again = client.post(path)
    assert again.status_code == 400 and "already been used" in again.content.decode()
    assert Client().login(username="alice.new@example.com", password=PASSWORD)


def test_an_email_change_link_works_for_its_own_member_only(member, make_member):
    _client(member).post(
        reverse("members:account_details"),
        {"full_name": "Alice Archer", "email": "new@example.com"},
    )
    path = _link("new@example.com").removeprefix("http://127.0.0.1:8000")
    other = make_member()
    response = _client(other).post(path)
    assert response.status_code == 400
    assert "another account" in response.content.decode()
    forged = _client(member).post(path[:-5] + "xxxx/")
    assert forged.status_code == 400 and "not valid" in forged.content.decode()
    assert not Member.objects.filter(email="new@example.com").exists()


def test_an_address_in_use_or_invalid_is_refused_and_nothing_is_sent(member, make_member):
    make_member(email="taken@example.com")
    client = _client(member)
    for email, message in (
        ("TAKEN@example.com", "Another account already uses that address."),
        ("not-an-address", "Enter a valid email address."),
    ):
        mail.outbox.clear()
        response = client.post(
            reverse("members:account_details"), {"full_name": "Alice", "email": email}
        )
        assert response.status_code == 400
        assert message in response.content.decode()
        assert not mail.outbox
    member.refresh_from_db()
    assert member.full_name == "Alice Archer"


def test_changing_the_password_signs_out_the_other_sessions(member):
    here, elsewhere = _client(member), _client(member)
    bad = here.post(
        reverse("members:account_password"),
        {"old_password": "wrong", "new_password1": "x", "new_password2": "y"},
    )
    assert bad.status_code == 400
    response = here.post(
        reverse("members:account_password"),
        {
            "old_password": PASSWORD,
            "new_password1": "velvet-Jazz-night-42",
            "new_password2": "velvet-Jazz-night-42",
        },
    )
    assert response.status_code == 302
    assert here.get(reverse("members:account")).status_code == 200
    assert elsewhere.get(reverse("members:account")).status_code == 302
    assert Client().login(username=member.email, password="velvet-Jazz-night-42")


def test_sign_out_everywhere_else_keeps_this_session(member):
    here, elsewhere, before = _client(member), _client(member), Client()
    assert here.post(reverse("members:sign_out_others")).status_code == 302
    assert here.get(reverse("members:account")).status_code == 200
    assert elsewhere.get(reverse("members:account")).status_code == 302
    # Signing in again afterwards works as usual.
    assert before.login(username=member.email, password=PASSWORD)
    assert before.get(reverse("members:account")).status_code == 200


# --- Saved cards at Stripe --------------------------------------------------------------------


@pytest.mark.stripe
def test_cards_are_listed_from_stripe_made_default_and_removed(stripe_server, member):
    first = save_card(stripe_server, member)
    second = save_card(stripe_server, member, "4000000000000341")
    client = _client(member)
    page = client.get(reverse("members:account")).content.decode()
    assert "<strong>Visa •••• 4242</strong>" in page and "<strong>Visa •••• 0341</strong>" in page

    assert client.post(reverse("members:default_card"), {"card": second}).status_code == 302
    customer = stripe_get(stripe_server, f"customers/{member.stripe_customer_id}")
    assert customer["invoice_settings"]["default_payment_method"] == second

    confirm = client.get(reverse("members:remove_card"), {"card": first}).content.decode()
    assert "Yes, remove this card" in confirm
    assert client.post(reverse("members:remove_card"), {"card": first}).status_code == 302
    assert stripe_get(stripe_server, f"payment_methods/{first}")["customer"] is None
    page = client.get(reverse("members:account")).content.decode()
    assert "<strong>Visa •••• 4242</strong>" not in page
    assert "<strong>Visa •••• 0341</strong>" in page


@pytest.mark.stripe
def test_another_members_card_cannot_be_removed_or_made_default(stripe_server, member, make_member):
    save_card(stripe_server, member)
    theirs = save_card(stripe_server, make_member())
    client = _client(member)
    for url in (reverse("members:remove_card"), reverse("members:default_card")):
        response = client.post(url, {"card": theirs}, follow=True)
        assert "not one of your saved cards" in response.content.decode()
    assert stripe_get(stripe_server, f"payment_methods/{theirs}")["customer"]


@pytest.mark.stripe
@pytest.mark.parametrize(
    ("status", "refusal"),
    [
        (Status.APPROVED, "approved pre-order of Jazz in the Cellar, charged at 7PM Tuesday"),
        (Status.CHARGING, "approved pre-order of Jazz in the Cellar"),
        (Status.PENDING, "first choose another card for that pre-order"),
    ],
)
def test_the_card_of_a_live_preorder_cannot_be_removed(
    stripe_server, member, make_event, status, refusal
):
    card = save_card(stripe_server, member)
    preorder = place_preorder(member, make_event().pk, payment_method_id=card)
    PreOrder.objects.filter(pk=preorder.pk).update(status=status)
    client = _client(member)
    page = client.get(reverse("members:remove_card"), {"card": card}).content.decode()
    assert refusal in page and "Yes, remove this card" not in page
    response = client.post(reverse("members:remove_card"), {"card": card}, follow=True)
    assert refusal in response.content.decode()
    assert stripe_get(stripe_server, f"payment_methods/{card}")["customer"] == (
        member.stripe_customer_id
    )


@pytest.mark.stripe
def test_a_pending_preorders_card_can_be_removed_after_replacing_it(
    stripe_server, member, make_event
):
    from preorders.services import edit_preorder

    event = make_event()
    old, new = save_card(stripe_server, member), save_card(stripe_server, member)
    preorder = place_preorder(member, event.pk, payment_method_id=old)
    edit_preorder(member, preorder.pk, event_id=event.pk, payment_method_id=new)
    response = _client(member).post(reverse("members:remove_card"), {"card": old}, follow=True)
    assert "is removed" in response.content.decode()
    assert stripe_get(stripe_server, f"payment_methods/{old}")["customer"] is None


@pytest.mark.stripe
def test_stripe_down_shows_a_plain_message_on_the_account_page(stripe_server, member, settings):
    save_card(stripe_server, member)
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"  # nothing listens there
    page = _client(member).get(reverse("members:account"))
    assert page.status_code == 200
    assert "could not reach our payment provider" in page.content.decode()
    requests.get(stripe_server + "/js.stripe.com/v3/", timeout=5)  # still up for the next test


@pytest.mark.stripe
def test_an_expired_card_is_listed_marked_so_it_can_be_removed(stripe_server, member):
    from tests.stripe_helpers import attach_card_without_consent

    save_card(stripe_server, member)
    expired = attach_card_without_consent(stripe_server, member.stripe_customer_id, exp_year=2020)
    client = _client(member)
    page = client.get(reverse("members:account")).content.decode()
    assert "expires 01/20" in page and '<span class="badge badge-failed">Expired</span>' in page
    assert page.count(">Make default</button>") == 1  # the unexpired card only
    response = client.post(reverse("members:default_card"), {"card": expired}, follow=True)
    assert "has expired, so it cannot be your default card" in response.content.decode()
    assert client.post(reverse("members:remove_card"), {"card": expired}).status_code == 302
    assert stripe_get(stripe_server, f"payment_methods/{expired}")["customer"] is None


@pytest.mark.stripe
def test_the_stripe_customer_follows_the_name_and_email(stripe_server, member):
    save_card(stripe_server, member)
    client = _client(member)
    client.post(
        reverse("members:account_details"),
        {"full_name": "Alice Baker", "email": "alice.baker@example.com"},
    )
    customer = stripe_get(stripe_server, f"customers/{member.stripe_customer_id}")
    assert (customer["name"], customer["email"]) == ("Alice Baker", "alice@example.com")
    client.post(_link("alice.baker@example.com").removeprefix("http://127.0.0.1:8000"))
    customer = stripe_get(stripe_server, f"customers/{member.stripe_customer_id}")
    assert customer["email"] == "alice.baker@example.com"
