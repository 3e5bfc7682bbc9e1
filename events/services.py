"""Writes on events and cycles that are not about a single pre-order."""

from django.db import transaction
from django.utils import timezone

from events import london
from events.models import EventLogEntry, PresaleCycle


class CycleError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def close_window_early(cycle_id: int, *, actor) -> PresaleCycle:
    """Stop taking pre-orders now, so the review can start at once."""
    with transaction.atomic():
        cycle = PresaleCycle.objects.select_for_update().get(pk=cycle_id)
        now = timezone.now()
        if now < cycle.opens_at:
            raise CycleError("This presale has not opened yet.")
        if now >= cycle.window_ends_at:
            raise CycleError(
                f"The pre-order window already closed at {london.when(cycle.last_open_moment)}."
            )
        cycle.closed_early_at = now
        cycle.save(update_fields=["closed_early_at"])
        EventLogEntry.objects.create(
            cycle=cycle,
            actor=actor,
            action="window_closed_early",
            detail=f"Pre-order window closed early at {london.when(now)}.",
            created_at=now,
        )
    return cycle
