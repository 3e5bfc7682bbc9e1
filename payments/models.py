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
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [models.Index(fields=["type", "status"], name="stripe_event_type_status")]

    def __str__(self) -> str:
        return f"{self.type} {self.stripe_id}"
