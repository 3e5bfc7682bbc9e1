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


class CheckIn(models.Model):
    """A ticket let in at the door. At most one live (not undone) check-in per ticket: a unique
    index, so two doors scanning one ticket at the same instant cannot both let it in. A manager
    may undo one (say, a mistaken scan); the row stays, with who undid it, when and why, and the
    ticket may then be checked in again."""

    ticket = models.ForeignKey(Ticket, on_delete=models.PROTECT, related_name="check_ins")
    checked_in_at = models.DateTimeField(default=timezone.now)
    checked_in_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    undone_at = models.DateTimeField(null=True, blank=True)
    undone_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    undo_reason = models.TextField(max_length=500, blank=True)

    class Meta:
        ordering = ["checked_in_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["ticket"],
                condition=models.Q(undone_at__isnull=True),
                name="checkin_one_live_per_ticket",
            ),
            models.CheckConstraint(
                condition=models.Q(undone_at__isnull=True, undo_reason="", undone_by__isnull=True)
                | (models.Q(undone_at__isnull=False) & ~models.Q(undo_reason="")),
                name="checkin_undo_has_a_reason",
            ),
            models.CheckConstraint(
                condition=models.Q(undone_at__isnull=True)
                | models.Q(undone_at__gte=models.F("checked_in_at")),
                name="checkin_undone_after_it_happened",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.ticket_id} at {self.checked_in_at:%Y-%m-%d %H:%M}"

    @property
    def is_live(self) -> bool:
        return self.undone_at is None


class DoorScan(models.Model):
    """Every scan at the door and the answer it got, including codes that match nothing: the
    record of who tried what, and when. The scanned text is kept only up to 64 characters."""

    class Result(models.TextChoices):
        VALID = "valid", "Valid"
        ALREADY_CHECKED_IN = "already_checked_in", "Already checked in"
        WRONG_EVENT = "wrong_event", "Not for this event"
        VOID = "void", "Refunded or void"
        UNKNOWN = "unknown", "Unknown code"

    event = models.ForeignKey("events.Event", on_delete=models.PROTECT, related_name="door_scans")
    scanned_at = models.DateTimeField(default=timezone.now)
    scanned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    code = models.CharField(max_length=64, blank=True)
    result = models.CharField(max_length=20, choices=Result.choices)
    ticket = models.ForeignKey(
        Ticket, on_delete=models.PROTECT, null=True, blank=True, related_name="door_scans"
    )
    # The check-in this scan made (valid) or ran into (already checked in).
    check_in = models.ForeignKey(
        CheckIn, on_delete=models.PROTECT, null=True, blank=True, related_name="scans"
    )

    class Meta:
        ordering = ["-scanned_at", "-id"]
        indexes = [models.Index(fields=["event", "-scanned_at"], name="doorscan_event_recent")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(
                    result__in=["valid", "already_checked_in"], check_in__isnull=False
                )
                | (
                    ~models.Q(result__in=["valid", "already_checked_in"])
                    & models.Q(check_in__isnull=True)
                ),
                name="doorscan_check_in_iff_admitted_or_met",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.result} at {self.scanned_at:%Y-%m-%d %H:%M}"
