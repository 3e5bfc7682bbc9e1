from django.contrib import admin

from config.admin_support import SupportAdmin
from tickets.models import Ticket


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
