"""Heartbeats: a process records that it is alive; anyone can ask how long ago it last did.

Beat is the process whose silence matters most (no beat, no Tuesday run), and it runs no code
of ours, so it schedules a tiny task every settings.BEAT_HEARTBEAT_SECONDS that a worker runs.
A fresh heartbeat therefore says "beat is scheduling and a worker is taking tasks"."""

from django.utils import timezone

from operations.models import Heartbeat

BEAT = "beat"


def record_beat(name: str = BEAT) -> None:
    Heartbeat.objects.update_or_create(name=name, defaults={"beat_at": timezone.now()})


def beat_age_seconds(name: str = BEAT) -> float | None:
    """Seconds since the last heartbeat, or None if there has never been one."""
    beat_at = Heartbeat.objects.filter(name=name).values_list("beat_at", flat=True).first()
    if beat_at is None:
        return None
    return max(0.0, (timezone.now() - beat_at).total_seconds())
