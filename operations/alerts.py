"""The missed-run alert: if a cycle's charge run has not started 10 minutes after its time
(beat down, workers down), managers are emailed once and every staff page shows a banner.
Beat's heartbeat (operations.heartbeat) says whether the scheduler itself is alive.

The banner is read from the database on each staff page, so it needs neither beat nor a
worker. The check that emails is run every minute by beat and, at most once a minute per web
process, by staff pages; from a page the email is delivered at once rather than left for a
worker that may be the thing that is down."""

import datetime as dt
import logging
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from events.models import PresaleCycle
from operations.heartbeat import beat_age_seconds
from operations.models import MissedRunAlert

logger = logging.getLogger(__name__)

GRACE = dt.timedelta(minutes=10)
# Older cycles are history: the charge run catch-up (payments.charging.due_cycles) looks back
# as far.
LOOKBACK = dt.timedelta(days=7)
PAGE_CHECK_EVERY_SECONDS = 60


@dataclass(frozen=True)
class BeatStatus:
    age_seconds: float | None

    @property
    def alive(self) -> bool:
        # Three missed heartbeats in a row before beat is called silent.
        return (
            self.age_seconds is not None and self.age_seconds <= 3 * settings.BEAT_HEARTBEAT_SECONDS
        )

    @property
    def in_words(self) -> str:
        if self.age_seconds is None:
            return "Beat (the scheduler) has never been heard from."
        if self.alive:
            return f"Beat (the scheduler) is alive: last heartbeat {self.age_seconds:.0f} s ago."
        minutes = self.age_seconds / 60
        return f"Beat (the scheduler) has been silent for {minutes:.0f} minutes: it looks down."


def beat_status() -> BeatStatus:
    return BeatStatus(beat_age_seconds())


def overdue_cycles(now: dt.datetime | None = None) -> list[PresaleCycle]:
    """Cycles with events whose run is more than GRACE late and has not started."""
    now = now or timezone.now()
    return list(
        PresaleCycle.objects.filter(
            charge_at__lte=now - GRACE,
            charge_at__gte=now - LOOKBACK,
            charge_runs__isnull=True,
            events__isnull=False,
        )
        .distinct()
        .order_by("charge_at")
    )


def raise_missed_run_alerts(now: dt.datetime | None = None, *, deliver_now: bool = False) -> int:
    """Email managers about each overdue cycle not alerted yet. Returns how many were new."""
    from members.selectors import manager_emails
    from notifications.services import deliver, queue_email

    raised = 0
    status = beat_status()
    for cycle in overdue_cycles(now):
        with transaction.atomic():
            _, created = MissedRunAlert.objects.get_or_create(
                cycle=cycle,
                defaults={"raised_at": timezone.now(), "beat_age_seconds": status.age_seconds},
            )
            if not created:
                continue
            raised += 1
            for address in manager_emails():
                email = queue_email(
                    to_email=address,
                    template="missed_run",
                    context={"cycle": cycle, "beat": status, "grace_minutes": 10},
                )
                if deliver_now:
                    transaction.on_commit(lambda pk=email.pk: _deliver_quietly(deliver, pk))
        logger.error("The charge run of %s has not started 10 minutes after its time", cycle)
    return raised


def _deliver_quietly(deliver, email_id: int) -> None:
    try:
        deliver(email_id)
    except Exception:  # the email row stays queued; the sweep or the worker retries it
        logger.exception("Could not deliver missed-run alert %s now", email_id)


def check_from_a_page() -> None:
    """Called by staff pages: the check, at most once a minute per process."""
    if cache.add("operations:missed-run-check", True, PAGE_CHECK_EVERY_SECONDS):
        raise_missed_run_alerts(deliver_now=True)
