"""How full an event's pool is. Supply is the pool's tickets that are not void; every pre-order
that is approved or further along holds one place of it until the ticket is assigned."""

from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Count, Q

from preorders.models import PreOrder
from preorders.states import HOLDING_STATUSES
from tickets.models import Ticket


@dataclass(frozen=True)
class PoolSummary:
    supply: int  # tickets not void
    assigned: int  # tickets given to a paid pre-order
    void: int
    holding: int  # pre-orders approved or further along (each needs one ticket)

    @property
    def reserved(self) -> int:
        """Places held by approved pre-orders whose ticket is not assigned yet."""
        return self.holding - self.assigned

    @property
    def left(self) -> int:
        """Places that can still be approved."""
        return self.supply - self.holding

    @property
    def unassigned(self) -> int:
        """Tickets in the pool not yet given to anyone."""
        return self.supply - self.assigned


def pool_summaries(
    event_ids: Iterable[int], status_counts: dict[int, dict[str, int]] | None = None
) -> dict[int, PoolSummary]:
    """Summaries for many events in two grouped queries, whatever the number of rows; in one
    when the caller already has the events' pre-orders by status (preorders.selectors.
    status_counts), since the places held are a sum of those."""
    event_ids = list(event_ids)
    tickets = {
        row["event_id"]: row
        for row in Ticket.objects.filter(event_id__in=event_ids)
        .values("event_id")
        .annotate(
            supply=Count("id", filter=Q(voided_at__isnull=True)),
            assigned=Count("id", filter=Q(preorder__isnull=False)),
            void=Count("id", filter=Q(voided_at__isnull=False)),
        )
    }
    if status_counts is None:
        holding = dict(
            PreOrder.objects.filter(event_id__in=event_ids, status__in=HOLDING_STATUSES)
            .values("event_id")
            .annotate(n=Count("id"))
            .values_list("event_id", "n")
        )
    else:
        holding = {
            event_id: sum(
                n for status, n in status_counts[event_id].items() if status in HOLDING_STATUSES
            )
            for event_id in event_ids
        }
    empty = {"supply": 0, "assigned": 0, "void": 0}
    return {
        event_id: PoolSummary(
            supply=tickets.get(event_id, empty)["supply"],
            assigned=tickets.get(event_id, empty)["assigned"],
            void=tickets.get(event_id, empty)["void"],
            holding=holding.get(event_id, 0),
        )
        for event_id in event_ids
    }


def pool_summary(event_id: int, status_counts: dict[str, int] | None = None) -> PoolSummary:
    """One event's summary; pass its pre-orders by status, if at hand, to save a query."""
    by_event = None if status_counts is None else {event_id: status_counts}
    return pool_summaries([event_id], by_event)[event_id]
