from django.db import models


class Heartbeat(models.Model):
    """The last time a long-running process said it was alive: one row per process kind.
    Celery beat writes "beat"; readiness checks and the missed-run alert read it."""

    name = models.CharField(max_length=40, unique=True)
    beat_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} at {self.beat_at:%Y-%m-%d %H:%M:%S}"


class MissedRunAlert(models.Model):
    """A cycle whose charge run had not started 10 minutes after its time: managers were
    emailed once (one row per cycle is what makes it once)."""

    cycle = models.OneToOneField(
        "events.PresaleCycle", on_delete=models.CASCADE, related_name="missed_run_alert"
    )
    raised_at = models.DateTimeField()
    # Seconds since beat's last heartbeat when the alert was raised; null: never heard from.
    beat_age_seconds = models.FloatField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Missed run alert for {self.cycle}"
