from django.conf import settings
from django.db import models
from django.utils import timezone


class OutboundEmail(models.Model):
    """Every email the product sends is a row first, then a delivery attempt: an email-provider
    outage leaves a row that can be retried, never a lost message."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        # Replaced by a newer email (a ticket resent, maybe to a corrected address): never sent.
        SUPERSEDED = "superseded", "Replaced by a resend"

    to_email = models.EmailField(max_length=254)
    template = models.CharField(max_length=60)
    subject = models.CharField(max_length=255)
    body_text = models.TextField()
    body_html = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    provider_message_id = models.CharField(max_length=255, blank=True)
    error = models.TextField(blank=True)
    member = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    preorder = models.ForeignKey(
        "preorders.PreOrder",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="emails",
    )
    created_at = models.DateTimeField(default=timezone.now)
    # When a worker took the row to send it; a claim older than the lease may be taken again.
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(
                    status__in=["queued", "sending", "sent", "failed", "superseded"]
                ),
                name="outbound_email_status_known",
            ),
            models.CheckConstraint(
                condition=~models.Q(status="sent") | models.Q(sent_at__isnull=False),
                name="outbound_email_sent_has_time",
            ),
        ]
        indexes = [models.Index(fields=["status", "created_at"], name="outbound_email_status")]

    def __str__(self) -> str:
        return f"{self.template} to {self.to_email} ({self.status})"


class OutboxMessage(models.Model):
    """A message caught by the local outbox backend (the embedded default: no provider), kept so
    staff can read it in the browser."""

    message_id = models.CharField(max_length=255)
    from_email = models.CharField(max_length=255)
    to = models.TextField()
    subject = models.CharField(max_length=255)
    body_text = models.TextField()
    body_html = models.TextField(blank=True)
    attachment_names = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.subject} to {self.to}"


class OutboundEmailAttachment(models.Model):
    """A file sent with an email (a ticket's QR code, its calendar entry). Kept with the row so
    a retry or a resend sends exactly the same thing."""

    email = models.ForeignKey(OutboundEmail, on_delete=models.CASCADE, related_name="attachments")
    filename = models.CharField(max_length=100)
    mimetype = models.CharField(max_length=100)
    content = models.BinaryField()
    # Set for an image shown inside the HTML body (<img src="cid:…">).
    content_id = models.CharField(max_length=100, blank=True)

    def __str__(self) -> str:
        return self.filename
