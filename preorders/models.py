from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.functional import cached_property

from events import london
from preorders.states import Status


class PreOrder(models.Model):
    """A member's pre-order of one ticket (quantity is always 1) for one event of a cycle."""

    member = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="preorders"
    )
    event = models.ForeignKey("events.Event", on_delete=models.PROTECT, related_name="preorders")
    # Copied from the event so that "one live pre-order per member per cycle" is a constraint.
    cycle = models.ForeignKey(
        "events.PresaleCycle", on_delete=models.PROTECT, related_name="preorders"
    )
    status = models.CharField(max_length=30, choices=Status.choices, default=Status.PENDING)
    # The member price when the pre-order was placed (or last switched event): what is charged.
    amount_pence = models.PositiveIntegerField()
    currency = models.CharField(max_length=3, default="gbp")
    stripe_customer_id = models.CharField(max_length=255)
    payment_method_id = models.CharField(max_length=255)
    # The SetupIntent that saved the card for this pre-order; null when the member chose a card
    # saved earlier (checked with Stripe, no new SetupIntent).
    setup_intent_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    card_brand = models.CharField(max_length=32, blank=True)
    card_last4 = models.CharField(max_length=4, blank=True)
    # Why a charge failed, as Stripe put it (e.g. "card_declined: Your card was declined."), and
    # Stripe's code alone: for staff. Members read payments.failure_reasons' sentence instead.
    failure_reason = models.CharField(max_length=500, blank=True)
    # Place in the event's waitlist (1 = next in line), recorded when decisions lock: first
    # come first served, or the full ranking of the event's seeded ballot.
    waitlist_position = models.PositiveIntegerField(null=True, blank=True)
    failure_code = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    status_changed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["member", "cycle"],
                condition=~models.Q(status=Status.CANCELLED),
                name="preorder_one_live_per_member_per_cycle",
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=Status.values), name="preorder_status_known"
            ),
            models.CheckConstraint(
                condition=models.Q(amount_pence__gt=0), name="preorder_amount_positive"
            ),
            models.CheckConstraint(condition=models.Q(currency="gbp"), name="preorder_in_gbp"),
            models.CheckConstraint(
                condition=~models.Q(payment_method_id="") & ~models.Q(stripe_customer_id=""),
                name="preorder_has_card_and_customer",
            ),
            models.CheckConstraint(
                condition=~models.Q(setup_intent_id=""), name="preorder_setup_intent_not_blank"
            ),
        ]
        indexes = [
            models.Index(fields=["event", "status"], name="preorder_event_status"),
            # The staff list of an event's pre-orders, in pre-order time order.
            models.Index(fields=["event", "created_at", "id"], name="preorder_event_created"),
            models.Index(fields=["cycle", "status"], name="preorder_cycle_status"),
        ]

    def __str__(self) -> str:
        return f"Pre-order #{self.pk} ({self.get_status_display()})"

    @property
    def payment_label(self) -> str:
        """The payment side of the status, for staff."""
        if self.status == Status.CHARGING:
            return "Charging"
        if self.status in (Status.PAID, Status.TICKET_SENT):
            return "Paid"
        if self.status == Status.AWAITING_AUTHENTICATION:
            return "Awaiting the member's bank authentication"
        if self.status == Status.FAILED:
            return f"Failed: {self.failure_reason}" if self.failure_reason else "Failed"
        if self.status == Status.REFUNDED:
            return "Refunded"
        return "Not charged"

    @cached_property
    def charged_at(self):
        """When the payment succeeded (None if it has not)."""
        attempt = self.charge_attempts.filter(status="succeeded").only("finished_at").first()
        return attempt.finished_at if attempt else None

    @property
    def card_label(self) -> str:
        return f"{self.card_brand.title() or 'Card'} •••• {self.card_last4}"

    @property
    def failure_sentence(self) -> str:
        """Why the payment failed, in plain words for the member (never Stripe's code)."""
        from payments.failure_reasons import member_sentence

        return member_sentence(self.failure_code)

    @property
    def failure_headline(self) -> str:
        """ "Card declined" only when the bank declined it (payments.failure_reasons)."""
        from payments.failure_reasons import member_headline

        return member_headline(self.failure_code)

    @cached_property
    def completed_refund(self):
        """The full refund a manager or Stripe's dashboard made (payments.models.Refund), if
        any; an automatic refund of an unticketed payment has none."""
        return self.refunds.filter(status="succeeded").first()

    @property
    def awaiting_attempt(self):
        """The charge attempt waiting for the member's bank authentication, if any."""
        return self.charge_attempts.filter(status="awaiting").first()

    @property
    def waitlist_place(self) -> int:
        """Where the member stands in line now (1 = next): their recorded position among those
        still waiting."""
        ahead = PreOrder.objects.filter(
            event_id=self.event_id,
            status=Status.WAITLISTED,
            waitlist_position__lt=self.waitlist_position or 0,
        ).count()
        return ahead + 1

    @property
    def waitlist_closes_at(self):
        """When this pre-order's waitlist closes (the event's public sale or the cut-off)."""
        from preorders.waitlist import closes_at

        return closes_at(self.event)

    @property
    def member_label(self) -> str:
        """The status in the member's words (DESIGN.md §3)."""
        if self.status == Status.APPROVED:
            charge_at = self.cycle.charge_at
            return f"Approved – charging {london.clock(charge_at)} {london.to_london(charge_at):%A}"
        if self.status == Status.FAILED:
            from payments.failure_reasons import member_badge

            return member_badge(self.failure_code)
        return MEMBER_LABELS[self.status]


MEMBER_LABELS = {
    Status.PENDING: "Pending",
    Status.DENIED: "Not allocated this week",
    Status.NOT_ALLOCATED: "Not allocated this week",
    Status.WAITLISTED: "On the waitlist",
    Status.CANCELLED: "Cancelled",
    Status.CHARGING: "Charging your card",
    Status.AWAITING_AUTHENTICATION: "Confirm with your bank",
    Status.PAID: "Paid – sending your ticket",
    Status.TICKET_SENT: "Successful – Ticket Sent",
    Status.FAILED: "Failed – Card Declined",
    Status.REFUNDED: "Refunded – no ticket",
}


class PreOrderLogEntry(models.Model):
    """What happened to a pre-order, by whom, when. Written by the services, never edited."""

    class Source(models.TextChoices):
        MEMBER = "member", "Member"
        STAFF = "staff", "Staff"
        SYSTEM = "system", "System"
        STRIPE = "stripe", "Stripe"

    preorder = models.ForeignKey(PreOrder, on_delete=models.CASCADE, related_name="log_entries")
    created_at = models.DateTimeField(default=timezone.now)
    source = models.CharField(max_length=10, choices=Source.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    action = models.CharField(max_length=40)
    from_status = models.CharField(max_length=30, blank=True)
    to_status = models.CharField(max_length=30, blank=True)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(source__in=["member", "staff", "system", "stripe"]),
                name="preorder_log_source_known",
            )
        ]

    def __str__(self) -> str:
        return f"{self.action} on pre-order #{self.preorder_id}"
