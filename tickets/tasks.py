from celery import shared_task

from notifications.tasks import deliver_with_retries
from tickets import delivery


@shared_task(ignore_result=True)
def send_ticket_task(preorder_id: int) -> None:
    """Render the ticket email and send it in the same task: one trip through the queue from
    the payment to the member's inbox (two would double the wait behind a busy queue)."""
    email = delivery.send_ticket(preorder_id, hand_off=False)
    if email is not None:
        deliver_with_retries(email.pk)
