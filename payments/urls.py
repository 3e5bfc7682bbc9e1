from django.urls import path

from payments import member_views, staff_views, webhooks

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
    path("staff/webhooks/", staff_views.webhook_log, name="webhook_log"),
    path("staff/webhooks/<row_id:event_pk>/replay/", staff_views.replay_webhook, name="replay"),
]
