"""A manager's week after the run, in Chromium at laptop size: the charge-run page following a
run, a refund from the pre-order's page, the member then seeing it on a phone, and the members
page. Screenshots land in test-artifacts/."""

import pytest
from django.test import Client

from payments import charging, run_execution
from preorders.models import PreOrder
from preorders.states import Status
from tests.conftest import close_window, screenshot
from tickets.models import Ticket

pytestmark = [pytest.mark.browser, pytest.mark.stripe, pytest.mark.django_db(transaction=True)]


def page_as(browser, live_server, user, viewport):
    client = Client()
    client.force_login(user)
    context = browser.new_context(viewport=viewport)
    context.set_default_timeout(15_000)
    context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )
    return context.new_page()


def test_a_manager_follows_the_run_then_refunds_and_the_member_sees_it(
    live_server, browser, staff, approved_preorder_factory
):
    preorders = [approved_preorder_factory() for _ in range(2)]
    cycle_id = preorders[0].cycle_id
    close_window(cycle_id)
    laptop = page_as(browser, live_server, staff, {"width": 1280, "height": 900})

    run = charging.start_run(cycle_id, trigger="staff", actor=staff, early=True)
    laptop.goto(f"{live_server.url}/staff/cycles/{cycle_id}/charge-run/")
    assert laptop.get_by_test_id("run-in-progress").is_visible()
    assert laptop.get_by_role("button", name="Start the charge run").count() == 0
    screenshot(laptop, "ops-charge-run-under-way")
    run_execution.execute_run(run.pk)
    # The page reloads itself (every 5 s) and stops once the run has settled.
    laptop.get_by_test_id("report-attempted").filter(has_text="2").wait_for(timeout=12_000)
    assert laptop.get_by_test_id("run-in-progress").count() == 0
    screenshot(laptop, "ops-charge-run-settled")

    preorder = PreOrder.objects.get(pk=preorders[0].pk)
    code = preorder.ticket.code
    laptop.goto(f"{live_server.url}/staff/pre-orders/{preorder.pk}/")
    laptop.get_by_text("Refund this payment").click()
    laptop.get_by_label("Reason (the member reads it in their email)").fill("Event moved")
    laptop.get_by_label("Refund £22.50 in full and void the ticket").check()
    screenshot(laptop, "ops-refund-form")
    laptop.get_by_role("button", name="Refund £22.50").click()
    laptop.get_by_text("Refunded £22.50 to").wait_for()
    assert laptop.get_by_test_id("staff-status").inner_text() == "Refunded"
    assert "Event moved" in laptop.get_by_test_id("refund-record").inner_text()
    screenshot(laptop, "ops-refunded")
    assert PreOrder.objects.get(pk=preorder.pk).status == Status.REFUNDED
    assert Ticket.objects.get(code=code).voided_at is not None

    laptop.goto(f"{live_server.url}/staff/members/")
    laptop.get_by_label("Name or email").fill(preorder.member.email)
    laptop.get_by_role("button", name="Search").click()
    laptop.get_by_role("link", name=preorder.member.full_name).click()
    # The click starts the navigation; wait for the member's page rather than read the old one.
    laptop.wait_for_url(f"**/staff/members/{preorder.member_id}/")
    laptop.get_by_text("Refunded").first.wait_for()
    screenshot(laptop, "ops-member-page")
    laptop.context.close()

    phone = page_as(browser, live_server, preorder.member, {"width": 390, "height": 844})
    phone.goto(f"{live_server.url}/")
    phone.get_by_text("Refunded – no ticket").first.wait_for()
    message = phone.get_by_test_id("status-message").first.inner_text()
    assert message.startswith("Your payment of £22.50 was refunded in full: Event moved.")
    assert "no longer works" in message
    screenshot(phone, "ops-member-sees-refund")
    phone.context.close()
