"""Staff see an event's waitlist in its order on a laptop, choose how freed places are offered,
and a manager offers a freed place: the first in line is charged and gets the ticket. The
member on the waitlist sees their place in line on their phone."""

import re

import pytest

from events.models import Event
from payments import run_execution
from preorders import decisions
from preorders.models import PreOrder
from preorders.services import place_preorder
from preorders.states import Status
from tests.axe import axe_violations
from tests.browser import log_in
from tests.conftest import _add_tickets, close_window, screenshot
from tests.stripe_helpers import DECLINED_OFF_SESSION, SUCCEEDS, new_confirmed_setup_intent

pytestmark = [pytest.mark.browser, pytest.mark.stripe, pytest.mark.django_db(transaction=True)]
PASSWORD = "a-Good-passw0rd"


def test_staff_offer_freed_places_to_the_waitlist_in_order(
    live_server, stripe_server, browser, staff, make_member, make_event
):
    event = make_event(title="Jazz in the Cellar", refill_mode=Event.RefillMode.MANUAL)
    _add_tickets(event, 2)
    members = [make_member(full_name=f"Fan {n}") for n in range(4)]
    cards = [SUCCEEDS, DECLINED_OFF_SESSION, SUCCEEDS, SUCCEEDS]
    preorders = [
        place_preorder(m, event.pk, new_confirmed_setup_intent(stripe_server, m, card))
        for m, card in zip(members, cards, strict=True)
    ]
    close_window(event.cycle_id)
    decisions.auto_fulfil(event.pk, actor=staff)
    run_execution.run_charges(event.cycle_id, trigger="test", early=True)
    assert PreOrder.objects.get(pk=preorders[1].pk).status == Status.FAILED

    phone = browser.new_context(viewport={"width": 390, "height": 844}).new_page()
    log_in(phone, live_server.url, members[2].email, PASSWORD)
    message = phone.get_by_test_id("status-message").inner_text()
    assert "You're number 1 on the waitlist." in message
    assert phone.get_by_test_id("status").inner_text() == "On the waitlist"
    screenshot(phone, "waitlist-member-phone")
    assert axe_violations(phone) == []
    phone.context.close()

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    log_in(page, live_server.url, staff.email, PASSWORD, lands_on="/staff/events/")
    page.goto(f"{live_server.url}/staff/events/{event.pk}/")
    waitlist = page.get_by_test_id("waitlist")
    assert waitlist.locator("li").all_inner_texts() == [
        f"{members[2].full_name} {members[2].email}",
        f"{members[3].full_name} {members[3].email}",
    ]
    assert page.get_by_label("Offer freed places").input_value() == "manual"
    screenshot(page, "waitlist-staff-event")
    assert axe_violations(page) == []

    page.get_by_role("button", name="Offer freed places").click()
    page.wait_for_url(re.compile(rf"/staff/events/{event.pk}/$"))
    assert page.get_by_text("Freed places are being offered to the waitlist").is_visible()
    statuses = [PreOrder.objects.get(pk=p.pk).status for p in preorders]
    assert statuses == [
        Status.TICKET_SENT,
        Status.FAILED,
        Status.TICKET_SENT,  # the first in line got the freed place
        Status.WAITLISTED,
    ]
    assert waitlist.locator("li").all_inner_texts() == [
        f"{members[3].full_name} {members[3].email}"
    ]

    page.get_by_label("Offer freed places").select_option("automatic")
    page.get_by_role("button", name="Save").click()
    page.get_by_text("Freed places: Automatically, within minutes.").wait_for()
    assert Event.objects.get(pk=event.pk).refill_mode == Event.RefillMode.AUTOMATIC
    screenshot(page, "waitlist-staff-after-offer")
    context.close()
