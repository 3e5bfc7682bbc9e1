from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from config.admin_support import ReadOnlyInline, SupportAdmin, money
from events.models import Event, EventLogEntry, PresaleCycle


class EventInline(ReadOnlyInline):
    model = Event
    fields = ("title", "starts_at", "venue", "public_price_pence")


@admin.register(PresaleCycle)
class PresaleCycleAdmin(SupportAdmin):
    list_display = (
        "week_start",
        "opens_at",
        "closes_at",
        "charge_at",
        "closed_early_at",
        "charge_run_started_at",
    )
    list_filter = (("charge_run_started_at", admin.EmptyFieldListFilter),)
    date_hierarchy = "opens_at"
    inlines = [EventInline]


@admin.register(Event)
class EventAdmin(SupportAdmin):
    list_display = (
        "title",
        "starts_at",
        "venue",
        "cycle",
        "public_price",
        "member_price",
        "fulfilment_mode",
        "staff_page",
    )
    list_filter = ("fulfilment_mode", "cycle")
    search_fields = ("title", "venue")
    date_hierarchy = "starts_at"
    list_select_related = ("cycle",)

    @admin.display(description="public price", ordering="public_price_pence")
    def public_price(self, event: Event) -> str:
        return money(event.public_price_pence)

    @admin.display(description="member price")
    def member_price(self, event: Event) -> str:
        return money(event.member_price_pence)

    @admin.display(description="change it")
    def staff_page(self, event: Event) -> str:
        return format_html(
            '<a href="{}">Edit on the staff pages</a>', reverse("staff:event_edit", args=[event.pk])
        )


@admin.register(EventLogEntry)
class EventLogEntryAdmin(SupportAdmin):
    list_display = ("created_at", "action", "event", "cycle", "actor", "detail")
    list_filter = ("action",)
    search_fields = ("detail", "event__title", "actor__email")
    list_select_related = ("event", "cycle", "actor")
    date_hierarchy = "created_at"
