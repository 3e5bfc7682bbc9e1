"""Issue 8's acceptance test: starting from the demo data, a manager runs three consecutive weeks
entirely from the staff pages, in a real browser at laptop size. Each week the manager prepares
the next week's events before it opens (week 1: the demo week's events copied; week 2: a new event
created; week 3: week 2's copied), fills the pool, and on Monday, once members have pre-ordered,
closes pre-orders, approves and starts the charge run. In week 2 a paid pre-order is refunded from
the staff pre-order page. Each week ends with every pre-order ticketed (or refunded) and exactly
one run summary email per manager. The clock moves with time-machine, which the live server's
thread shares. Screenshots in test-artifacts/."""

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest
import time_machine

from demo.services import MEMBER_PASSWORD, STAFF_EMAIL, STAFF_PASSWORD, seed_demo
from events.models import Event
from events.pricing import format_pence
from members.models import Member
from members.selectors import manager_emails
from notifications.models import OutboundEmail
from payments.models import Refund
from preorders.models import PreOrder
from preorders.services import place_preorder
from preorders.states import Status
from tests.browser import fill_card, log_in
from tests.conftest import screenshot
from tests.stripe_helpers import new_confirmed_setup_intent

pytestmark = [pytest.mark.browser, pytest.mark.stripe, pytest.mark.django_db(transaction=True)]

LONDON = ZoneInfo("Europe/London")
ALICE, BOB = "alice@example.com", "bob@example.com"


def london(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=LONDON)


@pytest.fixture
def outbox_mail(settings):
    # The demo's email: kept in the database and shown to staff at /staff/outbox/.
    settings.MAILERS = {"default": {"BACKEND": "notifications.outbox_backend.OutboxEmailBackend"}}
    settings.EMAIL_PROVIDER = "outbox"


def week_section(page, url: str, week: str):
    page.goto(f"{url}/staff/events/")
    return page.get_by_test_id(f"cycle-{week}")


def fill_pool(page, url: str, week: str, title: str, codes: int) -> None:
    week_section(page, url, week).get_by_role("link", name=f"Ticket pool of {title}: 0").click()
    page.get_by_label("How many codes").fill(str(codes))
    page.get_by_role("button", name="Generate").click()
    supply = page.get_by_test_id("pool-summary").locator("[data-stat=supply]").inner_text()
    assert supply.startswith(str(codes)), supply


def copy_week(page, url: str, week: str, to_label: str, copied: str) -> None:
    week_section(page, url, week).get_by_role(
        "button", name=f"Copy these events to the week of {to_label}"
    ).click()
    assert page.get_by_text(copied).is_visible()


def sign_in(page, url: str) -> None:
    """The manager signs in afresh each time they come back: a session lasts two weeks
    (Django's default), shorter than the three weeks this test covers."""
    page.context.clear_cookies()
    log_in(page, url, STAFF_EMAIL, STAFF_PASSWORD, lands_on="/staff/events/")


def pre_order_by_service(stripe_url: str, email: str, event: Event) -> PreOrder:
    """What the member's phone does, without the browser: a new card, then the pre-order."""
    member = Member.objects.get(email=email)
    return place_preorder(member, event.pk, new_confirmed_setup_intent(stripe_url, member))


def run_the_week(page, url: str, week: str, title: str, preorders: list[PreOrder]) -> None:
    """Close pre-orders, approve everyone for `title`, start the charge run; the report shows
    every card paid."""
    count = len(preorders)
    section = week_section(page, url, week)
    page.once("dialog", lambda dialog: dialog.accept())
    section.get_by_role("button", name="Close pre-orders now").click()
    assert page.get_by_text("Pre-orders are closed").is_visible()

    week_section(page, url, week).get_by_role("link", name=title, exact=True).click()
    page.get_by_label(f"Select all {count} matching the filter").check()
    page.get_by_role("button", name="Approve selected…").click()
    page.get_by_role("button", name=f"Yes, approve {count}").click()
    assert page.get_by_text(f"Approved {count}.").is_visible()

    week_section(page, url, week).get_by_role("link", name="Charge run").click()
    total = format_pence(sum(preorder.amount_pence for preorder in preorders))
    assert page.get_by_test_id("preview-count").inner_text() == str(count)
    assert page.get_by_test_id("preview-total").inner_text() == total
    page.get_by_label(re.compile(f"Charge {count} card")).check()
    page.get_by_role("button", name="Start the charge run").click()
    assert page.get_by_test_id("report-paid").inner_text() == str(count)
    assert page.get_by_test_id("report-taken").inner_text() == total


def assert_week_settled(week_start: str, expected: dict[str, str]) -> None:
    """Each member's pre-order of the week is in the expected status, and the managers got the
    week's run summary exactly once each."""
    preorders = PreOrder.objects.filter(cycle__week_start=week_start).select_related("member")
    assert {p.member.email: p.status for p in preorders} == expected
    for preorder in preorders:
        if preorder.status == Status.TICKET_SENT:
            assert preorder.ticket.code
    label = dt.date.fromisoformat(week_start).strftime("%-d %B %Y")
    summaries = OutboundEmail.objects.filter(
        template="run_summary", body_text__contains=f"week of {label} has settled"
    )
    assert sorted(summaries.values_list("to_email", flat=True)) == manager_emails()


def test_a_manager_runs_three_weeks_from_the_staff_pages(
    live_server, stripe_server, browser, outbox_mail
):
    with time_machine.travel(london(2026, 11, 25, 12, 0), tick=True) as clock:
        seed_demo()  # ./bin/demo's data: this week (of 23 November) with three events
        assert manager_emails() == [STAFF_EMAIL]
        url = live_server.url
        laptop = browser.new_context(viewport={"width": 1280, "height": 900})
        phone = browser.new_context(viewport={"width": 390, "height": 844})
        for context in (laptop, phone):
            context.set_default_timeout(20_000)
        manager, member_page = laptop.new_page(), phone.new_page()

        # --- Week 1 (30 November): the demo week's events copied ahead, one pool filled -------
        sign_in(manager, url)
        copy_week(
            manager,
            url,
            "2026-11-23",
            "30 November",
            "Copied 3 events to the week of 30 November, with empty pools.",
        )
        fill_pool(manager, url, "2026-11-30", "Jazz in the Cellar", 2)
        screenshot(manager, "three-weeks-1-week-one-prepared")

        clock.move_to(london(2026, 11, 30, 9, 0))
        log_in(member_page, url, ALICE, MEMBER_PASSWORD)
        member_page.get_by_role("link", name="Pre-order Jazz in the Cellar").click()
        fill_card(member_page)
        member_page.get_by_role("button", name="Pre-order – no charge now").click()
        member_page.wait_for_url(re.compile(r"/pre-orders/\d+/$"))
        screenshot(member_page, "three-weeks-2-alice-pre-ordered")
        jazz = Event.objects.get(cycle__week_start="2026-11-30", title="Jazz in the Cellar")
        week_one = [
            PreOrder.objects.get(member__email=ALICE, event=jazz),
            pre_order_by_service(stripe_server, BOB, jazz),
        ]
        sign_in(manager, url)
        run_the_week(manager, url, "2026-11-30", "Jazz in the Cellar", week_one)
        screenshot(manager, "three-weeks-3-week-one-run")
        assert_week_settled("2026-11-30", {ALICE: Status.TICKET_SENT, BOB: Status.TICKET_SENT})

        # --- Week 2 (7 December): a new event created ahead ----------------------------------
        clock.move_to(london(2026, 12, 2, 12, 0))
        sign_in(manager, url)
        week_section(manager, url, "2026-12-07").get_by_role(
            "link", name="Add an event to this week"
        ).click()
        manager.get_by_label("Title").fill("Soul Night")
        manager.get_by_label("Starts (UK time)").fill("2026-12-19T20:00")
        manager.get_by_label("Venue").fill("Main Room")
        manager.get_by_label("Public price (£)").fill("18.00")
        manager.get_by_label("A fixed amount off").check()
        manager.get_by_label("Discount (£ off)").fill("3")
        manager.get_by_label("Public sale link").fill("https://tickets.example/soul")
        manager.get_by_label("Public sale opens (UK time)").fill("2026-12-16T10:00")
        manager.get_by_role("button", name="Create event").click()
        assert manager.get_by_text("Soul Night is ready. Now fill its ticket pool.").is_visible()
        fill_pool(manager, url, "2026-12-07", "Soul Night", 5)

        clock.move_to(london(2026, 12, 7, 9, 0))
        soul = Event.objects.get(cycle__week_start="2026-12-07", title="Soul Night")
        week_two = [pre_order_by_service(stripe_server, email, soul) for email in (ALICE, BOB)]
        assert [p.amount_pence for p in week_two] == [1500, 1500]
        sign_in(manager, url)
        run_the_week(manager, url, "2026-12-07", "Soul Night", week_two)

        # Alice cannot come after all: the manager refunds her from her pre-order's page.
        week_section(manager, url, "2026-12-07").get_by_role(
            "link", name="Soul Night", exact=True
        ).click()
        manager.get_by_role("link", name="Alice Archer").click()
        refund_form = manager.get_by_test_id("refund-form")
        refund_form.locator("summary").click()
        manager.get_by_label("Reason (the member reads it in their email)").fill(
            "You told us you are away that night."
        )
        manager.get_by_label("Refund £15 in full and void the ticket").check()
        refund_form.get_by_role("button", name="Refund £15").click()
        assert manager.get_by_text(
            "Refunded £15 to Alice Archer; their ticket is void and they have been emailed."
        ).is_visible()
        assert "You told us you are away that night." in (
            manager.get_by_test_id("refund-record").inner_text()
        )
        screenshot(manager, "three-weeks-4-week-two-refund")
        assert_week_settled("2026-12-07", {ALICE: Status.REFUNDED, BOB: Status.TICKET_SENT})
        refund = Refund.objects.get(preorder=week_two[0])
        assert (refund.status, refund.amount_pence) == (Refund.Status.SUCCEEDED, 1500)
        refund_email = OutboundEmail.objects.get(template="preorder_refunded")
        assert refund_email.to_email == ALICE
        assert "You told us you are away that night." in refund_email.body_text

        # --- Week 3 (14 December): week 2's events copied ahead ------------------------------
        clock.move_to(london(2026, 12, 9, 12, 0))
        sign_in(manager, url)
        copy_week(
            manager,
            url,
            "2026-12-07",
            "14 December",
            "Copied 1 event to the week of 14 December, with empty pools.",
        )
        fill_pool(manager, url, "2026-12-14", "Soul Night", 5)

        clock.move_to(london(2026, 12, 14, 9, 0))
        soul = Event.objects.get(cycle__week_start="2026-12-14", title="Soul Night")
        assert soul.starts_at == london(2026, 12, 26, 20, 0)
        week_three = [pre_order_by_service(stripe_server, email, soul) for email in (ALICE, BOB)]
        sign_in(manager, url)
        run_the_week(manager, url, "2026-12-14", "Soul Night", week_three)
        manager.goto(f"{url}/staff/events/")
        screenshot(manager, "three-weeks-5-three-weeks-run")
        assert_week_settled("2026-12-14", {ALICE: Status.TICKET_SENT, BOB: Status.TICKET_SENT})

        # Across the three weeks: three summaries, one refund email, nothing still unsettled.
        assert OutboundEmail.objects.filter(template="run_summary").count() == 3
        assert OutboundEmail.objects.filter(template="preorder_refunded").count() == 1
        assert not OutboundEmail.objects.filter(template="run_summary").exclude(
            body_text__contains="Nothing is left unsettled."
        )
        laptop.close()
        phone.close()
