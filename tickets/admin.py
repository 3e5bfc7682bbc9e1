from django.contrib import admin

from config.admin_support import SupportAdmin
from tickets.models import CheckIn, DoorScan, Ticket


@admin.register(Ticket)
class TicketAdmin(SupportAdmin):
    list_display = ("code", "event", "preorder", "assigned_at", "voided_at", "created_at")
    list_filter = (
        ("preorder", admin.EmptyFieldListFilter),
        ("voided_at", admin.EmptyFieldListFilter),
        "event",
    )
    search_fields = ("code", "event__title", "preorder__member__email")
    list_select_related = ("event", "preorder")


@admin.register(CheckIn)
class CheckInAdmin(SupportAdmin):
    list_display = ("ticket", "checked_in_at", "checked_in_by", "undone_at", "undone_by")
    list_filter = (("undone_at", admin.EmptyFieldListFilter),)
    search_fields = ("ticket__code", "checked_in_by__email", "undo_reason")
    list_select_related = ("ticket", "checked_in_by", "undone_by")
    date_hierarchy = "checked_in_at"


@admin.register(DoorScan)
class DoorScanAdmin(SupportAdmin):
    list_display = ("scanned_at", "event", "code", "result", "scanned_by", "ticket")
    list_filter = ("result", "event")
    search_fields = ("code", "scanned_by__email", "event__title")
    list_select_related = ("event", "scanned_by", "ticket")
    date_hierarchy = "scanned_at"
