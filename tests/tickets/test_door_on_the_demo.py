"""Issue 13's "done when", on the demo's own data: Alice and Bob (seed_demo's members) pre-order
Jazz in the Cellar with cards saved at localstripe, the manager approves them and the charge run
(`manage.py charge_run --now`, as the README says) takes their money. The manager reads each
ticket email in the staff outbox, as on the demo, and a QR reader (the door page's own jsQR,
in Chromium) reads the code from the picture in it. At the door, on a phone, the demo's door
account checks Alice in with that code; a second scan says when it was used and by whom. Bob is
refunded from his pre-order's staff page, and his emailed code is then refused."""

import base64
import re

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from demo.services import STAFF_EMAIL, STAFF_PASSWORD, seed_demo
from events import london
from events.models import Event
from members.models import Member
from preorders.decisions import approve
from preorders.models import PreOrder
from preorders.services import place_preorder
from preorders.states import Status
from tests.browser import log_in
from tests.conftest import close_window, screenshot
from tests.stripe_helpers import SUCCEEDS, new_confirmed_setup_intent
from tests.tickets.test_ticket_qr_at_the_door import read_qr
from tickets.models import CheckIn, DoorScan, Ticket

pytestmark = [pytest.mark.browser, pytest.mark.stripe, pytest.mark.django_db(transaction=True)]

DOOR_EMAIL = "door@harrys.club"


@pytest.fixture
def outbox_mail(settings):
    # The demo's email: kept in the database and shown to staff at /staff/outbox/.
    settings.MAILERS = {"default": {"BACKEND": "notifications.outbox_backend.OutboxEmailBackend"}}
    settings.EMAIL_PROVIDER = "outbox"


def qr_code_in_the_outbox(page, base_url: str, browser, to: str, subject: str) -> str:
    """Open the member's ticket email in the staff outbox and read the QR code pictured in it."""
    page.goto(f"{base_url}/staff/outbox/")
    row = page.get_by_role("row").filter(has_text=to).filter(has_text=subject)
    expect(row).to_have_count(1)
    row.get_by_role("link", name=subject).click()
    email = page.frame_locator("iframe[name=email-preview]")
    picture = email.get_by_role("img", name=re.compile("QR code for ticket"))
    source = picture.get_attribute("src")
    assert source.startswith("data:image/png;base64,")
    return read_qr(browser, base64.b64decode(source.split(",", 1)[1]))


def test_on_the_demo_the_door_lets_alice_in_once_and_refuses_a_refunded_ticket(
    live_server, stripe_server, browser, outbox_mail
):
    seed_demo()
    jazz = Event.objects.get(title="Jazz in the Cellar")
    manager = Member.objects.get(email=STAFF_EMAIL)
    alice = Member.objects.get(email="alice@example.com")
    bob = Member.objects.get(email="bob@example.com")
    placed = [
        place_preorder(who, jazz.pk, new_confirmed_setup_intent(stripe_server, who, SUCCEEDS))
        for who in (alice, bob)
    ]
    close_window(jazz.cycle_id)
    assert sorted(approve(jazz.pk, [p.pk for p in placed], actor=manager).changed) == sorted(
        p.pk for p in placed
    )
    call_command("charge_run", "--now", "--week", jazz.cycle.week_start.isoformat())
    alice_order, bob_order = (PreOrder.objects.get(pk=p.pk) for p in placed)
    assert alice_order.status == bob_order.status == Status.TICKET_SENT

    laptop = browser.new_context(viewport={"width": 1280, "height": 900})
    phone = browser.new_context(viewport={"width": 390, "height": 844})
    for context in (laptop, phone):
        context.set_default_timeout(20_000)
    try:
        office, door = laptop.new_page(), phone.new_page()
        url = live_server.url
        log_in(office, url, STAFF_EMAIL, STAFF_PASSWORD, lands_on="/staff/events/")
        subject = "Your ticket: Jazz in the Cellar"
        alice_code = qr_code_in_the_outbox(office, url, browser, alice.email, subject)
        bob_code = qr_code_in_the_outbox(office, url, browser, bob.email, subject)
        assert alice_code == Ticket.objects.get(preorder=alice_order).code
        assert bob_code == Ticket.objects.get(preorder=bob_order).code

        log_in(door, url, DOOR_EMAIL, STAFF_PASSWORD, lands_on="/staff/door/")
        door.get_by_role("link", name=re.compile("Jazz in the Cellar")).click()
        count = door.get_by_test_id("door-count")
        expect(count).to_contain_text("0 of 2 tickets checked in")
        field = door.get_by_label("Ticket code")
        answer = door.get_by_test_id("door-answer")

        field.fill(alice_code)
        field.press("Enter")
        expect(answer).to_have_attribute("data-result", "valid")
        expect(answer).to_contain_text("Valid — welcome Alice Archer")
        expect(count).to_contain_text("1 of 2 tickets checked in")
        screenshot(door, "door-demo-1-alice-valid")

        field.fill(alice_code)
        field.press("Enter")
        used = CheckIn.objects.get(ticket__code=alice_code, undone_at__isnull=True)
        when = f"{london.to_london(used.checked_in_at):%H:%M}"
        expect(answer).to_have_attribute("data-result", "already_checked_in")
        expect(answer).to_contain_text(f"Already checked in at {when} by Dan Door")
        screenshot(door, "door-demo-2-alice-again")

        # The manager refunds Bob from his pre-order's page, through localstripe.
        office.goto(f"{url}/staff/pre-orders/{bob_order.pk}/")
        office.get_by_text("Refund this payment").click()
        office.get_by_label("Reason (the member reads it in their email)").fill("Cannot come")
        office.get_by_label(re.compile("in full and void the ticket")).check()
        office.get_by_role("button", name=re.compile("^Refund £")).click()
        expect(office.get_by_test_id("staff-status")).to_have_text("Refunded")

        field.fill(bob_code)
        field.press("Enter")
        expect(answer).to_have_attribute("data-result", "void")
        expect(answer).to_contain_text("Refunded or void")
        expect(answer).to_contain_text(f"Ticket {bob_code} was refunded. Do not let it in.")
        expect(count).to_contain_text("1 of 1 ticket checked in")
        screenshot(door, "door-demo-3-bob-refunded")
    finally:
        laptop.close()
        phone.close()

    assert CheckIn.objects.count() == 1
    assert list(DoorScan.objects.order_by("scanned_at", "id").values_list("result", flat=True)) == [
        "valid",
        "already_checked_in",
        "void",
    ]
