"""Beat's schedule: the weekly charge run at its London time, and the periodic work around it
(catch-up, reconciliation, deadlines, waitlists, stored events, emails, alerts, heartbeat)."""

from celery.schedules import crontab

from events.schedule import WEEKDAYS, WeeklyTime


def beat_schedule(
    *, charge_at: str, catch_up_seconds: int, heartbeat_seconds: int, webhook_processing: str
) -> dict:
    """Every periodic task and when it runs (CELERY_BEAT_SCHEDULE)."""
    charge = WeeklyTime.parse(charge_at)
    return {
        # The weekly run, in London time (CELERY_TIMEZONE), so DST never moves it.
        "charge-run": {
            "task": "payments.tasks.charge_due_cycles",
            "schedule": crontab(
                minute=charge.time.minute,
                hour=charge.time.hour,
                day_of_week=WEEKDAYS[charge.weekday].lower(),
            ),
        },
        # Catch-up if beat or the workers were down at the charge time; a no-op otherwise.
        "charge-run-catch-up": {
            "task": "payments.tasks.charge_due_cycles",
            "schedule": catch_up_seconds,
            "options": {"expires": catch_up_seconds},
        },
        "reconcile-charges": {"task": "payments.tasks.reconcile_charges", "schedule": 120},
        # Authentication deadlines (PaymentIntents cancelled at Stripe), freed places offered to
        # the waitlist, and "not allocated" once a waitlist closes.
        "authentication-deadlines": {
            "task": "payments.tasks.expire_authentications",
            "schedule": 60,
        },
        "waitlists": {"task": "payments.tasks.refill_waitlists", "schedule": 60},
        "stripe-events": (
            {
                "task": "payments.tasks.process_pending_events",
                "schedule": 2,
                "kwargs": {"older_than_seconds": 0},
                "options": {"expires": 10},
            }
            if webhook_processing == "polled"
            else {"task": "payments.tasks.process_pending_events", "schedule": 120}
        ),
        "emails": {"task": "notifications.tasks.sweep_unsent_emails", "schedule": 300},
        # Managers are emailed if a charge run has not started 10 minutes after its time.
        "missed-run-check": {
            "task": "operations.tasks.check_missed_runs",
            "schedule": 60,
            "options": {"expires": 60},
        },
        # Beat's heartbeat: readiness and the missed-run alert know from it that beat is alive.
        "heartbeat": {
            "task": "operations.tasks.beat_heartbeat",
            "schedule": heartbeat_seconds,
            "options": {"expires": heartbeat_seconds},
        },
    }
