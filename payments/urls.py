from django.urls import path

from payments import webhooks

app_name = "payments"
urlpatterns = [
    path("payments/stripe/webhook/", webhooks.stripe_webhook, name="stripe_webhook"),
]
