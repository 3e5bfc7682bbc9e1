import datetime as dt

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from events.pricing import MINIMUM_CHARGE_PENCE, Discount, member_price_pence


class PresaleCycle(models.Model):
    """One week of the presale: its pre-order window, its review period and its charge run.
    The instants are computed from the weekly schedule when the cycle is created and stored, so a
    later change of schedule never moves a cycle that members have already been told about."""

    week_start = models.DateField(unique=True, help_text="The Monday of the week the window opens.")
    opens_at = models.DateTimeField()
    closes_at = models.DateTimeField(help_text="First instant the pre-order window is closed.")
    charge_at = models.DateTimeField(help_text="When the charge run is due.")
    closed_early_at = models.DateTimeField(
        null=True, blank=True, help_text="Set when staff close the window before its time."
    )
    # Set once, when the charge run starts: from then on staff decisions are locked.
    charge_run_started_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-week_start"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(opens_at__lt=models.F("closes_at")),
                name="cycle_opens_before_it_closes",
            ),
            models.CheckConstraint(
                condition=models.Q(closes_at__lte=models.F("charge_at")),
                name="cycle_charges_after_it_closes",
            ),
        ]

    def __str__(self) -> str:
        return f"Presale week of {self.week_start:%d %b %Y}"

    @property
    def window_ends_at(self):
        """When the window actually stops taking pre-orders."""
        if self.closed_early_at and self.closed_early_at < self.closes_at:
            return self.closed_early_at
        return self.closes_at

    @property
    def decisions_locked(self) -> bool:
        return self.charge_run_started_at is not None

    def in_review_at(self, moment) -> bool:
        """Staff may approve and deny between the window's end and the start of the run."""
        return self.window_ends_at <= moment and not self.decisions_locked

    @property
    def last_open_moment(self):
        """The last whole second of the window, as members are told it ("11:59PM Sunday")."""
        return self.window_ends_at - dt.timedelta(seconds=1)

    def is_open_at(self, moment) -> bool:
        return self.opens_at <= moment < self.window_ends_at

    @property
    def is_open(self) -> bool:
        return self.is_open_at(timezone.now())


class Event(models.Model):
    class FulfilmentMode(models.TextChoices):
        FIFO = "fifo", "First come, first served"
        BALLOT = "ballot", "Fair ballot (random draw)"

    class RefillMode(models.TextChoices):
        AUTOMATIC = "automatic", "Automatically, within minutes"
        MANUAL = "manual", "Only when staff press “Offer freed places”"

    cycle = models.ForeignKey(PresaleCycle, on_delete=models.PROTECT, related_name="events")
    title = models.CharField(max_length=200)
    starts_at = models.DateTimeField()
    venue = models.CharField(max_length=200)
    description = models.TextField(max_length=2000, blank=True)
    public_price_pence = models.PositiveIntegerField()
    # Neither set: the club-wide default percentage applies.
    discount_percent = models.PositiveSmallIntegerField(null=True, blank=True)
    discount_fixed_pence = models.PositiveIntegerField(null=True, blank=True)
    fulfilment_mode = models.CharField(
        max_length=10, choices=FulfilmentMode.choices, default=FulfilmentMode.FIFO
    )
    # Places freed after decisions lock go to the waitlist: on their own, or when staff say.
    refill_mode = models.CharField(
        max_length=10, choices=RefillMode.choices, default=RefillMode.AUTOMATIC
    )
    # Where and when tickets go on public sale: members without a ticket are pointed there.
    public_sale_url = models.URLField(max_length=500, blank=True)
    public_sale_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["starts_at", "id"]
        constraints = [
            # Stripe's minimum charge in GBP (events.pricing.MINIMUM_CHARGE_PENCE).
            models.CheckConstraint(
                condition=models.Q(public_price_pence__gte=30), name="event_price_at_least_30p"
            ),
            models.CheckConstraint(
                condition=models.Q(discount_percent__isnull=True)
                | models.Q(discount_fixed_pence__isnull=True),
                name="event_one_kind_of_discount",
            ),
            models.CheckConstraint(
                condition=models.Q(discount_percent__isnull=True)
                | models.Q(discount_percent__lte=100),
                name="event_discount_percent_at_most_100",
            ),
            models.CheckConstraint(
                condition=models.Q(discount_fixed_pence__isnull=True)
                | models.Q(discount_fixed_pence__lt=models.F("public_price_pence")),
                name="event_fixed_discount_below_price",
            ),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def discount(self) -> Discount:
        if self.discount_percent is None and self.discount_fixed_pence is None:
            return Discount(percent=settings.PRESALE_DEFAULT_DISCOUNT_PERCENT)
        return Discount(percent=self.discount_percent, fixed_pence=self.discount_fixed_pence)

    @property
    def member_price_pence(self) -> int:
        return member_price_pence(self.public_price_pence, self.discount)

    @property
    def public_sale_started(self) -> bool:
        """Whether the public sale has begun (a member told about it afterwards reads "went on
        sale", not "go on sale")."""
        return self.public_sale_at is not None and self.public_sale_at <= timezone.now()

    def clean(self) -> None:
        if self.discount_percent is not None and self.discount_fixed_pence is not None:
            raise ValidationError("Give either a percentage or a fixed discount, not both.")
        if self.public_price_pence and self.member_price_pence < MINIMUM_CHARGE_PENCE:
            raise ValidationError(
                f"The member price must be at least {MINIMUM_CHARGE_PENCE}p, Stripe's minimum."
            )


class EventLogEntry(models.Model):
    """Staff actions on an event or a cycle as a whole (pool imports, auto-fulfil draws, early
    closes). Decisions on single pre-orders are in the pre-order's own log."""

    event = models.ForeignKey(
        Event, on_delete=models.CASCADE, null=True, blank=True, related_name="log_entries"
    )
    cycle = models.ForeignKey(PresaleCycle, on_delete=models.CASCADE, related_name="log_entries")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    action = models.CharField(max_length=40)
    detail = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.action} ({self.created_at:%Y-%m-%d %H:%M})"
