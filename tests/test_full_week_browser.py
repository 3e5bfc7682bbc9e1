"""The whole week in a real browser: a member pre-orders, staff close the window and approve,
staff start the charge run, and the member's dashboard shows "Successful – Ticket Sent" with the
QR code while the outbox holds the ticket email."""

import re

import pytest

from preorders.models import PreOrder
from preorders.states import Status
from tests.browser import fill_card, log_in
from tests.conftest import _add_tickets, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.stripe, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def outbox_mail(settings):
    # The demo's email: kept in the database and shown to staff at /staff/outbox/.
    settings.MAILERS = {"default": {"BACKEND": "notifications.outbox_backend.OutboxEmailBackend"}}
    settings.EMAIL_PROVIDER = "outbox"


def test_a_whole_week_from_pre_order_to_ticket(
    live_server, stripe_server, browser, outbox_mail, member, staff, make_event
):
    event = make_event(title="Jazz in the Cellar", public_price_pence=2500, discount_percent=10)
    _add_tickets(event, 2)
    phone = browser.new_context(viewport={"width": 390, "height": 844})
    laptop = browser.new_context(viewport={"width": 1280, "height": 900})
    for context in (phone, laptop):
        context.set_default_timeout(20_000)
    member_page, staff_page = phone.new_page(), laptop.new_page()
    url = live_server.url

    log_in(member_page, url, member.email, "a-Good-passw0rd")
    member_page.get_by_role("link", name="Pre-order Jazz in the Cellar").click()
    fill_card(member_page)
    member_page.get_by_role("button", name="Pre-order – no charge now").click()
    member_page.wait_for_url(re.compile(r"/pre-orders/\d+/$"))

    log_in(staff_page, url, staff.email, "a-Good-passw0rd", lands_on="/staff/events/")
    staff_page.goto(f"{url}/staff/events/")
    staff_page.once("dialog", lambda dialog: dialog.accept())
    staff_page.get_by_role("button", name="Close pre-orders now").click()
    staff_page.get_by_text("Pre-orders are closed").wait_for()
    staff_page.get_by_role("link", name="Jazz in the Cellar", exact=True).click()
    staff_page.get_by_label("Select all 1 matching the filter").check()
    staff_page.get_by_role("button", name="Approve selected…").click()
    staff_page.get_by_role("button", name="Yes, approve 1").click()
    staff_page.get_by_text("Approved 1.").wait_for()

    member_page.goto(f"{url}/")
    previous = member_page.get_by_test_id("previous-preorder")
    assert "Approved" in previous.get_by_test_id("status").inner_text()

    staff_page.get_by_role("link", name="Charge run").first.click()
    assert staff_page.get_by_test_id("preview-count").inner_text() == "1"
    assert staff_page.get_by_test_id("preview-total").inner_text() == "£22.50"
    screenshot(staff_page, "week-1-dry-run")
    staff_page.get_by_label(re.compile("Charge 1 card")).check()
    staff_page.get_by_role("button", name="Start the charge run").click()
    assert staff_page.get_by_test_id("report-paid").inner_text() == "1"
    assert staff_page.get_by_test_id("report-taken").inner_text() == "£22.50"
    screenshot(staff_page, "week-2-run-report")

    member_page.goto(f"{url}/")
    previous = member_page.get_by_test_id("previous-preorder")
    assert previous.get_by_test_id("status").inner_text() == "Successful – Ticket Sent"
    ticket = previous.get_by_test_id("ticket")
    assert ticket.locator("svg").count() == 1
    code = member_page.get_by_test_id("ticket-code").inner_text()
    screenshot(member_page, "week-3-member-ticket")
    preorder = PreOrder.objects.get(member=member)
    assert preorder.status == Status.TICKET_SENT
    assert preorder.ticket.code == code

    staff_page.goto(f"{url}/staff/outbox/")
    staff_page.get_by_role("link", name="Your ticket: Jazz in the Cellar").click()
    assert code in staff_page.get_by_test_id("email-text").inner_text()
    assert "ticket-qr.png" in staff_page.content()
    # The HTML preview's QR code really shows (it was a broken image: cid: in a browser).
    qr = staff_page.frame_locator("iframe[name=email-preview]").locator("img").first
    qr.wait_for()
    assert qr.evaluate("img => img.complete && img.naturalWidth > 0")
    screenshot(staff_page, "week-4-outbox-ticket")
    phone.close()
    laptop.close()
