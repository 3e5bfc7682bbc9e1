from celery import shared_task

from operations.heartbeat import record_beat


@shared_task(name="operations.tasks.beat_heartbeat", ignore_result=True)
def beat_heartbeat() -> None:
    record_beat()
