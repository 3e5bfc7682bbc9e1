"""The member's whole journey in a real Chromium on a phone-sized screen, against the live app
and a real localstripe: invitation → sign-up → pre-order → status → edit → cancel."""

import datetime as dt
import re

import pytest
from django.utils import timezone

from members.models import Invitation
from members.services import hash_token
from preorders.models import PreOrder
from preorders.states import Status
from tests.browser import fill_card, log_in
from tests.conftest import screenshot
from tests.stripe_helpers import DECLINED_AT_SETUP

pytestmark = [pytest.mark.browser, pytest.mark.stripe, pytest.mark.django_db(transaction=True)]

TOKEN = "a-token-that-is-long-enough-to-be-valid-123"


@pytest.fixture
def events(make_event):
    return (
        make_event(title="Jazz in the Cellar", public_price_pence=2500, discount_percent=10),
        make_event(title="Comedy Late", public_price_pence=1800, discount_fixed_pence=300),
    )


def test_invited_person_signs_up_pre_orders_edits_and_cancels(
    live_server, stripe_server, phone_page, staff, events
):
    page = phone_page
    now = timezone.now()
    Invitation.objects.create(
        email="newcomer@example.com",
        token_hash=hash_token(TOKEN),
        invited_by=staff,
        created_at=now,
        expires_at=now + dt.timedelta(days=7),
    )

    page.goto(f"{live_server.url}/invite/{TOKEN}/")
    screenshot(page, "journey-1-invitation")
    page.get_by_label("Your name").fill("Nina Newcomer")
    page.get_by_label("Choose a password").fill("velvet-Jazz-night-42")
    page.get_by_label("Type it again").fill("velvet-Jazz-night-42")
    page.get_by_role("button", name="Create my account").click()
    page.wait_for_url(f"{live_server.url}/")
    assert page.get_by_text("Welcome to Harry's Club, Nina!").is_visible()
    screenshot(page, "journey-2-dashboard")

    page.get_by_role("link", name="Pre-order Jazz in the Cellar").click()
    page.get_by_role("button", name="Pre-order – no charge now").wait_for()
    assert page.get_by_text("£22.50").is_visible()
    assert page.get_by_text("1 ticket").is_visible()
    fill_card(page)
    screenshot(page, "journey-3-preorder-form")
    page.get_by_role("button", name="Pre-order – no charge now").click()
    page.wait_for_url(re.compile(r"/pre-orders/\d+/$"))
    message = page.get_by_test_id("status-message").inner_text()
    assert "Pre-order received. We'll charge your card at 7PM Tuesday" in message
    assert page.get_by_test_id("status").inner_text() == "Pending"
    screenshot(page, "journey-4-confirmation")

    preorder = PreOrder.objects.get(member__email="newcomer@example.com")
    assert (preorder.status, preorder.event, preorder.amount_pence) == (
        Status.PENDING,
        events[0],
        2250,
    )

    page.get_by_role("link", name="Edit pre-order").click()
    page.get_by_label(re.compile("Comedy Late")).check()
    screenshot(page, "journey-5-edit")
    page.get_by_role("button", name="Save changes").click()
    page.wait_for_url(re.compile(r"/pre-orders/\d+/$"))
    assert page.get_by_text("Your pre-order has been updated.").is_visible()
    assert page.get_by_text("Comedy Late").first.is_visible()
    preorder.refresh_from_db()
    assert (preorder.event, preorder.amount_pence) == (events[1], 1500)

    page.get_by_role("link", name="Cancel pre-order").click()
    page.get_by_role("button", name="Yes, cancel my pre-order").click()
    page.wait_for_url(f"{live_server.url}/")
    assert page.get_by_text("Your pre-order is cancelled").is_visible()
    screenshot(page, "journey-6-cancelled")
    preorder.refresh_from_db()
    assert preorder.status == Status.CANCELLED
    # With the pre-order cancelled, the member may choose again.
    assert page.get_by_role("link", name="Pre-order Jazz in the Cellar").is_visible()


def test_replacing_the_card_while_editing(live_server, stripe_server, phone_page, member, events):
    page = phone_page
    log_in(page, live_server.url, member.email, "a-Good-passw0rd")
    page.get_by_role("link", name="Pre-order Comedy Late").click()
    fill_card(page)
    page.get_by_role("button", name="Pre-order – no charge now").click()
    page.wait_for_url(re.compile(r"/pre-orders/\d+/$"))
    first_card = PreOrder.objects.get(member=member).payment_method_id

    page.get_by_role("link", name="Edit pre-order").click()
    page.get_by_role("link", name="Use a different card").click()
    fill_card(page, "5555555555554444")
    page.get_by_role("button", name="Save changes").click()
    page.wait_for_url(re.compile(r"/pre-orders/\d+/$"))
    preorder = PreOrder.objects.get(member=member)
    assert preorder.payment_method_id != first_card
    assert preorder.card_last4 == "4444"
    assert page.get_by_text("•••• 4444").is_visible()


def test_a_card_declined_at_setup_shows_a_clear_error_and_saves_nothing(
    live_server, stripe_server, phone_page, member, events
):
    page = phone_page
    log_in(page, live_server.url, member.email, "a-Good-passw0rd")
    page.get_by_role("link", name="Pre-order Jazz in the Cellar").click()
    fill_card(page, DECLINED_AT_SETUP)
    page.get_by_role("button", name="Pre-order – no charge now").click()
    error = page.get_by_role("alert")
    error.filter(has_text="did not accept").wait_for()
    assert (
        error.inner_text().strip() == "Your bank did not accept this card. Please try another card."
    )
    screenshot(page, "journey-declined-card")
    assert page.get_by_role("button", name="Pre-order – no charge now").is_enabled()
    assert not PreOrder.objects.exists()


def test_when_stripe_js_cannot_load_the_member_is_told_and_cannot_submit(
    live_server, stripe_server, phone_page, member, events
):
    page = phone_page
    page.route("**/js.stripe.com/v3/**", lambda route: route.abort())
    log_in(page, live_server.url, member.email, "a-Good-passw0rd")
    page.get_by_role("link", name="Pre-order Jazz in the Cellar").click()
    error = page.get_by_role("alert")
    error.filter(has_text="could not load").wait_for()
    assert error.inner_text() == (
        "The secure card form could not load. Please check your connection and reload the page."
    )
    assert page.get_by_role("button", name="Pre-order – no charge now").is_disabled()
    screenshot(page, "journey-stripe-js-blocked")
    assert not PreOrder.objects.exists()
