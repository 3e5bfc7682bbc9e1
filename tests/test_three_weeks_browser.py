"""Issue 8's acceptance test: starting from the demo data, a manager runs three consecutive weeks
entirely from the staff pages, in a real browser at laptop size, each week's run on time so that
no missed-run banner ever shows. Week 1 is the demo week itself (23 November): members pre-order,
pre-orders close at midnight Sunday, the manager approves on Monday and starts the run at 7PM
Tuesday. Meanwhile the next weeks are prepared ahead: week 2 by copying the demo week's events,
week 3 with a new event created on the staff pages; each pool is filled there. Week 2 ends with a
refund from the staff pre-order page; in week 3 the manager closes pre-orders early and starts
the run at once, and one card is declined. After each run the manager reads the run summary in
the outbox. The clock moves with time-machine, which the live server's thread shares.
Screenshots in test-artifacts/."""

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
from operations.models import MissedRunAlert
from payments.models import Refund
from preorders.models import PreOrder
from preorders.services import place_preorder
from preorders.states import Status
from tests.browser import fill_card, log_in
from tests.conftest import screenshot
from tests.stripe_helpers import DECLINED_OFF_SESSION, SUCCEEDS, new_confirmed_setup_intent

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
    page.get_by_text(copied).wait_for()


def sign_in(page, url: str) -> None:
    """The manager signs in afresh each time they come back: a session lasts two weeks
    (Django's default), shorter than the three weeks this test covers."""
    page.context.clear_cookies()
    log_in(page, url, STAFF_EMAIL, STAFF_PASSWORD, lands_on="/staff/events/")


def pre_order_by_service(
    stripe_url: str, email: str, event: Event, *, card: str = SUCCEEDS
) -> PreOrder:
    """What the member's phone does, without the browser: a new card, then the pre-order."""
    member = Member.objects.get(email=email)
    return place_preorder(member, event.pk, new_confirmed_setup_intent(stripe_url, member, card))


def approve_all(page, url: str, week: str, title: str, count: int) -> None:
    """Review: select every pre-order of `title` and approve them, through the confirmation."""
    week_section(page, url, week).get_by_role("link", name=title, exact=True).click()
    page.get_by_label(f"Select all {count} matching the filter").check()
    page.get_by_role("button", name="Approve selected…").click()
    page.get_by_role("button", name=f"Yes, approve {count}").click()
    page.get_by_text(f"Approved {count}.").wait_for()


def start_run(page, url: str, week: str, preorders: list[PreOrder], *, paid: int) -> None:
    """The charge-run page: the preview matches the approved pre-orders; the report after the
    run shows `paid` cards paid."""
    count = len(preorders)
    week_section(page, url, week).get_by_role("link", name="Charge run").click()
    total = format_pence(sum(preorder.amount_pence for preorder in preorders))
    assert page.get_by_test_id("preview-count").inner_text() == str(count)
    assert page.get_by_test_id("preview-total").inner_text() == total
    page.get_by_label(re.compile(f"Charge {count} card")).check()
    page.get_by_role("button", name="Start the charge run").click()
    assert page.get_by_test_id("report-paid").inner_text() == str(paid)
    assert page.get_by_test_id("report-attempted").inner_text() == str(count)


def read_summary(page, url: str, subject: str) -> str:
    """The manager opens the run summary from the outbox (the demo's email) and reads it."""
    page.goto(f"{url}/staff/outbox/")
    page.get_by_role("link", name=subject).first.click()
    return page.get_by_test_id("email-text").inner_text()


def assert_no_missed_run_banner(page) -> None:
    assert page.get_by_test_id("missed-run-banner").count() == 0
    assert not MissedRunAlert.objects.exists()


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
        seed_demo()  # ./bin/demo's data: this week (of 23 November), three events, two codes each
        assert manager_emails() == [STAFF_EMAIL]
        url = live_server.url
        laptop = browser.new_context(viewport={"width": 1280, "height": 900})
        phone = browser.new_context(viewport={"width": 390, "height": 844})
        for context in (laptop, phone):
            context.set_default_timeout(20_000)
        manager, member_page = laptop.new_page(), phone.new_page()

        # --- Wednesday of week 1: members pre-order; week 2 prepared by copying week 1 -------
        log_in(member_page, url, ALICE, MEMBER_PASSWORD)
        member_page.get_by_role("link", name="Pre-order Jazz in the Cellar").click()
        fill_card(member_page)
        member_page.get_by_role("button", name="Pre-order – no charge now").click()
        member_page.wait_for_url(re.compile(r"/pre-orders/\d+/$"))
        screenshot(member_page, "three-weeks-1-alice-pre-ordered")
        demo_jazz = Event.objects.get(cycle__week_start="2026-11-23", title="Jazz in the Cellar")
        week_one = [
            PreOrder.objects.get(member__email=ALICE, event=demo_jazz),
            pre_order_by_service(stripe_server, BOB, demo_jazz),
        ]

        sign_in(manager, url)
        copy_week(
            manager,
            url,
            "2026-11-23",
            "30 November",
            "Copied 3 events to the week of 30 November, with empty pools.",
        )
        fill_pool(manager, url, "2026-11-30", "Jazz in the Cellar", 2)
        screenshot(manager, "three-weeks-2-week-two-prepared")

        # --- Monday: week 1 closed at midnight; the manager reviews. Week 2 is open. ----------
        clock.move_to(london(2026, 11, 30, 10, 0))
        sign_in(manager, url)
        approve_all(manager, url, "2026-11-23", "Jazz in the Cellar", 2)
        jazz = Event.objects.get(cycle__week_start="2026-11-30", title="Jazz in the Cellar")
        week_two = [pre_order_by_service(stripe_server, email, jazz) for email in (ALICE, BOB)]

        # --- 7PM Tuesday: week 1's run, started on the charge-run page; its summary -----------
        clock.move_to(london(2026, 12, 1, 19, 1))
        sign_in(manager, url)
        start_run(manager, url, "2026-11-23", week_one, paid=2)
        assert_no_missed_run_banner(manager)
        screenshot(manager, "three-weeks-3-week-one-run")
        assert_week_settled("2026-11-23", {ALICE: Status.TICKET_SENT, BOB: Status.TICKET_SENT})
        summary = read_summary(manager, url, "Charge run settled: 2 paid, 0 failed, £45 taken")
        assert "The charge run for the week of 23 November 2026 has settled." in summary
        assert "Jazz in the Cellar: 2 paid, 0 tickets left" in summary
        screenshot(manager, "three-weeks-4-week-one-summary")

        # --- Wednesday: week 3 prepared with a new event, its pool filled ---------------------
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
        manager.get_by_text("Soul Night is ready. Now fill its ticket pool.").wait_for()
        fill_pool(manager, url, "2026-12-07", "Soul Night", 5)

        # --- Monday: week 2 reviewed; week 3 open (Bob's new card will be declined) -----------
        clock.move_to(london(2026, 12, 7, 10, 0))
        sign_in(manager, url)
        approve_all(manager, url, "2026-11-30", "Jazz in the Cellar", 2)
        soul = Event.objects.get(cycle__week_start="2026-12-07", title="Soul Night")
        week_three = [
            pre_order_by_service(stripe_server, ALICE, soul),
            pre_order_by_service(stripe_server, BOB, soul, card=DECLINED_OFF_SESSION),
        ]
        assert [p.amount_pence for p in week_three] == [1500, 1500]

        # --- 7PM Tuesday: week 2's run; then Alice cannot come and is refunded ----------------
        clock.move_to(london(2026, 12, 8, 19, 1))
        sign_in(manager, url)
        start_run(manager, url, "2026-11-30", week_two, paid=2)
        assert_no_missed_run_banner(manager)
        week_section(manager, url, "2026-11-30").get_by_role(
            "link", name="Jazz in the Cellar", exact=True
        ).click()
        manager.get_by_role("link", name="Alice Archer").click()
        refund_form = manager.get_by_test_id("refund-form")
        refund_form.locator("summary").click()
        manager.get_by_label("Reason (the member reads it in their email)").fill(
            "You told us you are away that night."
        )
        manager.get_by_label("Refund £22.50 in full and void the ticket").check()
        refund_form.get_by_role("button", name="Refund £22.50").click()
        assert manager.get_by_text(
            "Refunded £22.50 to Alice Archer; their ticket is void and they have been emailed."
        ).is_visible()
        assert "You told us you are away that night." in (
            manager.get_by_test_id("refund-record").inner_text()
        )
        screenshot(manager, "three-weeks-5-week-two-refund")
        assert_week_settled("2026-11-30", {ALICE: Status.REFUNDED, BOB: Status.TICKET_SENT})
        refund = Refund.objects.get(preorder=week_two[0])
        assert (refund.status, refund.amount_pence) == (Refund.Status.SUCCEEDED, 2250)
        refund_email = OutboundEmail.objects.get(template="preorder_refunded")
        assert refund_email.to_email == ALICE
        assert "You told us you are away that night." in refund_email.body_text

        # --- Thursday: week 3 closed early, reviewed and run at once; Bob's card declined -----
        clock.move_to(london(2026, 12, 10, 12, 0))
        sign_in(manager, url)
        manager.once("dialog", lambda dialog: dialog.accept())
        week_section(manager, url, "2026-12-07").get_by_role(
            "button", name="Close pre-orders now"
        ).click()
        manager.get_by_text("Pre-orders are closed").wait_for()
        approve_all(manager, url, "2026-12-07", "Soul Night", 2)
        start_run(manager, url, "2026-12-07", week_three, paid=1)
        assert manager.get_by_test_id("report-failed").inner_text() == "1"
        assert_week_settled("2026-12-07", {ALICE: Status.TICKET_SENT, BOB: Status.FAILED})
        summary = read_summary(manager, url, "Charge run settled: 1 paid, 1 failed, £15 taken")
        assert "Card declined by the bank (1): Bob Baker" in summary
        assert "Soul Night: 1 paid, 4 tickets left" in summary
        screenshot(manager, "three-weeks-6-week-three-summary")
        manager.goto(f"{url}/staff/events/")
        assert_no_missed_run_banner(manager)
        screenshot(manager, "three-weeks-7-three-weeks-run")

        # Across the three weeks: three summaries, one refund email, nothing still unsettled.
        assert OutboundEmail.objects.filter(template="run_summary").count() == 3
        assert OutboundEmail.objects.filter(template="preorder_refunded").count() == 1
        assert not OutboundEmail.objects.filter(template="run_summary").exclude(
            body_text__contains="Nothing is left unsettled."
        )
        laptop.close()
        phone.close()
