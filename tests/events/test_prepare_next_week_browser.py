"""A manager prepares next week in the browser (laptop size): creates an event for next week,
copies this week's events to it, fills the pools. Members do not see next week until Monday; on
Monday (the clock moved with time-machine, which the live server's thread shares) a member on a
phone sees the new week's events and pre-orders one. Screenshots in test-artifacts/."""

import re

import pytest

from events.models import Event
from preorders.models import PreOrder
from tests.axe import assert_accessible
from tests.browser import fill_card, log_in
from tests.conftest import screenshot
from tests.events.conftest import london

pytestmark = [pytest.mark.browser, pytest.mark.stripe, pytest.mark.django_db(transaction=True)]

PASSWORD = "a-Good-passw0rd"


def test_a_manager_prepares_next_week_and_members_pre_order_on_monday(
    live_server, stripe_server, browser, staff, member, this_week, _wednesday_noon
):
    Event.objects.create(
        cycle=this_week,
        title="Jazz in the Cellar",
        starts_at=london(2026, 12, 11, 20, 0),
        venue="The Cellar",
        public_price_pence=2500,
    )
    url = live_server.url
    laptop = browser.new_context(viewport={"width": 1280, "height": 900})
    phone = browser.new_context(viewport={"width": 390, "height": 844})
    for context in (laptop, phone):
        context.set_default_timeout(20_000)
    manager, member_page = laptop.new_page(), phone.new_page()

    # --- Wednesday: the manager prepares next week ------------------------------------------
    log_in(manager, url, staff.email, PASSWORD, lands_on="/staff/events/")
    next_week = manager.get_by_test_id("cycle-2026-12-07")
    assert "Prepared ahead: pre-orders open midnight Monday 7 December" in next_week.inner_text()
    assert manager.get_by_test_id("cycle-2026-12-14").is_visible()
    screenshot(manager, "prepare-1-events-page")

    next_week.get_by_role("link", name="Add an event to this week").click()
    manager.get_by_label("Title").fill("Soul Night")
    manager.get_by_label("Starts (UK time)").fill("2026-12-19T20:00")
    manager.get_by_label("Venue").fill("Main Room")
    manager.get_by_label("Public price (£)").fill("18.00")
    manager.get_by_label("A fixed amount off").check()
    manager.get_by_label("Discount (£ off)").fill("3")
    manager.get_by_label("Public sale link").fill("https://tickets.example/soul")
    manager.get_by_label("Public sale opens (UK time)").fill("2026-12-16T10:00")
    assert_accessible(manager, "the new event form")
    screenshot(manager, "prepare-2-new-event-form")
    manager.get_by_role("button", name="Create event").click()
    manager.wait_for_url(re.compile(r"/staff/events/\d+/pool/$"))
    assert manager.get_by_text("Soul Night is ready. Now fill its ticket pool.").is_visible()
    manager.get_by_label("How many codes").fill("20")
    manager.get_by_role("button", name="Generate").click()
    assert (
        manager.get_by_test_id("pool-summary").locator("[data-stat=supply]").inner_text()[:2]
        == "20"
    )

    # A refused change says why and saves nothing.
    manager.goto(f"{url}/staff/events/")
    manager.get_by_test_id("cycle-2026-12-07").get_by_role("link", name="Edit Soul Night").click()
    manager.get_by_label("Starts (UK time)").fill("2026-12-15T18:00")
    manager.get_by_role("button", name="Save changes").click()
    assert "Nothing was saved" in manager.get_by_test_id("form-errors").inner_text()
    assert manager.get_by_text("An event must start after its week's charge run").is_visible()
    screenshot(manager, "prepare-3-refused-edit")
    assert Event.objects.get(title="Soul Night").starts_at == london(2026, 12, 19, 20, 0)

    # Copy this week's events to next week, then fill the copy's pool.
    manager.goto(f"{url}/staff/events/")
    manager.get_by_test_id("cycle-2026-11-30").get_by_role(
        "button", name="Copy these events to the week of 7 December"
    ).click()
    assert manager.get_by_text(
        "Copied 1 event to the week of 7 December, with empty pools."
    ).is_visible()
    week = manager.get_by_test_id("cycle-2026-12-07")
    assert "Jazz in the Cellar" in week.inner_text() and "Fri 18 Dec 2026, 8PM" in week.inner_text()
    week.get_by_role("link", name="Ticket pool of Jazz in the Cellar: 0").click()
    manager.get_by_label("How many codes").fill("10")
    manager.get_by_role("button", name="Generate").click()
    manager.goto(f"{url}/staff/events/")
    assert_accessible(manager, "the events page")
    screenshot(manager, "prepare-4-next-week-ready")

    # Members see this week only.
    log_in(member_page, url, member.email, PASSWORD)
    assert member_page.get_by_text("Jazz in the Cellar").count() == 1
    assert member_page.get_by_text("Soul Night").count() == 0

    # --- Monday morning: next week opens --------------------------------------------------
    _wednesday_noon.move_to(london(2026, 12, 7, 9, 0))
    member_page.goto(f"{url}/")
    assert member_page.get_by_text("Soul Night").is_visible()
    assert member_page.get_by_text("Sat 19 Dec 2026, 8PM · Main Room").is_visible()
    assert member_page.get_by_label("Member price £15").is_visible()
    assert member_page.get_by_role("link", name="Pre-order Jazz in the Cellar").is_visible()
    screenshot(member_page, "prepare-5-member-monday")
    member_page.get_by_role("link", name="Pre-order Soul Night").click()
    fill_card(member_page)
    member_page.get_by_role("button", name="Pre-order – no charge now").click()
    member_page.wait_for_url(re.compile(r"/pre-orders/\d+/$"))
    screenshot(member_page, "prepare-6-member-pre-ordered")
    preorder = PreOrder.objects.get(member=member)
    assert (preorder.event.title, preorder.amount_pence) == ("Soul Night", 1500)
    assert preorder.cycle.week_start.isoformat() == "2026-12-07"

    laptop.close()
    phone.close()
