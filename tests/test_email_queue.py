"""The email queue: every email is a row first, delivered after the caller's transaction commits,
retried with backoff through an outage, swept up if it was never sent, claimed under a lease so
it is never sent twice, redacted once sent if it held a one-time link, and marked failed when the
provider reports a bounce. Plus the staff email log."""

import datetime as dt
import threading
import time

import pytest
from anymail.signals import AnymailTrackingEvent, tracking
from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.backends.locmem import EmailBackend as LocmemBackend
from django.db import connection, transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from members import services as member_services
from notifications import services, tasks
from notifications.models import OutboundEmail

pytestmark = pytest.mark.django_db


class FlakyProvider(BaseEmailBackend):
    """An email provider that is down for the next `failures` sends and then works again,
    delivering into django.core.mail.outbox like Django's locmem backend."""

    failures = 0
    calls = 0

    def send_messages(self, email_messages):
        cls = type(self)
        cls.calls += 1
        if cls.failures > 0:
            cls.failures -= 1
            raise ConnectionRefusedError("provider is down")
        return LocmemBackend().send_messages(email_messages)


FLAKY_MAILER = {"default": {"BACKEND": f"{__name__}.FlakyProvider"}}


@pytest.fixture
def provider(settings, mailoutbox):
    settings.MAILERS = FLAKY_MAILER
    FlakyProvider.failures = 0
    FlakyProvider.calls = 0
    yield FlakyProvider
    FlakyProvider.failures = 0


def queued_email(**fields) -> OutboundEmail:
    fields.setdefault("to_email", "jane@example.com")
    fields.setdefault("template", "test")
    fields.setdefault("subject", "Hello")
    fields.setdefault("body_text", "Plain hello")
    fields.setdefault("body_html", "<p>HTML hello</p>")
    return OutboundEmail.objects.create(**fields)


def age(email: OutboundEmail, **fields: dt.timedelta) -> None:
    """Move a row's timestamps into the past, as if the clock had run on."""
    OutboundEmail.objects.filter(pk=email.pk).update(
        **{name: F(name) - delta for name, delta in fields.items()}
    )


def backoff(retries: int) -> int:
    return min(30 * 2**retries, 3600)


@pytest.fixture
def retries_inline():
    """Let a task's retries run inline, one after another, as a worker would run them over
    time (the suite otherwise propagates a task's Retry to its caller)."""
    from config.celery import app

    app.conf.task_eager_propagates = False
    yield
    app.conf.task_eager_propagates = True


@pytest.fixture
def countdowns(monkeypatch, retries_inline):
    """The countdown of every retry the delivery task asks Celery for."""
    task = tasks.deliver_email._get_current_object()
    original = task.retry
    asked: list[int] = []

    def retry(*args, **kwargs):
        asked.append(kwargs.get("countdown"))
        return original(*args, **kwargs)

    monkeypatch.setattr(task, "retry", retry)
    return asked


# --- Queueing ------------------------------------------------------------------------------


def test_a_queued_email_is_a_row_with_its_attachments_and_is_sent_after_commit(
    provider, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        email = services.queue_email(
            to_email="jane@example.com",
            template="staff_alert",
            context={"message": "The pool of Jazz Night is empty."},
            attachments=[
                services.Attachment("logo.png", b"\x89PNG\r\n\x1a\nfake", "image/png", "logo@x"),
                services.Attachment("notes.txt", b"hello", "text/plain"),
            ],
        )
    email.refresh_from_db()
    assert email.status == OutboundEmail.Status.QUEUED
    assert email.attempts == 0
    assert "The pool of Jazz Night is empty." in email.body_text
    stored = {item.filename: item for item in email.attachments.all()}
    assert bytes(stored["logo.png"].content) == b"\x89PNG\r\n\x1a\nfake"
    assert stored["logo.png"].content_id == "logo@x"
    assert stored["notes.txt"].content_id == ""
    assert mailoutbox == []

    for callback in callbacks:
        callback()

    email.refresh_from_db()
    assert (email.status, email.attempts) == (OutboundEmail.Status.SENT, 1)
    assert len(mailoutbox) == 1
    parts = {part.get_filename(): part for part in mailoutbox[0].attachments}
    assert parts["logo.png"]["Content-ID"] == "<logo@x>"
    assert parts["logo.png"].get_content_disposition() == "inline"
    assert parts["logo.png"].get_content() == b"\x89PNG\r\n\x1a\nfake"
    assert parts["notes.txt"]["Content-ID"] is None
    assert parts["notes.txt"].get_content_disposition() == "attachment"


def test_a_rolled_back_transaction_leaves_no_row_and_sends_nothing(
    provider, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            services.queue_email(
                to_email="jane@example.com", template="staff_alert", context={"message": "x"}
            )
            raise RuntimeError("the caller failed after queueing")

    assert callbacks == []
    assert not OutboundEmail.objects.exists()
    assert mailoutbox == []


def test_a_broker_outage_keeps_the_row_queued_and_the_sweep_sends_it_later(
    provider, mailoutbox, monkeypatch, django_capture_on_commit_callbacks
):
    def broker_down(*args, **kwargs):
        raise ConnectionRefusedError("redis is down")

    with monkeypatch.context() as patch:
        patch.setattr(tasks.deliver_email._get_current_object(), "delay", broker_down)
        with django_capture_on_commit_callbacks(execute=True):
            email = services.queue_email(
                to_email="jane@example.com", template="staff_alert", context={"message": "x"}
            )

    email.refresh_from_db()
    assert (email.status, email.attempts) == (OutboundEmail.Status.QUEUED, 0)
    assert mailoutbox == []
    # Young rows may still be on their way through the broker: left alone.
    assert tasks.sweep_unsent_emails() == 0

    age(email, created_at=dt.timedelta(minutes=6))
    assert tasks.sweep_unsent_emails() == 1

    email.refresh_from_db()
    assert (email.status, email.attempts) == (OutboundEmail.Status.SENT, 1)
    assert [message.to for message in mailoutbox] == [["jane@example.com"]]


# --- Failure, retries and backoff ----------------------------------------------------------


def test_a_send_failure_is_recorded_on_the_row_not_raised(provider, mailoutbox):
    provider.failures = 1
    email = queued_email()

    result = services.deliver(email.pk)

    email.refresh_from_db()
    assert result.status == email.status == OutboundEmail.Status.FAILED
    assert email.error == "ConnectionRefusedError: provider is down"
    assert email.attempts == 1
    assert email.sent_at is None
    assert email.claimed_at is not None
    assert mailoutbox == []


def test_the_task_retries_with_backoff_until_the_provider_is_back(provider, mailoutbox, countdowns):
    provider.failures = 3
    email = queued_email()

    tasks.deliver_email.apply(args=[email.pk])

    email.refresh_from_db()
    assert email.status == OutboundEmail.Status.SENT
    assert email.attempts == 4
    assert email.error == ""
    assert countdowns == [30, 60, 120]
    assert len(mailoutbox) == 1


def test_the_task_gives_up_after_its_retries_and_leaves_the_row_failed(
    provider, mailoutbox, countdowns
):
    provider.failures = 1000
    email = queued_email()

    tasks.deliver_email.apply(args=[email.pk])  # no exception: the failure is on the row

    email.refresh_from_db()
    assert email.status == OutboundEmail.Status.FAILED
    assert email.attempts == tasks.MAX_TRIES + 1
    assert "provider is down" in email.error
    assert countdowns == [backoff(n) for n in range(tasks.MAX_TRIES)]
    assert max(countdowns) == 3600
    assert mailoutbox == []


def test_after_an_outage_the_sweep_sends_a_failed_email_once_its_hour_has_passed(
    provider, mailoutbox, retries_inline
):
    provider.failures = 1000
    email = queued_email()
    tasks.deliver_email.apply(args=[email.pk])
    provider.failures = 0

    # Retried a moment ago: its own backoff is still running.
    assert tasks.sweep_unsent_emails() == 0
    assert mailoutbox == []

    age(email, created_at=dt.timedelta(hours=2), claimed_at=dt.timedelta(hours=2))
    assert tasks.sweep_unsent_emails() == 1

    email.refresh_from_db()
    assert email.status == OutboundEmail.Status.SENT
    assert email.attempts == tasks.MAX_TRIES + 2
    assert email.error == ""
    assert len(mailoutbox) == 1
    # Once sent, the sweep leaves it alone.
    age(email, claimed_at=dt.timedelta(hours=2))
    assert tasks.sweep_unsent_emails() == 0
    assert len(mailoutbox) == 1


def test_the_sweep_picks_exactly_the_rows_that_never_left(provider, mailoutbox):
    now = timezone.now()
    lost = queued_email(to_email="lost@example.com", created_at=now - dt.timedelta(minutes=10))
    in_flight = queued_email(to_email="young@example.com", created_at=now)
    too_old = queued_email(to_email="old@example.com", created_at=now - dt.timedelta(days=3))
    killed = queued_email(
        to_email="killed@example.com",
        status=OutboundEmail.Status.SENDING,
        created_at=now - dt.timedelta(minutes=30),
        claimed_at=now - dt.timedelta(minutes=30),
    )
    sending = queued_email(
        to_email="sending@example.com",
        status=OutboundEmail.Status.SENDING,
        created_at=now - dt.timedelta(minutes=30),
        claimed_at=now - dt.timedelta(minutes=1),
    )
    retrying = queued_email(
        to_email="retrying@example.com",
        status=OutboundEmail.Status.FAILED,
        created_at=now - dt.timedelta(minutes=30),
        claimed_at=now - dt.timedelta(minutes=5),
    )
    given_up = queued_email(
        to_email="given-up@example.com",
        status=OutboundEmail.Status.FAILED,
        created_at=now - dt.timedelta(hours=5),
        claimed_at=now - dt.timedelta(hours=2),
    )
    sent = queued_email(
        to_email="sent@example.com",
        status=OutboundEmail.Status.SENT,
        sent_at=now - dt.timedelta(hours=3),
        created_at=now - dt.timedelta(hours=3),
        claimed_at=now - dt.timedelta(hours=3),
    )

    tasks.sweep_unsent_emails()

    delivered = sorted(address for message in mailoutbox for address in message.to)
    assert delivered == ["given-up@example.com", "killed@example.com", "lost@example.com"]
    statuses = {
        email.to_email: OutboundEmail.objects.get(pk=email.pk).status
        for email in (lost, in_flight, too_old, killed, sending, retrying, given_up, sent)
    }
    assert statuses == {
        "lost@example.com": "sent",
        "young@example.com": "queued",
        "old@example.com": "queued",
        "killed@example.com": "sent",
        "sending@example.com": "sending",
        "retrying@example.com": "failed",
        "given-up@example.com": "sent",
        "sent@example.com": "sent",
    }


# --- The claim and its lease ----------------------------------------------------------------


def test_delivering_twice_sends_once(provider, mailoutbox):
    email = queued_email()

    services.deliver(email.pk)
    again = services.deliver(email.pk)

    assert again.status == OutboundEmail.Status.SENT
    assert OutboundEmail.objects.get(pk=email.pk).attempts == 1
    assert len(mailoutbox) == 1


class ReentrantProvider(BaseEmailBackend):
    """While it sends, a second worker (a retry, the sweep) tries to deliver the same row."""

    email_id: int | None = None
    seen_by_second: list[OutboundEmail] = []

    def send_messages(self, email_messages):
        type(self).seen_by_second.append(services.deliver(type(self).email_id))
        return LocmemBackend().send_messages(email_messages)


def test_a_second_delivery_while_the_first_is_sending_sends_nothing(settings, mailoutbox):
    settings.MAILERS = {"default": {"BACKEND": f"{__name__}.ReentrantProvider"}}
    email = queued_email()
    ReentrantProvider.email_id = email.pk
    ReentrantProvider.seen_by_second = []

    services.deliver(email.pk)

    assert [row.status for row in ReentrantProvider.seen_by_second] == ["sending"]
    email.refresh_from_db()
    assert (email.status, email.attempts) == (OutboundEmail.Status.SENT, 1)
    assert len(mailoutbox) == 1


def test_a_row_claimed_by_another_worker_is_left_to_it(provider, mailoutbox):
    claimed_at = timezone.now() - dt.timedelta(minutes=2)
    email = queued_email(status=OutboundEmail.Status.SENDING, claimed_at=claimed_at, attempts=1)

    result = services.deliver(email.pk)

    email.refresh_from_db()
    assert result.status == email.status == OutboundEmail.Status.SENDING
    assert (email.attempts, email.claimed_at) == (1, claimed_at)
    assert mailoutbox == []


def test_a_claim_older_than_the_lease_is_taken_over(provider, mailoutbox):
    stale = timezone.now() - services.SEND_LEASE - dt.timedelta(seconds=1)
    email = queued_email(status=OutboundEmail.Status.SENDING, claimed_at=stale, attempts=1)

    services.deliver(email.pk)

    email.refresh_from_db()
    assert (email.status, email.attempts) == (OutboundEmail.Status.SENT, 2)
    assert len(mailoutbox) == 1


class SlowProvider(BaseEmailBackend):
    def send_messages(self, email_messages):
        time.sleep(0.3)
        return LocmemBackend().send_messages(email_messages)


@pytest.mark.django_db(transaction=True)
def test_two_workers_delivering_one_row_at_once_send_one_message(settings, mailoutbox):
    settings.MAILERS = {"default": {"BACKEND": f"{__name__}.SlowProvider"}}
    email = queued_email()
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def worker():
        try:
            start.wait()
            services.deliver(email.pk)
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    email.refresh_from_db()
    assert (email.status, email.attempts) == (OutboundEmail.Status.SENT, 1)
    assert len(mailoutbox) == 1


# --- Secrets are not kept ---------------------------------------------------------------------


def test_an_invitation_is_redacted_once_sent(
    provider, staff, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        member_services.invite_members(["jane@example.com"], invited_by=staff)

    email = OutboundEmail.objects.get(template="invitation")
    assert email.status == OutboundEmail.Status.SENT
    assert email.body_text == services.REDACTED
    assert email.body_html == ""
    assert "/invite/" in mailoutbox[0].body  # the member got the link; the database did not keep it


def test_a_password_reset_keeps_its_link_until_it_is_actually_sent(provider, member, mailoutbox):
    provider.failures = 1
    email = services.queue_email(
        to_email=member.email,
        template="password_reset",
        context={"email": member.email, "uid": "MQ", "token": "tok-123"},
        member=member,
    )

    services.deliver(email.pk)
    email.refresh_from_db()
    assert email.status == OutboundEmail.Status.FAILED
    assert "/password-reset/MQ/tok-123/" in email.body_text  # still needed for the retry

    services.deliver(email.pk)
    email.refresh_from_db()
    assert email.status == OutboundEmail.Status.SENT
    assert email.body_text == services.REDACTED
    assert email.body_html == ""
    assert "/password-reset/MQ/tok-123/" in mailoutbox[0].body


def test_other_emails_keep_their_text_after_sending(provider, mailoutbox):
    email = services.queue_email(
        to_email="jane@example.com", template="staff_alert", context={"message": "Keep me."}
    )
    services.deliver(email.pk)

    email.refresh_from_db()
    assert email.status == OutboundEmail.Status.SENT
    assert "Keep me." in email.body_text
    assert email.body_html
    assert services.SECRET_TEMPLATES == {"invitation", "password_reset", "email_change_confirm"}


# --- Delivery reports from the provider ----------------------------------------------------


def sent_email(message_id: str, **fields) -> OutboundEmail:
    now = timezone.now()
    return queued_email(
        status=OutboundEmail.Status.SENT,
        sent_at=now,
        claimed_at=now,
        attempts=1,
        provider_message_id=message_id,
        **fields,
    )


def report(event_type: str, message_id: str | None, **fields) -> None:
    tracking.send(
        sender=object,
        event=AnymailTrackingEvent(event_type=event_type, message_id=message_id, **fields),
        esp_name="Resend",
    )


def test_a_bounce_marks_the_email_failed_with_the_reason():
    email = sent_email("re_msg_1")
    other = sent_email("re_msg_2")

    report("bounced", "re_msg_1", description="Mailbox does not exist")

    email.refresh_from_db()
    assert email.status == OutboundEmail.Status.FAILED
    assert email.error == "Resend reported bounced: Mailbox does not exist"
    assert OutboundEmail.objects.get(pk=other.pk).status == OutboundEmail.Status.SENT


def test_a_rejection_without_description_uses_the_mta_response():
    email = sent_email("re_msg_3")

    report("rejected", "re_msg_3", mta_response="550 5.1.1 user unknown")

    email.refresh_from_db()
    assert email.status == OutboundEmail.Status.FAILED
    assert email.error == "Resend reported rejected: 550 5.1.1 user unknown"


def test_resends_own_failed_event_marks_the_email_failed():
    email = sent_email("re_msg_4")

    report("unknown", "re_msg_4", esp_event={"type": "email.failed", "data": {}})

    email.refresh_from_db()
    assert email.status == OutboundEmail.Status.FAILED
    assert email.error == "Resend reported failed: failed"


@pytest.mark.parametrize(
    ("event_type", "esp_event"),
    [
        ("delivered", {"type": "email.delivered"}),
        ("opened", {"type": "email.opened"}),
        ("unknown", {"type": "email.something_new"}),
        ("unknown", None),
    ],
)
def test_other_reports_change_nothing(event_type, esp_event):
    email = sent_email("re_msg_5")

    report(event_type, "re_msg_5", esp_event=esp_event)

    email.refresh_from_db()
    assert (email.status, email.error) == (OutboundEmail.Status.SENT, "")


def test_a_bounce_for_an_unknown_or_missing_message_id_changes_nothing():
    email = sent_email("re_msg_6")
    blank = sent_email("")

    report("bounced", "re_someone_elses", description="gone")
    report("bounced", None, description="gone")
    report("bounced", "", description="gone")

    assert OutboundEmail.objects.get(pk=email.pk).status == OutboundEmail.Status.SENT
    assert OutboundEmail.objects.get(pk=blank.pk).status == OutboundEmail.Status.SENT


def test_a_bounced_email_is_not_sent_again_by_the_sweep(provider, mailoutbox):
    """A bounce means the address does not take mail: sending the same message to it again
    every hour only hurts the sender's reputation. Staff resend it, to a corrected address."""
    email = sent_email("re_msg_7", to_email="typo@exmaple.com")
    report("bounced", "re_msg_7", description="Mailbox does not exist")
    age(email, created_at=dt.timedelta(hours=2), claimed_at=dt.timedelta(hours=2))

    tasks.sweep_unsent_emails()

    assert mailoutbox == []
    assert OutboundEmail.objects.get(pk=email.pk).status == OutboundEmail.Status.FAILED


def test_the_provider_message_id_is_kept_when_the_backend_reports_one(settings, mailoutbox):
    settings.MAILERS = {"default": {"BACKEND": f"{__name__}.ProviderWithIds"}}
    email = queued_email()

    services.deliver(email.pk)

    email.refresh_from_db()
    assert email.provider_message_id == "re_from_provider"
    report("bounced", "re_from_provider", description="Mailbox full")
    assert OutboundEmail.objects.get(pk=email.pk).status == OutboundEmail.Status.FAILED


class ProviderWithIds(BaseEmailBackend):
    """Sets anymail_status on each message as anymail's backends do."""

    def send_messages(self, email_messages):
        from anymail.message import AnymailStatus

        for message in email_messages:
            status = AnymailStatus()
            status.set_recipient_status({})
            status.message_id = "re_from_provider"
            message.anymail_status = status
        return LocmemBackend().send_messages(email_messages)


# --- The staff email log -----------------------------------------------------------------------


def test_staff_see_every_email_and_can_filter_by_status(client, staff):
    sent = sent_email("re_log_1", to_email="sent@example.com", subject="A sent one")
    failed = queued_email(
        to_email="failed@example.com",
        subject="A failed one",
        status=OutboundEmail.Status.FAILED,
        attempts=3,
        error="ConnectionRefusedError: provider is down",
    )
    client.force_login(staff)
    url = reverse("notifications:email_log")

    everything = client.get(url)
    assert everything.status_code == 200
    assert {row.pk for row in everything.context["page"]} == {sent.pk, failed.pk}
    assert "A sent one" in everything.text
    assert "A failed one" in everything.text
    assert "provider is down" in everything.text

    only_failed = client.get(url, {"status": "failed"})
    assert [row.pk for row in only_failed.context["page"]] == [failed.pk]
    assert "A sent one" not in only_failed.text
    assert "failed@example.com" in only_failed.text

    only_sent = client.get(url, {"status": "sent"})
    assert [row.pk for row in only_sent.context["page"]] == [sent.pk]

    # An unknown filter value shows everything rather than failing.
    unknown = client.get(url, {"status": "nonsense"})
    assert unknown.status_code == 200
    assert len(unknown.context["page"]) == 2


def test_the_email_log_links_an_email_to_its_preorder(client, staff, make_member, make_event):
    from preorders.models import PreOrder

    event = make_event()
    someone = make_member()
    preorder = PreOrder.objects.create(
        member=someone,
        event=event,
        cycle=event.cycle,
        amount_pence=2250,
        stripe_customer_id="cus_log",
        payment_method_id="pm_log",
        setup_intent_id="seti_log",
    )
    queued_email(preorder=preorder, subject="About a pre-order")
    client.force_login(staff)

    page = client.get(reverse("notifications:email_log"))

    assert reverse("staff:preorder", args=[preorder.pk]) in page.text


def test_members_cannot_see_the_email_log(client, member):
    queued_email(subject="Private")
    client.force_login(member)

    response = client.get(reverse("notifications:email_log"))

    assert response.status_code == 403
    assert "Private" not in response.text


def test_anonymous_visitors_are_sent_to_log_in_for_the_email_log(client):
    response = client.get(reverse("notifications:email_log"))

    assert response.status_code == 302
    assert response.url.startswith(reverse("members:login"))
