from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "payments"
    verbose_name = "Payments"

    def ready(self) -> None:
        from payments.models import StripeEvent
        from payments.signals import stripe_event_stored
        from payments.tasks import process_stripe_event

        stripe_event_stored.connect(
            lambda sender, event_pk, **kwargs: process_stripe_event.delay(event_pk),
            sender=StripeEvent,
            weak=False,
            dispatch_uid="payments.process_stripe_event",
        )
