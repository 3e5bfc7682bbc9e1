"""What the member reads is true: no ticket promised before the payment, this week's cancelled
pre-order not called an earlier one, the pre-ordered event marked, the charge line and calendar
entry of a ticket (its owner's only), and the club's address at the end of every email."""

import datetime as dt
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import time_machine
from django.conf import settings
from django.core import mail
from django.test import Client, TestCase
from django.urls import reverse

from notifications.models import OutboundEmail
from notifications.services import queue_email, render_email
from payments import gateway
from payments.models import ChargeAttempt
from payments.settlement import settle
from preorders.models import PreOrder
from preorders.states import Status
from tests.conftest import _add_tickets

pytestmark = [pytest.mark.django_db]


def _preorder(member, event, status=Status.PENDING, **fields) -> PreOrder:
    return PreOrder.objects.create(
        member=member,
        event=event,
        cycle=event.cycle,
        status=status,
        amount_pence=2250,
        stripe_customer_id="cus_w",
        payment_method_id=f"pm_{member.pk}_{status}",
        card_brand="visa",
        card_last4="4242",
        **fields,
    )


def _client(member) -> Client:
    client = Client()
    client.force_login(member)
    return client


def test_approved_says_what_will_happen_not_that_the_ticket_is_confirmed(member, make_event):
    preorder = _preorder(member, make_event(), Status.APPROVED)
    html = _client(member).get(reverse("preorders:detail", args=[preorder.pk])).content.decode()
    assert "confirmed" not in html.lower()
    assert "We'll charge your card at 7PM Tuesday" in html
    assert "once the payment has gone through" in html
    for template in ("preorder_placed", "preorder_updated"):
        context = {"member": member, "preorder": preorder, "event": preorder.event}
        subject, text, email_html = render_email(template, context | {"cycle": preorder.cycle})
        assert "confirmed" not in (subject + text + email_html).lower()
        assert "if the club approves your pre-order" in text


def test_this_weeks_cancelled_preorder_is_not_an_earlier_one(member, make_event):
    jazz, comedy = make_event(title="Jazz night"), make_event(title="Comedy late")
    _preorder(member, jazz, Status.CANCELLED)
    html = _client(member).get(reverse("preorders:dashboard")).content.decode()
    assert "Earlier" not in html
    assert "You cancelled your pre-order of" in html
    assert html.count('aria-label="Pre-order ') == 2  # both can be pre-ordered again

    _preorder(member, comedy, Status.PENDING)
    html = _client(member).get(reverse("preorders:dashboard")).content.decode()
    marked = re.findall(
        r'<p class="event-title">([^<]+)</p>(?:(?!event-title).)*?pre-ordered', html, re.S
    )
    assert marked == ["Comedy late"]
    assert 'aria-label="Pre-order ' not in html


def test_last_weeks_preorders_are_under_earlier_weeks(member, make_event, open_cycle):
    from events.selectors import cycle_for_week

    last_week = cycle_for_week(open_cycle.week_start - dt.timedelta(weeks=3))
    _preorder(member, make_event(cycle=last_week, title="Old gig"), Status.CANCELLED)
    html = _client(member).get(reverse("preorders:dashboard")).content.decode()
    assert "Earlier weeks" in html and "Old gig" in html


def _paid_with_ticket(member, event) -> PreOrder:
    _add_tickets(event, 1)
    preorder = _preorder(member, event, Status.CHARGING)
    attempt = ChargeAttempt.objects.create(
        preorder=preorder, idempotency_key=f"paid-{preorder.pk}", amount_pence=2250
    )
    # The ticket email is handed to a worker (inline here) when the payment's transaction
    # commits; so is its delivery.
    with TestCase.captureOnCommitCallbacks(execute=True):
        _settle_paid(attempt, preorder)
    return PreOrder.objects.get(pk=preorder.pk)


def _settle_paid(attempt, preorder) -> None:
    settle(attempt.pk, gateway.ChargeOutcome("succeeded", f"pi_paid{preorder.pk}"), source="stripe")


def test_the_ticket_says_what_was_charged_when_and_to_which_card(member, make_event):
    event = make_event()
    # Tuesday 8 December 2026, 19:00 London.
    with time_machine.travel(dt.datetime(2026, 12, 8, 19, 0, 5, tzinfo=dt.UTC), tick=False):
        preorder = _paid_with_ticket(member, event)
    assert preorder.status == Status.TICKET_SENT
    email = OutboundEmail.objects.get(preorder=preorder, template="ticket")
    line = "Charged: £22.50 on Tue 8 Dec to your Visa •••• 4242"
    assert line in email.body_text
    assert "£22.50</strong> on Tue 8 Dec to your Visa •••• 4242" in email.body_html
    html = _client(member).get(reverse("preorders:dashboard")).content.decode()
    assert "Charged £22.50 on Tue 8 Dec to your Visa •••• 4242" in html
    assert reverse("preorders:calendar", args=[preorder.pk]) in html


def test_the_calendar_entry_is_served_to_its_owner_only(
    member, make_member, make_event, open_cycle
):
    from events.selectors import cycle_for_week

    preorder = _paid_with_ticket(member, make_event(title="Jazz night"))
    url = reverse("preorders:calendar", args=[preorder.pk])
    response = _client(member).get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/calendar"
    email = OutboundEmail.objects.get(preorder=preorder, template="ticket")
    attached = email.attachments.get(filename="event.ics").content
    body = response.content.decode()
    assert "SUMMARY:Jazz night" in body and preorder.ticket.code in body
    # The same entry as the email's (only its creation stamp differs).
    strip = lambda ics: re.sub(r"DTSTAMP:\S+", "", bytes(ics).decode())  # noqa: E731
    assert strip(response.content) == strip(attached)

    assert _client(make_member()).get(url).status_code == 404
    assert Client().get(url).status_code == 302
    next_week = cycle_for_week(open_cycle.week_start + dt.timedelta(weeks=1))
    pending = _preorder(member, make_event(cycle=next_week), Status.PENDING)
    assert _client(member).get(reverse("preorders:calendar", args=[pending.pk])).status_code == 404


# Every email the product can send: each has a subject template in templates/emails/.
EMAIL_TEMPLATES = sorted(
    path.name.removesuffix("_subject.txt")
    for path in (Path(settings.BASE_DIR) / "templates" / "emails").glob("*_subject.txt")
)


@pytest.mark.parametrize("template", EMAIL_TEMPLATES)
def test_every_email_ends_with_the_club_address_and_replies_go_there(
    template, member, make_event, settings
):
    assert len(EMAIL_TEMPLATES) >= 11
    settings.CLUB_CONTACT_EMAIL = "hello@club.example"
    event = make_event()
    preorder = _preorder(member, event)
    context = {
        "member": member,
        "event": event,
        "preorder": preorder,
        "cycle": event.cycle,
        "invited_by": member,
        "invitation": type("I", (), {"expires_at": event.starts_at})(),
        "accept_url": "http://x/invite/t/",
        "message": "Alert",
        "ticket": type("T", (), {"code": "T-1"})(),
        "qr_content_id": "qr",
        "uid": "MQ",
        "token": "set-password",
        "email": member.email,
        "confirm_url": "http://x/account/email/t/",
        "new_email": "new@example.com",
        "old_email": member.email,
        "refund": SimpleNamespace(amount_pence=2250, reason="The event was cancelled"),
        "summary": SimpleNamespace(
            cycle=event.cycle, attempted=1, paid=1, failed=0, taken_pence=2250,
            refunded_pence=0, not_allocated=0, failures=[], events=[], unsettled=[],
        ),
    }  # fmt: skip
    _, text, html = render_email(template, context)
    assert text.rstrip().endswith("Questions? Write to hello@club.example or reply to this email.")
    assert 'href="mailto:hello@club.example"' in html
    mail.outbox.clear()
    with TestCase.captureOnCommitCallbacks(execute=True):
        queue_email(to_email="m@example.com", template=template, context=context)
    sent = [m for m in mail.outbox if m.to == ["m@example.com"]]
    assert sent and sent[0].reply_to == ["hello@club.example"]


def test_the_not_allocated_email_points_to_the_public_sale(member, make_event):
    event = make_event(
        title="Jazz night",
        public_sale_url="https://tickets.example.com/jazz",
        public_sale_at=dt.datetime(2026, 12, 11, 10, tzinfo=dt.UTC),
    )
    preorder = _preorder(member, event, Status.DENIED)
    _, text, html = render_email(
        "not_allocated", {"member": member, "event": event, "preorder": preorder}
    )
    for part in (text, html):
        assert "No charge was made" in part
        assert "https://tickets.example.com/jazz" in part
        assert "10AM Friday 11 December" in part
    bare = make_event(title="Comedy")
    _, text, _ = render_email("not_allocated", {"member": member, "event": bare})
    assert "Tickets may still be available when they go on public sale." in text


def test_a_public_sale_already_under_way_is_told_in_the_past_tense(member, make_event):
    sale_at = dt.datetime(2026, 12, 9, 10, tzinfo=dt.UTC)
    event = make_event(
        title="Jazz night",
        public_sale_url="https://tickets.example.com/jazz",
        public_sale_at=sale_at,
    )
    preorder = _preorder(member, event, Status.NOT_ALLOCATED)
    context = {"member": member, "event": event, "preorder": preorder}
    with time_machine.travel(sale_at - dt.timedelta(minutes=1), tick=False):
        _, text, html = render_email("not_allocated", context)
        assert "go on public sale at 10AM Wednesday 9 December" in text
        assert "Jazz night go on public sale at" in html
    # The waitlist's cut-off is the public sale: its "not allocated" email goes out then.
    with time_machine.travel(sale_at, tick=False):
        _, text, html = render_email("not_allocated", context)
        page = _client(member).get(reverse("preorders:detail", args=[preorder.pk]))
        for part in (text, html, page.content.decode()):
            assert "went on public sale at" in part
            assert "go on public sale" not in part
