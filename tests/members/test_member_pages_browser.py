"""A member's weeks and account in a real Chromium at phone size, against the live app and a
real localstripe: week 1 with a new card, week 2 in one tap; removing a card; downloading their
data; leaving the club. Every page is checked with axe-core and photographed in test-artifacts/."""

import datetime as dt
import json
import re

import pytest
import time_machine

from events.selectors import cycle_for_week
from members.models import Member
from payments import run_execution
from preorders.decisions import approve
from preorders.models import PreOrder
from preorders.states import Status
from tests.axe import assert_accessible
from tests.browser import fill_card, log_in
from tests.conftest import _add_tickets, close_window, screenshot
from tests.stripe_helpers import save_card, setup_intent_count, stripe_get

pytestmark = [pytest.mark.browser, pytest.mark.stripe, pytest.mark.django_db(transaction=True)]

PASSWORD = "a-Good-passw0rd"


def _look(page, name: str) -> None:
    assert_accessible(page, name)
    screenshot(page, f"member-{name}")


def test_week_one_with_a_new_card_then_week_two_in_one_tap(
    live_server, stripe_server, phone_page, member, make_event, open_cycle
):
    page, url = phone_page, live_server.url
    week1_event = make_event(title="Jazz in the Cellar", public_price_pence=2500)
    _add_tickets(week1_event, 2)
    log_in(page, url, member.email, PASSWORD)
    page.get_by_role("link", name="Pre-order Jazz in the Cellar").click()
    _look(page, "place-new-card")
    fill_card(page)
    page.get_by_role("button", name="Pre-order – no charge now").click()
    page.wait_for_url(re.compile(r"/pre-orders/\d+/$"))
    week1 = PreOrder.objects.get(member=member)

    close_window(week1.cycle_id)
    approve(week1.event_id, [week1.pk], actor=None)
    run_execution.run_charges(week1.cycle_id, trigger="test", early=True)
    assert PreOrder.objects.get(pk=week1.pk).status == Status.TICKET_SENT

    next_cycle = cycle_for_week(open_cycle.week_start + dt.timedelta(weeks=1))
    make_event(cycle=next_cycle, title="Comedy Late", public_price_pence=1800)
    with time_machine.travel(next_cycle.opens_at + dt.timedelta(hours=2), tick=True):
        page.goto(f"{url}/")
        previous = page.get_by_test_id("previous-preorder")
        assert "Successful – Ticket Sent" in previous.inner_text()
        assert re.search(r"Charged £22\.50 on \w{3} \d+ \w{3} to your Visa •••• 4242",
                         previous.get_by_test_id("charged").inner_text())  # fmt: skip
        with page.expect_download() as download:
            previous.get_by_role("link", name="Add to calendar").click()
        assert "SUMMARY:Jazz in the Cellar" in download.value.path().read_text()
        _look(page, "dashboard-week-two")

        page.get_by_role("link", name="Pre-order Comedy Late").click()
        saved = page.get_by_label(re.compile(r"Visa •••• 4242, expires 12/34"))
        assert saved.is_checked()
        _look(page, "place-saved-card")
        intents = setup_intent_count(stripe_server)
        page.get_by_role("button", name="Pre-order – no charge now").click()  # the one tap
        page.wait_for_url(re.compile(r"/pre-orders/\d+/$"))
        assert page.get_by_test_id("status").inner_text() == "Pending"
        _look(page, "week-two-placed")
        assert setup_intent_count(stripe_server) == intents

        week2 = PreOrder.objects.get(member=member, cycle=next_cycle)
        assert (week2.payment_method_id, week2.setup_intent_id) == (week1.payment_method_id, None)
        page.goto(f"{url}/")
        mine = page.get_by_test_id("pre-ordered")
        assert mine.count() == 1 and mine.is_visible()


def test_the_account_page_removes_a_card_and_downloads_the_data(
    live_server, stripe_server, phone_page, member
):
    page, url = phone_page, live_server.url
    keep = save_card(stripe_server, member)
    remove = save_card(stripe_server, member, "5555555555554444")
    log_in(page, url, member.email, PASSWORD)
    page.get_by_role("link", name="Account").click()
    cards = page.get_by_test_id("saved-card")
    assert cards.count() == 2
    _look(page, "account")

    page.get_by_role("link", name="Remove Visa •••• 4444").click()
    _look(page, "remove-card")
    page.get_by_role("button", name="Yes, remove this card").click()
    page.wait_for_url(f"{url}/account/")
    assert page.get_by_text("Your Visa •••• 4444 is removed.").is_visible()
    assert page.get_by_test_id("saved-card").count() == 1
    assert stripe_get(stripe_server, f"payment_methods/{remove}")["customer"] is None
    assert stripe_get(stripe_server, f"payment_methods/{keep}")["customer"]

    with page.expect_download() as download:
        page.get_by_role("link", name="Download my data (JSON)").click()
    assert download.value.suggested_filename.startswith("harrys-club-my-data-")
    data = json.loads(download.value.path().read_text())
    assert data["profile"]["email"] == member.email
    assert [card["last4"] for card in data["saved_cards"]] == ["4242"]


def test_leaving_the_club_and_not_signing_in_again(
    live_server, stripe_server, phone_page, member, make_event
):
    page, url = phone_page, live_server.url
    save_card(stripe_server, member)
    log_in(page, url, member.email, PASSWORD)
    page.get_by_role("link", name="Account").click()
    page.get_by_role("link", name="Leave the club…").click()
    _look(page, "leave")
    page.get_by_label("Your password, to confirm").fill(PASSWORD)
    page.get_by_role("button", name="Leave the club").click()
    page.get_by_role("heading", name="You have left Harry's Club").wait_for()
    _look(page, "left")
    assert Member.objects.get(pk=member.pk).left_at is not None

    page.goto(f"{url}/login/")
    page.get_by_label("Email").fill(member.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("alert").or_(page.locator(".errorlist")).first.wait_for()
    assert page.url.endswith("/login/")
    screenshot(page, "member-sign-in-after-leaving")


def test_the_member_pages_in_their_other_states(
    live_server, stripe_server, phone_page, member, make_event
):
    """Pages the journeys above do not reach, photographed and checked: editing with saved
    cards, a failed payment pointing to the public sale, this week's cancelled pre-order."""
    page, url = phone_page, live_server.url
    first = save_card(stripe_server, member)
    save_card(stripe_server, member, "5555555555554444")
    make_event(
        title="Jazz in the Cellar",
        public_sale_url="https://tickets.example.com/jazz",
        public_sale_at=dt.datetime(2026, 12, 9, 10, tzinfo=dt.UTC),
    )
    make_event(title="Comedy Late")
    log_in(page, url, member.email, PASSWORD)
    page.get_by_role("link", name="Pre-order Jazz in the Cellar").click()
    page.get_by_label(re.compile("Visa •••• 4444")).check()
    page.get_by_role("button", name="Pre-order – no charge now").click()
    page.wait_for_url(re.compile(r"/pre-orders/\d+/$"))
    preorder = PreOrder.objects.get(member=member)
    assert preorder.card_last4 == "4444"

    page.get_by_role("link", name="Edit pre-order").click()
    _look(page, "edit-saved-cards")
    page.get_by_label(re.compile(r"Visa •••• 4242, expires")).check()
    page.get_by_role("button", name="Save changes").click()
    page.wait_for_url(re.compile(r"/pre-orders/\d+/$"))
    assert PreOrder.objects.get(pk=preorder.pk).payment_method_id == first

    page.get_by_role("link", name="Cancel pre-order").click()
    page.get_by_role("button", name="Yes, cancel my pre-order").click()
    page.wait_for_url(f"{url}/")
    assert (
        "You cancelled your pre-order of" in page.get_by_test_id("cancelled-this-week").inner_text()
    )
    assert page.get_by_text("Earlier weeks").count() == 0
    _look(page, "dashboard-cancelled-this-week")

    PreOrder.objects.filter(pk=preorder.pk).update(
        status=Status.FAILED, failure_code="authentication_required"
    )
    page.goto(f"{url}/pre-orders/{preorder.pk}/")
    message = page.get_by_test_id("status-message").inner_text()
    assert "Your bank wanted you to confirm the payment yourself" in message
    assert (
        "go on public sale at 10AM Wednesday 9 December" in message
        and "authentication_required" not in message
    )
    _look(page, "failed-public-sale")
