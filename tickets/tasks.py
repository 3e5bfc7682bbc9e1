from celery import shared_task

from tickets import delivery


@shared_task(ignore_result=True)
def send_ticket_task(preorder_id: int) -> None:
    delivery.send_ticket(preorder_id)
