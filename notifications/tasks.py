"""Background delivery of emails: thin tasks over notifications.services."""

import datetime as dt

from celery import shared_task
from django.utils import timezone

from notifications import services
from notifications.models import OutboundEmail

# Backoff between tries of one email: 30 s, 1 min, 2 min, … up to an hour: about six hours in
# all; the sweep goes on trying for two days.
MAX_TRIES = 12


@shared_task(bind=True, max_retries=MAX_TRIES, ignore_result=True)
def deliver_email(self, email_id: int) -> None:
    email = services.deliver(email_id)
    if email.status == OutboundEmail.Status.FAILED and self.request.retries < MAX_TRIES:
        raise self.retry(countdown=min(30 * 2**self.request.retries, 3600))


def deliver_with_retries(email_id: int) -> None:
    """Send an email now, from the task that made it; if that fails, deliver_email carries on
    from its first backoff step (the same tries in all). A worker killed before this leaves
    the row queued: the sweep sends it."""
    email = services.deliver(email_id)
    if email.status == OutboundEmail.Status.FAILED:
        deliver_email.apply_async(args=[email_id], countdown=30, retries=1)


@shared_task(ignore_result=True)
def sweep_unsent_emails(older_than_seconds: int = 300) -> int:
    """Re-enqueue emails that never left: a process killed between commit and enqueue, a lost
    broker message, a worker killed mid-send, or a failure whose retries ran out before the
    provider came back (up to two days old). Young rows are left to their own task; sending
    twice is prevented by the row's claim either way."""
    now = timezone.now()
    stale = OutboundEmail.objects.filter(
        created_at__gte=now - dt.timedelta(days=2),
        created_at__lte=now - dt.timedelta(seconds=older_than_seconds),
    ).filter(
        status__in=[OutboundEmail.Status.QUEUED, OutboundEmail.Status.SENDING]
    ) | OutboundEmail.objects.filter(
        status=OutboundEmail.Status.FAILED,
        created_at__gte=now - dt.timedelta(days=2),
        claimed_at__lte=now - dt.timedelta(hours=1),
        # A bounce reported after sending is for staff to look at, not to send again.
        sent_at__isnull=True,
    )
    ids = list(stale.values_list("pk", flat=True)[:1000])
    for email_id in ids:
        deliver_email.delay(email_id)
    return len(ids)
