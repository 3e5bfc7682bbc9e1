from django.apps import AppConfig


class TicketsConfig(AppConfig):
    name = "tickets"
    verbose_name = "Tickets"

    def ready(self) -> None:
        from notifications.models import OutboundEmail
        from notifications.signals import email_sent
        from tickets.delivery import mark_ticket_sent
        from tickets.models import Ticket
        from tickets.signals import ticket_due
        from tickets.tasks import send_ticket_task

        email_sent.connect(
            lambda sender, email, **kwargs: mark_ticket_sent(email),
            sender=OutboundEmail,
            weak=False,
            dispatch_uid="tickets.mark_ticket_sent",
        )
        ticket_due.connect(
            lambda sender, preorder_id, **kwargs: send_ticket_task.delay(preorder_id),
            sender=Ticket,
            weak=False,
            dispatch_uid="tickets.send_ticket",
        )
