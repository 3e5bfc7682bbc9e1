import datetime as dt

import pytest
import time_machine
from django.conf import settings

from operations.heartbeat import beat_age_seconds, record_beat
from operations.tasks import beat_heartbeat

pytestmark = pytest.mark.django_db


def test_no_heartbeat_yet_is_none_not_zero():
    assert beat_age_seconds() is None


def test_the_beat_task_records_a_heartbeat_and_its_age_grows():
    start = dt.datetime(2027, 3, 9, 18, 0, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False) as traveller:
        beat_heartbeat.delay()
        assert beat_age_seconds() == 0
        traveller.shift(dt.timedelta(seconds=95))
        assert beat_age_seconds() == 95
        record_beat()
        assert beat_age_seconds() == 0


def test_beat_schedules_the_heartbeat_often_enough_to_be_judged_fresh():
    entry = settings.CELERY_BEAT_SCHEDULE["heartbeat"]
    assert entry["task"] == beat_heartbeat.name
    assert entry["schedule"] == settings.BEAT_HEARTBEAT_SECONDS <= 60
