from django.db import models


class Heartbeat(models.Model):
    """The last time a long-running process said it was alive: one row per process kind.
    Celery beat writes "beat"; readiness checks and the missed-run alert read it."""

    name = models.CharField(max_length=40, unique=True)
    beat_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} at {self.beat_at:%Y-%m-%d %H:%M:%S}"
