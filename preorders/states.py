"""The states a pre-order goes through, and which moves between them are legal."""

from django.db import models


class Status(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    DENIED = "denied", "Denied"
    # Still pending when the charge run locked decisions: nobody denied it, there was no place.
    NOT_ALLOCATED = "not_allocated", "Not allocated"
    # Still pending when decisions locked, with the waitlist on: next in line for a freed place
    # until the cut-off, then not allocated.
    WAITLISTED = "waitlisted", "Waitlisted"
    CANCELLED = "cancelled", "Cancelled"
    CHARGING = "charging", "Charging"
    # The bank asked for Strong Customer Authentication off-session: the place stays reserved
    # and the PaymentIntent open until the member confirms on-session or the deadline passes.
    AWAITING_AUTHENTICATION = "awaiting_authentication", "Awaiting authentication"
    PAID = "paid", "Paid"
    TICKET_SENT = "ticket_sent", "Ticket sent"
    FAILED = "failed", "Failed"
    # The payment was given back in full: by a manager (payments.refunds), in Stripe's dashboard
    # (a charge.refunded webhook), or because the pool had no ticket after all. A refunded
    # pre-order holds no ticket: one it had is voided (its code was emailed).
    REFUNDED = "refunded", "Refunded"


# Staff may change a decision (approved <-> denied) until the charge run starts.
TRANSITIONS: dict[str, frozenset[str]] = {
    Status.PENDING: frozenset(
        {Status.APPROVED, Status.DENIED, Status.CANCELLED, Status.NOT_ALLOCATED, Status.WAITLISTED}
    ),
    Status.APPROVED: frozenset({Status.DENIED, Status.CHARGING}),
    Status.DENIED: frozenset({Status.APPROVED}),
    Status.NOT_ALLOCATED: frozenset(),
    # Promoted to a freed place, or told "not allocated" at the cut-off.
    Status.WAITLISTED: frozenset({Status.APPROVED, Status.NOT_ALLOCATED}),
    Status.CANCELLED: frozenset(),
    Status.CHARGING: frozenset({Status.PAID, Status.FAILED, Status.AWAITING_AUTHENTICATION}),
    Status.AWAITING_AUTHENTICATION: frozenset({Status.PAID, Status.FAILED}),
    Status.PAID: frozenset({Status.TICKET_SENT, Status.REFUNDED}),
    Status.TICKET_SENT: frozenset({Status.REFUNDED}),
    Status.FAILED: frozenset(),
    Status.REFUNDED: frozenset(),
}

# A pre-order in one of these holds the member's one place in the cycle.
LIVE_STATUSES = frozenset(set(Status) - {Status.CANCELLED})
# A pre-order in one of these needs (or has) a ticket of its event's pool.
HOLDING_STATUSES = frozenset(
    {
        Status.APPROVED,
        Status.CHARGING,
        Status.AWAITING_AUTHENTICATION,
        Status.PAID,
        Status.TICKET_SENT,
    }
)
# Only these may still be edited or cancelled by the member (and only while the window is open).
MEMBER_EDITABLE_STATUSES = frozenset({Status.PENDING})
# Money taken and kept: only these may be refunded.
REFUNDABLE_STATUSES = frozenset({Status.PAID, Status.TICKET_SENT})


class IllegalTransition(Exception):
    def __init__(self, current: str, target: str) -> None:
        super().__init__(f"A pre-order cannot go from {current} to {target}.")
        self.current = current
        self.target = target


def check_transition(current: str, target: str) -> None:
    if target not in TRANSITIONS.get(current, ()):
        raise IllegalTransition(current, target)
