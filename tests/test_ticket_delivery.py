"""Getting a paid ticket to its member: one email with the QR code inline and a calendar entry,
"ticket sent" only once it is delivered, nothing lost in an email outage, the member's dashboard
showing the ticket all along, and the staff's resend tools (which never charge or assign again).
"""

import datetime as dt
import struct

import pytest
import segno
from django.contrib.messages import get_messages
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.backends.locmem import EmailBackend as LocmemBackend
from django.db.models import F
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from icalendar import Calendar

from notifications import tasks
from notifications.models import OutboundEmail
from payments import run_execution
from payments.models import ChargeAttempt
from preorders.models import PreOrder, PreOrderLogEntry
from preorders.states import Status
from tests.conftest import close_window
from tests.factories import stored_preorder
from tests.stripe_helpers import DECLINED_OFF_SESSION, SUCCEEDS
from tickets import delivery
from tickets.models import Ticket

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
QR_CID = "ticket-qr@harrys.club"


class FlakyProvider(BaseEmailBackend):
    """An email provider that is down for the next `failures` sends and then works again,
    delivering into django.core.mail.outbox like Django's locmem backend."""

    failures = 0

    def send_messages(self, email_messages):
        cls = type(self)
        if cls.failures > 0:
            cls.failures -= 1
            raise ConnectionRefusedError("provider is down")
        return LocmemBackend().send_messages(email_messages)


@pytest.fixture
def provider(settings, mailoutbox):
    settings.MAILERS = {"default": {"BACKEND": f"{__name__}.FlakyProvider"}}
    FlakyProvider.failures = 0
    yield FlakyProvider
    FlakyProvider.failures = 0


@pytest.fixture
def retries_inline():
    """Let the delivery task's retries run inline, one after another, as a worker would run
    them over time (the suite otherwise propagates a task's Retry to its caller)."""
    from config.celery import app

    app.conf.task_eager_propagates = False
    yield
    app.conf.task_eager_propagates = True


def ticket_messages(preorder: PreOrder) -> list:
    return [m for m in mail.outbox if m.subject == f"Your ticket: {preorder.event.title}"]


def charge(preorder: PreOrder) -> PreOrder:
    close_window(preorder.cycle_id)
    run_execution.run_charges(preorder.cycle_id, trigger="test", early=True)
    return PreOrder.objects.select_related("member", "event").get(pk=preorder.pk)


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_SIGNATURE
    length, kind = struct.unpack(">I4s", data[8:16])
    assert (length, kind) == (13, b"IHDR")
    return struct.unpack(">II", data[16:24])


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


# --- A paid pre-order gets its ticket ---------------------------------------------------------


@pytest.mark.stripe
@pytest.mark.django_db(transaction=True)
def test_a_paid_preorder_gets_one_ticket_email_with_qr_code_and_calendar_entry(
    provider, approved_preorder_factory
):
    preorder = charge(approved_preorder_factory(SUCCEEDS))

    ticket = Ticket.objects.get(preorder=preorder)
    member, event = preorder.member, preorder.event
    assert preorder.status == Status.TICKET_SENT

    row = OutboundEmail.objects.get(template="ticket")
    assert row.preorder_id == preorder.pk
    assert row.to_email == member.email
    assert row.status == OutboundEmail.Status.SENT
    assert row.subject == f"Your ticket: {event.title}"
    for text in (event.title, member.full_name, ticket.code, event.venue, "£22.50"):
        assert text in row.body_text
    assert f'src="cid:{QR_CID}"' in row.body_html
    assert ticket.code in row.body_html
    # A ticket carries no one-time secret: its copy is kept for resends and support.
    assert row.body_text != "" and row.body_html != ""

    # The QR code: a PNG of the ticket's code, shown inline where the HTML refers to it.
    attachments = {item.filename: item for item in row.attachments.all()}
    assert set(attachments) == {"ticket-qr.png", "event.ics"}
    png = bytes(attachments["ticket-qr.png"].content)
    assert attachments["ticket-qr.png"].mimetype == "image/png"
    assert attachments["ticket-qr.png"].content_id == QR_CID
    assert png == delivery.qr_png(ticket.code)
    symbol = segno.make_qr(ticket.code, error="m")
    assert png_size(png) == symbol.symbol_size(scale=8, border=4)
    assert attachments["event.ics"].mimetype == "text/calendar"
    assert attachments["event.ics"].content_id == ""

    # The calendar entry.
    calendar = Calendar.from_ical(bytes(attachments["event.ics"].content))
    (entry,) = calendar.walk("VEVENT")
    assert str(entry["SUMMARY"]) == event.title
    assert str(entry["LOCATION"]) == event.venue
    assert entry.decoded("DTSTART") == event.starts_at
    assert entry.decoded("DTEND") == event.starts_at + delivery.EVENT_LENGTH
    assert ticket.code in str(entry["DESCRIPTION"])
    assert member.full_name in str(entry["DESCRIPTION"])
    assert str(entry["UID"]) == f"ticket-{ticket.pk}@harrys.club"

    # Exactly one message went out, and it carries what the row holds.
    (sent,) = ticket_messages(preorder)
    assert sent.to == [member.email]
    assert ticket.code in sent.body
    html = dict((mimetype, content) for content, mimetype in sent.alternatives)["text/html"]
    assert f'src="cid:{QR_CID}"' in html
    parts = {part.get_filename(): part for part in sent.attachments}
    assert parts["ticket-qr.png"]["Content-ID"] == f"<{QR_CID}>"
    assert parts["ticket-qr.png"].get_content_disposition() == "inline"
    assert parts["ticket-qr.png"].get_content_type() == "image/png"
    assert parts["ticket-qr.png"].get_content() == png
    assert parts["event.ics"].get_content_disposition() == "attachment"
    assert parts["event.ics"].get_content_type() == "text/calendar"
    assert ticket.code in parts["event.ics"].get_content()

    # "Ticket sent" was recorded by the delivery, not by the charge.
    log = list(preorder.log_entries.values_list("to_status", "note"))
    assert (Status.TICKET_SENT, f"Ticket emailed to {member.email}") in log


@pytest.mark.stripe
@pytest.mark.django_db(transaction=True)
def test_a_declined_card_gets_the_try_public_drop_email_and_no_ticket(
    provider, approved_preorder_factory
):
    preorder = charge(approved_preorder_factory(DECLINED_OFF_SESSION))

    assert preorder.status == Status.FAILED
    assert not OutboundEmail.objects.filter(template="ticket").exists()
    row = OutboundEmail.objects.get(template="payment_failed")
    assert row.subject == f"Card declined – try public drop: {preorder.event.title}"
    assert row.to_email == preorder.member.email
    assert row.preorder_id == preorder.pk
    assert row.status == OutboundEmail.Status.SENT
    assert "Your bank declined the payment." in row.body_text
    assert "card_declined" not in row.body_text + row.body_html
    sent = [m for m in mail.outbox if m.subject.startswith("Card declined")]
    assert [m.to for m in sent] == [[preorder.member.email]]


# --- Email provider outage ------------------------------------------------------------------


@pytest.mark.stripe
@pytest.mark.django_db(transaction=True)
def test_an_email_outage_loses_no_ticket_and_the_sweep_delivers_it_later(
    provider, approved_preorder_factory, client, retries_inline
):
    preorder = approved_preorder_factory(SUCCEEDS)
    provider.failures = 1000  # down for the whole charge run and every retry
    preorder = charge(preorder)
    ticket = Ticket.objects.get(preorder=preorder)

    # Paid and ticketed; only the email is waiting.
    assert preorder.status == Status.PAID
    row = OutboundEmail.objects.get(template="ticket")
    assert row.status == OutboundEmail.Status.FAILED
    assert row.error == "ConnectionRefusedError: provider is down"
    assert row.attempts == tasks.MAX_TRIES + 1
    assert row.sent_at is None
    assert ticket_messages(preorder) == []
    assert not preorder.log_entries.filter(to_status=Status.TICKET_SENT).exists()
    assert ChargeAttempt.objects.get(preorder=preorder).status == ChargeAttempt.Status.SUCCEEDED

    # The member sees the ticket on the dashboard and the pre-order page meanwhile.
    client.force_login(preorder.member)
    for url in (reverse("preorders:dashboard"), reverse("preorders:detail", args=[preorder.pk])):
        page = client.get(url)
        assert page.status_code == 200
        assert 'data-testid="ticket"' in page.text
        assert ticket.code in page.text
        assert "<svg" in page.text
        assert f"<title>Ticket {ticket.code}</title>" in page.text
        assert "Paid – sending your ticket" in page.text

    # The provider comes back; the sweep leaves a failure alone for an hour (its own retries
    # may still be running), then sends it.
    provider.failures = 0
    assert tasks.sweep_unsent_emails() == 0
    OutboundEmail.objects.filter(pk=row.pk).update(
        created_at=F("created_at") - dt.timedelta(hours=2),
        claimed_at=F("claimed_at") - dt.timedelta(hours=2),
    )
    assert tasks.sweep_unsent_emails() == 1

    row.refresh_from_db()
    assert row.status == OutboundEmail.Status.SENT
    assert row.error == ""
    assert PreOrder.objects.get(pk=preorder.pk).status == Status.TICKET_SENT
    (sent,) = ticket_messages(preorder)
    assert sent.to == [preorder.member.email]
    assert ticket.code in sent.body
    assert {part.get_filename() for part in sent.attachments} == {"ticket-qr.png", "event.ics"}
    # Still the one ticket and the one charge.
    assert Ticket.objects.filter(preorder=preorder).count() == 1
    assert ChargeAttempt.objects.filter(preorder=preorder).count() == 1

    page = client.get(reverse("preorders:detail", args=[preorder.pk]))
    assert "Successful – Ticket Sent" in page.text
    assert ticket.code in page.text


@pytest.mark.stripe
@pytest.mark.django_db(transaction=True)
def test_a_short_outage_is_ridden_out_by_the_tasks_own_retries(
    provider, approved_preorder_factory, retries_inline
):
    preorder = approved_preorder_factory(SUCCEEDS)
    provider.failures = 2
    preorder = charge(preorder)

    assert preorder.status == Status.TICKET_SENT
    row = OutboundEmail.objects.get(template="ticket")
    assert (row.status, row.attempts, row.error) == (OutboundEmail.Status.SENT, 3, "")
    assert len(ticket_messages(preorder)) == 1


@pytest.mark.stripe
@pytest.mark.django_db(transaction=True)
def test_a_failed_ticket_email_is_delivered_by_a_later_retry(provider, approved_preorder_factory):
    preorder = approved_preorder_factory(SUCCEEDS)
    # The ticket task's own try and the first retry it hands on (inline here) both fail.
    provider.failures = 2
    preorder = charge(preorder)
    row = OutboundEmail.objects.get(template="ticket")
    assert (row.status, row.attempts) == (OutboundEmail.Status.FAILED, 2)
    assert preorder.status == Status.PAID

    tasks.deliver_email.apply(args=[row.pk])
    tasks.deliver_email.apply(args=[row.pk])  # a duplicate retry finds it sent

    row.refresh_from_db()
    assert (row.status, row.attempts) == (OutboundEmail.Status.SENT, 3)
    assert PreOrder.objects.get(pk=preorder.pk).status == Status.TICKET_SENT
    assert len(ticket_messages(preorder)) == 1


# --- Resending (staff) --------------------------------------------------------------------------


@pytest.mark.stripe
@pytest.mark.django_db(transaction=True)
def test_staff_resend_to_a_corrected_address_never_charges_or_assigns_again(
    provider, approved_preorder_factory, client, staff
):
    preorder = charge(approved_preorder_factory(SUCCEEDS))
    ticket = Ticket.objects.get(preorder=preorder)
    assigned = Ticket.objects.filter(preorder__isnull=False).count()
    mail.outbox.clear()
    client.force_login(staff)

    page = client.get(reverse("staff:preorder", args=[preorder.pk]))
    assert ticket.code in page.text
    assert reverse("staff:resend_ticket", args=[preorder.pk]) in page.text

    response = client.post(
        reverse("staff:resend_ticket", args=[preorder.pk]),
        {"to_email": "  alice.archer@example.org "},
    )

    assert response.status_code == 302
    assert response.url == reverse("staff:preorder", args=[preorder.pk])
    assert messages_of(response) == ["The ticket is on its way to alice.archer@example.org."]
    rows = list(OutboundEmail.objects.filter(template="ticket").order_by("created_at", "id"))
    assert [(r.to_email, r.status) for r in rows] == [
        (preorder.member.email, "sent"),
        ("alice.archer@example.org", "sent"),
    ]
    (sent,) = mail.outbox
    assert sent.to == ["alice.archer@example.org"]
    assert ticket.code in sent.body
    assert bytes(rows[1].attachments.get(filename="ticket-qr.png").content) == delivery.qr_png(
        ticket.code
    )
    # Same ticket, same charge, same state; the resend is on the record.
    assert ChargeAttempt.objects.filter(preorder=preorder).count() == 1
    assert Ticket.objects.get(preorder=preorder).pk == ticket.pk
    assert Ticket.objects.filter(preorder__isnull=False).count() == assigned
    assert PreOrder.objects.get(pk=preorder.pk).status == Status.TICKET_SENT
    entry = PreOrderLogEntry.objects.get(preorder=preorder, action="ticket_resent")
    assert entry.actor == staff
    assert entry.source == PreOrderLogEntry.Source.STAFF
    assert entry.note == "Ticket email resent to alice.archer@example.org"


@pytest.fixture
def event(make_event):
    return make_event(title="Late Night Swing", venue="The Cellar Bar")


@pytest.fixture
def paid_preorder(make_member, event):
    """A paid pre-order holding a ticket, made directly (the charge itself is tested above)."""
    counter = {"n": 0}

    def make(status: str = Status.PAID, for_event=None, with_ticket: bool = True) -> PreOrder:
        counter["n"] += 1
        n = counter["n"]
        target = for_event or event
        member = make_member()
        preorder = stored_preorder(member, target, status, amount_pence=2250)
        if with_ticket:
            Ticket.objects.create(
                event=target,
                code=f"HC-{target.pk}-{n:04d}",
                preorder=preorder,
                assigned_at=timezone.now(),
            )
        return preorder

    return make


def ticket_email(preorder: PreOrder, status: str, minutes_ago: int, **fields) -> OutboundEmail:
    when = timezone.now() - dt.timedelta(minutes=minutes_ago)
    return OutboundEmail.objects.create(
        to_email=fields.pop("to_email", preorder.member.email),
        template="ticket",
        subject=f"Your ticket: {preorder.event.title}",
        body_text="ticket",
        preorder=preorder,
        member=preorder.member,
        status=status,
        created_at=when,
        claimed_at=when,
        attempts=1,
        sent_at=when if status == OutboundEmail.Status.SENT else None,
        error="ConnectionRefusedError: provider is down" if status == "failed" else "",
        **fields,
    )


@pytest.fixture
def post_and_deliver(client, django_capture_on_commit_callbacks):
    def post(url: str, data: dict | None = None):
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(url, data or {})

    return post


@pytest.mark.django_db
def test_resend_without_an_address_goes_to_the_member_and_marks_a_paid_preorder_sent(
    provider, paid_preorder, client, staff, post_and_deliver
):
    preorder = paid_preorder(Status.PAID)
    ticket_email(preorder, "failed", minutes_ago=30)
    client.force_login(staff)

    response = post_and_deliver(
        reverse("staff:resend_ticket", args=[preorder.pk]), {"to_email": ""}
    )

    assert messages_of(response) == [f"The ticket is on its way to {preorder.member.email}."]
    latest = OutboundEmail.objects.filter(template="ticket").order_by("-id").first()
    assert (latest.to_email, latest.status) == (preorder.member.email, "sent")
    assert [m.to for m in mail.outbox] == [[preorder.member.email]]
    assert preorder.ticket.code in mail.outbox[0].body
    preorder.refresh_from_db()
    assert preorder.status == Status.TICKET_SENT
    assert preorder.log_entries.filter(action="ticket_resent").count() == 1


@pytest.mark.django_db
def test_resending_a_ticket_already_sent_keeps_its_state(
    provider, paid_preorder, client, staff, post_and_deliver
):
    preorder = paid_preorder(Status.TICKET_SENT)
    client.force_login(staff)

    post_and_deliver(reverse("staff:resend_ticket", args=[preorder.pk]))

    preorder.refresh_from_db()
    assert preorder.status == Status.TICKET_SENT
    assert len(mail.outbox) == 1
    entry = preorder.log_entries.get(action="ticket_resent")
    assert (entry.from_status, entry.to_status) == (Status.TICKET_SENT, Status.TICKET_SENT)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "address",
    [
        "not-an-address",
        "alice@",
        "alice@example.com, mallory@example.com",
        "alice@example.com\nBcc: mallory@example.com",
        # Valid in form, but longer than an address can be (254 characters): it must be refused
        # with the same message, not fail (PostgreSQL) or be stored cut off.
        "x" * 64 + "@" + ("d" * 60 + ".") * 4 + "com",
    ],
)
def test_an_invalid_address_is_refused_and_nothing_is_sent(
    provider, paid_preorder, client, staff, post_and_deliver, address
):
    preorder = paid_preorder(Status.TICKET_SENT)
    client.force_login(staff)

    response = post_and_deliver(
        reverse("staff:resend_ticket", args=[preorder.pk]), {"to_email": address}
    )

    assert response.status_code == 302
    assert response.url == reverse("staff:preorder", args=[preorder.pk])
    assert messages_of(response) == ["That is not a valid email address. Nothing was sent."]
    assert not OutboundEmail.objects.exists()
    assert mail.outbox == []
    assert not preorder.log_entries.filter(action="ticket_resent").exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("status", "with_ticket"),
    [
        (Status.PENDING, False),
        (Status.APPROVED, False),
        (Status.CHARGING, False),
        (Status.FAILED, False),
        (Status.REFUNDED, False),
        (Status.PAID, False),  # paid but no ticket (waiting for a refund): nothing to send
    ],
)
def test_a_preorder_without_a_paid_ticket_cannot_be_resent(
    provider, paid_preorder, client, staff, post_and_deliver, status, with_ticket
):
    preorder = paid_preorder(status, with_ticket=with_ticket)
    client.force_login(staff)

    response = post_and_deliver(reverse("staff:resend_ticket", args=[preorder.pk]))

    assert response.status_code == 302
    assert messages_of(response) == [
        "Only a paid pre-order with a ticket can have its ticket resent."
    ]
    assert not OutboundEmail.objects.exists()
    assert mail.outbox == []
    assert not Ticket.objects.filter(preorder=preorder).exists()
    assert not preorder.log_entries.exists()


@pytest.mark.django_db
def test_resend_of_a_missing_preorder_is_404(client, staff):
    client.force_login(staff)
    assert client.post(reverse("staff:resend_ticket", args=[999999])).status_code == 404
    assert client.post(reverse("staff:resend_failed_tickets", args=[999999])).status_code == 404


# --- Failed ticket emails of an event ---------------------------------------------------------


@pytest.mark.django_db
def test_bulk_resend_resends_only_the_tickets_whose_latest_email_failed(
    provider, paid_preorder, make_event, client, staff, post_and_deliver, event
):
    never_delivered = paid_preorder(Status.PAID)
    ticket_email(never_delivered, "failed", minutes_ago=120)
    failed_twice = paid_preorder(Status.PAID)
    ticket_email(failed_twice, "failed", minutes_ago=120)
    ticket_email(failed_twice, "failed", minutes_ago=90)
    recovered = paid_preorder(Status.TICKET_SENT)
    ticket_email(recovered, "failed", minutes_ago=120)
    ticket_email(recovered, "sent", minutes_ago=60)
    fine = paid_preorder(Status.TICKET_SENT)
    ticket_email(fine, "sent", minutes_ago=120)
    bounced_then_fine = paid_preorder(Status.TICKET_SENT)
    ticket_email(bounced_then_fine, "sent", minutes_ago=120)
    ticket_email(bounced_then_fine, "failed", minutes_ago=100)
    ticket_email(bounced_then_fine, "sent", minutes_ago=10)
    other_template = paid_preorder(Status.TICKET_SENT)
    ticket_email(other_template, "sent", minutes_ago=120)
    OutboundEmail.objects.create(
        to_email=other_template.member.email,
        template="preorder_updated",
        subject="x",
        body_text="x",
        preorder=other_template,
        status="failed",
    )
    elsewhere = paid_preorder(Status.PAID, for_event=make_event(title="Another Night"))
    ticket_email(elsewhere, "failed", minutes_ago=120)

    assert delivery.failed_ticket_email_count(event.pk) == 2
    client.force_login(staff)
    page = client.get(reverse("staff:event", args=[event.pk]))
    assert "2 ticket emails could not be delivered." in page.text
    assert reverse("staff:resend_failed_tickets", args=[event.pk]) in page.text
    before = OutboundEmail.objects.count()

    response = post_and_deliver(reverse("staff:resend_failed_tickets", args=[event.pk]))

    assert response.status_code == 302
    assert response.url == reverse("staff:event", args=[event.pk])
    assert messages_of(response) == ["Resending 2 ticket emails."]
    new = OutboundEmail.objects.order_by("id")[before:]
    assert sorted(row.preorder_id for row in new) == sorted([never_delivered.pk, failed_twice.pk])
    assert all(row.status == OutboundEmail.Status.SENT for row in new)
    assert sorted(m.to[0] for m in mail.outbox) == sorted(
        [never_delivered.member.email, failed_twice.member.email]
    )
    assert set(
        PreOrderLogEntry.objects.filter(action="ticket_resent").values_list("preorder", "actor")
    ) == {(never_delivered.pk, staff.pk), (failed_twice.pk, staff.pk)}
    for preorder in (never_delivered, failed_twice):
        assert PreOrder.objects.get(pk=preorder.pk).status == Status.TICKET_SENT
    assert delivery.failed_ticket_email_count(event.pk) == 0
    assert delivery.failed_ticket_email_count(elsewhere.event_id) == 1
    page = client.get(reverse("staff:event", args=[event.pk]))
    assert "could not be delivered" not in page.text


@pytest.mark.django_db
def test_a_bounce_reported_by_the_provider_shows_on_the_event_page(
    provider, paid_preorder, client, staff, event
):
    from anymail.signals import AnymailTrackingEvent, tracking

    preorder = paid_preorder(Status.TICKET_SENT)
    ticket_email(preorder, "sent", minutes_ago=30, provider_message_id="re_ticket_1")
    assert delivery.failed_ticket_email_count(event.pk) == 0

    tracking.send(
        sender=object,
        event=AnymailTrackingEvent(
            event_type="bounced", message_id="re_ticket_1", description="No such mailbox"
        ),
        esp_name="Resend",
    )

    assert delivery.failed_ticket_email_count(event.pk) == 1
    client.force_login(staff)
    assert (
        "1 ticket email could not be delivered."
        in client.get(reverse("staff:event", args=[event.pk])).text
    )
    detail = client.get(reverse("staff:preorder", args=[preorder.pk])).text
    assert "Resend reported bounced: No such mailbox" in detail
    # The ticket itself stands: the member still has it on their dashboard.
    assert PreOrder.objects.get(pk=preorder.pk).status == Status.TICKET_SENT


@pytest.mark.django_db
def test_bulk_resend_with_nothing_failed_sends_nothing(
    provider, paid_preorder, client, staff, post_and_deliver, event
):
    ticket_email(paid_preorder(Status.TICKET_SENT), "sent", minutes_ago=5)
    client.force_login(staff)

    response = post_and_deliver(reverse("staff:resend_failed_tickets", args=[event.pk]))

    assert messages_of(response) == ["Resending 0 ticket emails."]
    assert mail.outbox == []
    assert "could not be delivered" not in client.get(reverse("staff:event", args=[event.pk])).text


@pytest.mark.django_db
def test_a_ticket_email_replaced_by_a_resend_is_not_sent_later_by_the_sweep(
    provider, paid_preorder, client, staff, post_and_deliver
):
    """Staff resent a failed ticket to a corrected address: the old row must not go out to the
    wrong address an hour later (someone else would hold a working ticket)."""
    preorder = paid_preorder(Status.PAID)
    ticket_email(preorder, "failed", minutes_ago=120, to_email="alice@exmaple.com")
    client.force_login(staff)
    post_and_deliver(
        reverse("staff:resend_ticket", args=[preorder.pk]), {"to_email": preorder.member.email}
    )
    assert [m.to for m in mail.outbox] == [[preorder.member.email]]

    tasks.sweep_unsent_emails()

    assert [m.to for m in mail.outbox] == [[preorder.member.email]]


# --- Who may resend ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_members_cannot_resend_tickets(provider, paid_preorder, client, member, event):
    preorder = paid_preorder(Status.TICKET_SENT)
    ticket_email(preorder, "failed", minutes_ago=5)
    client.force_login(member)

    one = client.post(reverse("staff:resend_ticket", args=[preorder.pk]), {"to_email": "m@x.io"})
    bulk = client.post(reverse("staff:resend_failed_tickets", args=[event.pk]))

    assert (one.status_code, bulk.status_code) == (403, 403)
    assert OutboundEmail.objects.count() == 1
    assert not PreOrderLogEntry.objects.exists()


@pytest.mark.django_db
def test_anonymous_visitors_are_sent_to_log_in(provider, paid_preorder, client, event):
    preorder = paid_preorder(Status.TICKET_SENT)

    for url in (
        reverse("staff:resend_ticket", args=[preorder.pk]),
        reverse("staff:resend_failed_tickets", args=[event.pk]),
    ):
        response = client.post(url)
        assert response.status_code == 302
        assert response.url.startswith(reverse("members:login"))
    assert not OutboundEmail.objects.exists()


@pytest.mark.django_db
def test_resend_endpoints_only_take_post(provider, paid_preorder, client, staff, event):
    preorder = paid_preorder(Status.TICKET_SENT)
    client.force_login(staff)

    assert client.get(reverse("staff:resend_ticket", args=[preorder.pk])).status_code == 405
    assert client.get(reverse("staff:resend_failed_tickets", args=[event.pk])).status_code == 405
    assert not OutboundEmail.objects.exists()


@pytest.mark.django_db
def test_resend_requires_a_csrf_token(provider, paid_preorder, staff, event):
    preorder = paid_preorder(Status.TICKET_SENT)
    ticket_email(preorder, "failed", minutes_ago=5)
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff)

    one = client.post(reverse("staff:resend_ticket", args=[preorder.pk]), {"to_email": "x@y.io"})
    bulk = client.post(reverse("staff:resend_failed_tickets", args=[event.pk]))

    assert (one.status_code, bulk.status_code) == (403, 403)
    assert OutboundEmail.objects.count() == 1
    assert mail.outbox == []


# --- Marking "ticket sent" and the dashboard's QR code ---------------------------------------


@pytest.mark.django_db
def test_only_a_delivered_ticket_email_moves_a_paid_preorder_to_ticket_sent(
    provider, paid_preorder, django_capture_on_commit_callbacks
):
    from notifications import services

    preorder = paid_preorder(Status.PAID)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        row = delivery.queue_ticket_email(preorder, preorder.ticket)
    assert PreOrder.objects.get(pk=preorder.pk).status == Status.PAID  # queued is not sent

    provider.failures = 1
    services.deliver(row.pk)
    assert PreOrder.objects.get(pk=preorder.pk).status == Status.PAID  # failed is not sent

    for callback in callbacks:
        callback()
    assert PreOrder.objects.get(pk=preorder.pk).status == Status.TICKET_SENT
    entry = preorder.log_entries.get(to_status=Status.TICKET_SENT)
    assert (entry.from_status, entry.source, entry.actor) == (Status.PAID, "system", None)


@pytest.mark.django_db
def test_other_emails_about_a_paid_preorder_do_not_mark_it_sent(provider, paid_preorder):
    from notifications import services

    preorder = paid_preorder(Status.PAID)
    row = services.queue_email(
        to_email=preorder.member.email,
        template="staff_alert",
        context={"message": "hello"},
        preorder=preorder,
    )
    services.deliver(row.pk)

    assert OutboundEmail.objects.get(pk=row.pk).status == OutboundEmail.Status.SENT
    assert PreOrder.objects.get(pk=preorder.pk).status == Status.PAID


@pytest.mark.django_db
def test_the_member_sees_a_paid_ticket_with_its_qr_code_and_nobody_else_does(
    paid_preorder, client, make_member
):
    preorder = paid_preorder(Status.PAID)
    code = preorder.ticket.code
    url = reverse("preorders:detail", args=[preorder.pk])

    client.force_login(preorder.member)
    page = client.get(url).text
    assert code in page
    assert delivery.qr_svg(code) in page
    assert preorder.member.full_name in page

    client.force_login(make_member())
    other = client.get(url)
    assert other.status_code == 404
    assert code not in other.text


@pytest.mark.django_db
def test_no_ticket_is_shown_before_payment(paid_preorder, client):
    preorder = paid_preorder(Status.APPROVED, with_ticket=False)
    client.force_login(preorder.member)

    page = client.get(reverse("preorders:detail", args=[preorder.pk])).text

    assert 'data-testid="ticket"' not in page
    assert "<svg" not in page


def test_the_qr_svg_is_a_titled_inline_svg_that_escapes_the_code():
    svg = delivery.qr_svg("HC-ABC123")
    assert svg.startswith("<svg")
    assert "<title>Ticket HC-ABC123</title>" in svg
    assert "<script" not in delivery.qr_svg("<script>x</script>")
    assert "&lt;script&gt;" in delivery.qr_svg("<script>x</script>")


def test_the_qr_png_is_deterministic_and_differs_by_code():
    first = delivery.qr_png("HC-ABC123")
    assert first[:8] == PNG_SIGNATURE
    assert first == delivery.qr_png("HC-ABC123")
    assert first != delivery.qr_png("HC-ABC124")


@pytest.mark.stripe
@pytest.mark.django_db(transaction=True)
def test_the_ticket_task_sends_its_email_itself_in_one_trip(
    provider, approved_preorder_factory, monkeypatch
):
    """From payment to inbox is one task: the ticket email is not handed to the queue again
    (a second trip would wait behind everything queued meanwhile)."""
    handed_off = []
    monkeypatch.setattr(
        tasks.deliver_email._get_current_object(), "delay", lambda pk: handed_off.append(pk)
    )
    preorder = charge(approved_preorder_factory(SUCCEEDS))
    row = OutboundEmail.objects.get(template="ticket")
    assert (row.status, row.attempts) == (OutboundEmail.Status.SENT, 1)
    assert preorder.status == Status.TICKET_SENT
    assert row.pk not in handed_off
