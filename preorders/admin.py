from django.contrib import admin

from config.admin_support import ReadOnlyInline, SupportAdmin, money, stripe_link
from preorders.models import PreOrder, PreOrderLogEntry


class LogInline(ReadOnlyInline):
    model = PreOrderLogEntry
    fields = ("created_at", "source", "actor", "action", "from_status", "to_status", "note")
    show_change_link = False


@admin.register(PreOrder)
class PreOrderAdmin(SupportAdmin):
    list_display = ("id", "member", "event", "status", "amount", "card", "created_at", "customer")
    list_filter = ("status", "cycle")
    search_fields = (
        "member__email",
        "member__full_name",
        "event__title",
        "stripe_customer_id",
        "setup_intent_id",
        "payment_method_id",
    )
    list_select_related = ("member", "event")
    date_hierarchy = "created_at"
    inlines = [LogInline]

    @admin.display(description="amount", ordering="amount_pence")
    def amount(self, preorder: PreOrder) -> str:
        return money(preorder.amount_pence)

    @admin.display(description="card")
    def card(self, preorder: PreOrder) -> str:
        return f"{preorder.card_brand.title()} •••• {preorder.card_last4}"

    @admin.display(description="Stripe customer")
    def customer(self, preorder: PreOrder) -> str:
        return stripe_link(preorder.stripe_customer_id)


@admin.register(PreOrderLogEntry)
class PreOrderLogEntryAdmin(SupportAdmin):
    list_display = (
        "created_at",
        "preorder",
        "source",
        "actor",
        "action",
        "from_status",
        "to_status",
        "note",
    )
    list_filter = ("source", "action", "to_status")
    search_fields = ("note", "preorder__member__email")
    list_select_related = ("preorder", "actor")
    date_hierarchy = "created_at"
