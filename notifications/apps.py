from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Emails"

    def ready(self) -> None:
        from anymail.signals import tracking

        from notifications.models import OutboundEmail
        from notifications.signals import email_committed
        from notifications.tasks import deliver_email
        from notifications.tracking import on_tracking_event

        tracking.connect(on_tracking_event, weak=False, dispatch_uid="notifications.tracking")
        email_committed.connect(
            lambda sender, email_id, **kwargs: deliver_email.delay(email_id),
            sender=OutboundEmail,
            weak=False,
            dispatch_uid="notifications.deliver_email",
        )
