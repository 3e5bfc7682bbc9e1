"""A staff member runs a review in a real Chromium on a laptop-sized screen: open an event,
filter, select all, approve (up to supply), deny one, and read the audit log."""

import datetime as dt
import re

import pytest
from django.utils import timezone

from events.models import PresaleCycle
from preorders.models import PreOrder
from preorders.states import Status
from tests.browser import log_in
from tests.conftest import screenshot
from tests.factories import stored_preorder
from tickets.models import Ticket

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def laptop_page(browser, request):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    screenshot(page, f"{request.node.name}-final")
    context.close()


@pytest.fixture
def review(make_event, make_member, open_cycle):
    jazz = make_event(title="Jazz in the Cellar")
    comedy = make_event(title="Comedy Late")
    Ticket.objects.bulk_create(Ticket(event=jazz, code=f"JAZZ-{n:03d}") for n in range(3))
    Ticket.objects.bulk_create(Ticket(event=comedy, code=f"COMEDY-{n:03d}") for n in range(3))
    for n in range(5):
        person = make_member(full_name=f"Jazz Fan {n}", email=f"jazz{n}@example.com")
        stored_preorder(
            person,
            jazz,
            amount_pence=2250,
            created_at=timezone.now() - dt.timedelta(minutes=10 - n),
        )
    PresaleCycle.objects.filter(pk=open_cycle.pk).update(
        closed_early_at=timezone.now() - dt.timedelta(seconds=1)
    )
    return jazz


def test_staff_review_journey(live_server, laptop_page, staff, review):
    page = laptop_page
    log_in(page, live_server.url, staff.email, "a-Good-passw0rd", lands_on="/staff/events/")
    page.goto(f"{live_server.url}/staff/events/")
    screenshot(page, "staff-1-events")
    page.get_by_role("link", name="Jazz in the Cellar", exact=True).click()
    assert page.get_by_test_id("stat-supply").inner_text() == "3"
    assert page.get_by_test_id("stat-left").inner_text() == "3"

    page.get_by_label("Status").select_option("pending")
    page.get_by_role("button", name="Filter").click()
    assert "5 pre-orders match" in page.get_by_test_id("matching-count").inner_text()
    page.get_by_label("Select all 5 matching the filter").check()
    screenshot(page, "staff-2-selected")
    page.get_by_role("button", name="Approve selected…").click()
    confirmation = page.get_by_test_id("confirmation").inner_text()
    assert "Only 3 places left" in confirmation
    screenshot(page, "staff-3-confirm")
    page.get_by_role("button", name="Yes, approve 3").click()

    page.get_by_text("Approved 3.").wait_for()  # the page the click leads to
    page.get_by_text("2 pre-orders not approved").first.wait_for()
    assert page.get_by_test_id("stat-left").inner_text() == "0"
    assert page.get_by_test_id("stat-approved").inner_text() == "3"
    approved = list(
        PreOrder.objects.filter(status=Status.APPROVED).values_list("member__full_name", flat=True)
    )
    assert sorted(approved) == ["Jazz Fan 0", "Jazz Fan 1", "Jazz Fan 2"]

    page.get_by_label("Status").select_option("")
    page.get_by_role("button", name="Filter").click()
    page.get_by_role("link", name="Jazz Fan 1").click()
    page.get_by_role("button", name="Deny").click()
    # The same page comes back: wait for its new status rather than read the old one.
    page.get_by_test_id("staff-status").filter(has_text="Denied").wait_for()
    page.get_by_role("link", name=re.compile("Jazz in the Cellar")).click()
    assert page.get_by_test_id("stat-left").inner_text() == "1"
    log = page.get_by_test_id("audit-log").inner_text()
    assert "Harriet Staff" in log
    assert "from Approved to Denied" in log
    assert log.count("from Pending to Approved") == 3
    screenshot(page, "staff-4-after-deny")
