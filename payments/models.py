from django.conf import settings
from django.db import models
from django.utils import timezone


class StripeEvent(models.Model):
    """Every Stripe webhook event, stored once (Stripe repeats deliveries), before it is handled."""

    class Status(models.TextChoices):
        RECEIVED = "received", "Received"
        PROCESSED = "processed", "Processed"
        IGNORED = "ignored", "Ignored (type not handled)"
        FAILED = "failed", "Failed"

    stripe_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=100)
    payload = models.JSONField()
    livemode = models.BooleanField(default=False)
    received_at = models.DateTimeField(default=timezone.now)
    deliveries = models.PositiveIntegerField(default=1)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RECEIVED)
    processed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    preorder = models.ForeignKey(
        "preorders.PreOrder",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="stripe_events",
    )
    result = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [models.Index(fields=["type", "status"], name="stripe_event_type_status")]

    def __str__(self) -> str:
        return f"{self.type} {self.stripe_id}"


class ChargeRun(models.Model):
    """One execution of the charge run for a cycle. A run that was killed is resumed by a new
    run; the per-pre-order claims, not this row, are what prevent double charges."""

    cycle = models.ForeignKey(
        "events.PresaleCycle", on_delete=models.PROTECT, related_name="charge_runs"
    )
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    triggered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    trigger = models.CharField(max_length=20, default="schedule")  # schedule / staff / command
    claimed = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    # When the managers' summary email covering this run was queued (payments.run_summary).
    summary_sent_at = models.DateTimeField(null=True, blank=True)
    # How many Celery tasks the run fanned out to, and the last sign of life from any of them:
    # a run whose heartbeat stops is marked interrupted, and the catch-up starts another.
    workers = models.PositiveSmallIntegerField(default=1)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    interrupted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            # A run ends one way: it finished, or its workers died and it was interrupted.
            models.CheckConstraint(
                condition=models.Q(finished_at__isnull=True)
                | models.Q(interrupted_at__isnull=True),
                name="charge_run_finished_or_interrupted",
            ),
        ]

    def __str__(self) -> str:
        return f"Charge run {self.pk} for {self.cycle}"

    @property
    def state(self) -> str:
        if self.finished_at:
            return "finished"
        return "interrupted" if self.interrupted_at else "running"


class ChargeAttempt(models.Model):
    """One attempt to charge a pre-order, recorded *before* Stripe is called, with the
    idempotency key the call will use. Its PaymentIntent id is filled in once Stripe answers;
    an attempt with none is looked up at Stripe by its key before anything else happens."""

    class Status(models.TextChoices):
        STARTED = "started", "Started"
        # Stripe wants the cardholder to authenticate (3-D Secure): the PaymentIntent stays
        # open for the member to confirm on-session until `authenticate_by`.
        AWAITING = "awaiting", "Awaiting authentication"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    preorder = models.ForeignKey(
        "preorders.PreOrder", on_delete=models.PROTECT, related_name="charge_attempts"
    )
    run = models.ForeignKey(
        ChargeRun, on_delete=models.SET_NULL, null=True, blank=True, related_name="attempts"
    )
    number = models.PositiveSmallIntegerField(default=1)
    idempotency_key = models.CharField(max_length=100, unique=True)
    amount_pence = models.PositiveIntegerField()
    payment_intent_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.STARTED)
    failure_code = models.CharField(max_length=100, blank=True)
    failure_message = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    authenticate_by = models.DateTimeField(null=True, blank=True)
    # When we cancelled its PaymentIntent at Stripe (given up on an authentication), so that
    # nobody can complete it later; reconciliation retries until this is set.
    intent_cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["preorder", "number"], name="charge_attempt_number"),
            # At most one attempt per pre-order may be in flight or have succeeded.
            models.UniqueConstraint(
                fields=["preorder"],
                condition=models.Q(status__in=["started", "awaiting", "succeeded"]),
                name="charge_attempt_one_live_per_preorder",
            ),
            models.CheckConstraint(
                condition=models.Q(amount_pence__gt=0), name="charge_attempt_amount_positive"
            ),
            models.CheckConstraint(
                condition=~models.Q(status="awaiting")
                | (
                    models.Q(authenticate_by__isnull=False)
                    & models.Q(payment_intent_id__isnull=False)
                ),
                name="charge_attempt_awaiting_has_deadline_and_intent",
            ),
        ]
        indexes = [models.Index(fields=["status", "created_at"], name="charge_attempt_status")]

    def __str__(self) -> str:
        return f"Charge attempt {self.idempotency_key} ({self.status})"


class Refund(models.Model):
    """A full refund of a pre-order's payment, recorded *before* Stripe is called (under the
    pre-order's row lock) with the idempotency key the call will use. At most one per pre-order
    may be under way or done: a second click, tab or worker finds it and stops there, even
    against a Stripe stand-in that ignores idempotency keys. One made in Stripe's dashboard is
    recorded when its charge.refunded webhook arrives."""

    class Status(models.TextChoices):
        REQUESTED = "requested", "Sent to Stripe"
        SUCCEEDED = "succeeded", "Refunded"
        FAILED = "failed", "Refused by Stripe"

    class Source(models.TextChoices):
        STAFF = "staff", "A manager, on the staff pages"
        DASHBOARD = "dashboard", "Stripe's dashboard"

    preorder = models.ForeignKey(
        "preorders.PreOrder", on_delete=models.PROTECT, related_name="refunds"
    )
    number = models.PositiveSmallIntegerField(default=1)
    idempotency_key = models.CharField(max_length=100, unique=True)
    payment_intent_id = models.CharField(max_length=255)
    amount_pence = models.PositiveIntegerField()
    reason = models.CharField(max_length=500)
    source = models.CharField(max_length=10, choices=Source.choices)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.REQUESTED)
    stripe_refund_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["preorder", "number"], name="refund_number"),
            models.UniqueConstraint(
                fields=["preorder"],
                condition=models.Q(status__in=["requested", "succeeded"]),
                name="refund_one_live_per_preorder",
            ),
            models.CheckConstraint(
                condition=models.Q(amount_pence__gt=0), name="refund_amount_positive"
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=["requested", "succeeded", "failed"]),
                name="refund_status_known",
            ),
            models.CheckConstraint(condition=~models.Q(reason=""), name="refund_has_reason"),
        ]

    def __str__(self) -> str:
        return f"Refund {self.idempotency_key} ({self.status})"


class Installation(models.Model):
    """This database's identity at Stripe: one row, created once. Its prefix starts every
    idempotency key and charge_key we send, so two databases on one Stripe account (staging and
    production, a restored copy) can never replay or settle each other's charges."""

    prefix = models.CharField(max_length=24, unique=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(pk=1), name="installation_single_row")
        ]

    def __str__(self) -> str:
        return f"Installation {self.prefix}"
