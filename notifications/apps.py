from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Emails"

    def ready(self) -> None:
        from anymail.signals import tracking

        from notifications.tracking import on_tracking_event

        tracking.connect(on_tracking_event, weak=False, dispatch_uid="notifications.tracking")
