from django.contrib import admin

from config.admin_support import SupportAdmin, money, stripe_link
from payments.models import ChargeAttempt, ChargeRun, Installation, Refund, StripeEvent


@admin.register(StripeEvent)
class StripeEventAdmin(SupportAdmin):
    list_display = (
        "received_at",
        "event_id",
        "type",
        "status",
        "preorder",
        "deliveries",
        "attempts",
        "livemode",
    )
    list_filter = ("status", "type", "livemode")
    search_fields = ("stripe_id", "type", "result", "error")
    list_select_related = ("preorder",)
    date_hierarchy = "received_at"
    exclude = ("payload",)
    readonly_fields = ("payload_text",)

    @admin.display(description="Stripe event", ordering="stripe_id")
    def event_id(self, event: StripeEvent) -> str:
        return stripe_link(event.stripe_id)

    @admin.display(description="payload")
    def payload_text(self, event: StripeEvent) -> str:
        import json

        return json.dumps(event.payload, indent=2)[:20_000]


@admin.register(ChargeRun)
class ChargeRunAdmin(SupportAdmin):
    list_display = (
        "id",
        "cycle",
        "trigger",
        "triggered_by",
        "started_at",
        "finished_at",
        "claimed",
    )
    list_filter = ("trigger",)
    list_select_related = ("cycle", "triggered_by")
    date_hierarchy = "started_at"


@admin.register(ChargeAttempt)
class ChargeAttemptAdmin(SupportAdmin):
    list_display = (
        "id",
        "preorder",
        "number",
        "status",
        "amount",
        "payment_intent",
        "failure_code",
        "created_at",
    )
    list_filter = ("status", "failure_code")
    search_fields = ("payment_intent_id", "idempotency_key", "preorder__member__email")
    list_select_related = ("preorder",)
    date_hierarchy = "created_at"

    @admin.display(description="amount", ordering="amount_pence")
    def amount(self, attempt: ChargeAttempt) -> str:
        return money(attempt.amount_pence)

    @admin.display(description="PaymentIntent", ordering="payment_intent_id")
    def payment_intent(self, attempt: ChargeAttempt) -> str:
        return stripe_link(attempt.payment_intent_id)


@admin.register(Installation)
class InstallationAdmin(SupportAdmin):
    list_display = ("prefix", "created_at")


@admin.register(Refund)
class RefundAdmin(SupportAdmin):
    list_display = (
        "created_at",
        "preorder",
        "amount",
        "status",
        "source",
        "requested_by",
        "refund_id",
    )
    list_filter = ("status", "source")
    search_fields = ("idempotency_key", "payment_intent_id", "stripe_refund_id", "reason")
    list_select_related = ("preorder", "requested_by")
    date_hierarchy = "created_at"

    @admin.display(description="amount", ordering="amount_pence")
    def amount(self, refund: Refund) -> str:
        return money(refund.amount_pence)

    @admin.display(description="Stripe refund", ordering="stripe_refund_id")
    def refund_id(self, refund: Refund) -> str:
        return stripe_link(refund.stripe_refund_id)
