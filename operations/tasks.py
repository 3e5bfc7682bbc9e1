from celery import shared_task

from operations.alerts import raise_missed_run_alerts
from operations.heartbeat import record_beat


@shared_task(name="operations.tasks.beat_heartbeat", ignore_result=True)
def beat_heartbeat() -> None:
    record_beat()


@shared_task(name="operations.tasks.check_missed_runs", ignore_result=True)
def check_missed_runs() -> int:
    return raise_missed_run_alerts()
