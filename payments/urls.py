from django.urls import path

from payments import member_views, staff_views, waitlist_views, webhooks

app_name = "payments"
urlpatterns = [
    path(
        "pre-orders/<row_id:preorder_id>/confirm-payment/",
        member_views.confirm_payment,
        name="confirm_payment",
    ),
    path("payments/stripe/webhook/", webhooks.stripe_webhook, name="stripe_webhook"),
    path("staff/cycles/<row_id:cycle_id>/charge-run/", staff_views.charge_run, name="charge_run"),
    path(
        "staff/cycles/<row_id:cycle_id>/charge-run/start/",
        staff_views.start_charge_run,
        name="start_charge_run",
    ),
    path("staff/pre-orders/<row_id:preorder_id>/refund/", staff_views.refund, name="refund"),
    path(
        "staff/events/<row_id:event_id>/refill-mode/",
        waitlist_views.refill_mode,
        name="refill_mode",
    ),
    path(
        "staff/events/<row_id:event_id>/offer-freed-places/",
        waitlist_views.offer_freed_places,
        name="offer_freed_places",
    ),
    path("staff/webhooks/", staff_views.webhook_log, name="webhook_log"),
    path("staff/webhooks/<row_id:event_pk>/replay/", staff_views.replay_webhook, name="replay"),
]
