from django.conf import settings
from django.db import models
from django.utils import timezone


class Ticket(models.Model):
    """One concrete ticket of an event's pool, e.g. a box-office code. The pool *is* the supply:
    there is no separate counter that could drift from it.

    A ticket is assigned to a pre-order only when its payment has succeeded; until then an
    approved pre-order merely holds a place (see tickets.selectors.pool_summary)."""

    event = models.ForeignKey("events.Event", on_delete=models.PROTECT, related_name="tickets")
    code = models.CharField(max_length=64, unique=True)
    preorder = models.OneToOneField(
        "preorders.PreOrder",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="ticket",
    )
    assigned_at = models.DateTimeField(null=True, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)
    voided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=~models.Q(code=""), name="ticket_code_not_blank"),
            models.CheckConstraint(
                condition=models.Q(preorder__isnull=True, assigned_at__isnull=True)
                | models.Q(preorder__isnull=False, assigned_at__isnull=False),
                name="ticket_assignment_fields_together",
            ),
            models.CheckConstraint(
                condition=models.Q(preorder__isnull=True) | models.Q(voided_at__isnull=True),
                name="ticket_assigned_is_not_void",
            ),
        ]
        indexes = [
            models.Index(
                fields=["event", "id"],
                condition=models.Q(preorder__isnull=True, voided_at__isnull=True),
                name="ticket_available_by_event",
            )
        ]

    def __str__(self) -> str:
        return self.code

    @property
    def state(self) -> str:
        if self.voided_at:
            return "void"
        if self.preorder_id:
            return "assigned"
        return "available"
