"""The missed-run alert: 10 minutes after a cycle's charge time with no run started, managers
are emailed once and every staff page shows a banner saying whether beat is alive."""

import datetime as dt

import pytest
import time_machine
from django.conf import settings
from django.test import Client
from django.urls import reverse

from notifications.models import OutboundEmail
from operations.alerts import overdue_cycles, raise_missed_run_alerts
from operations.heartbeat import record_beat
from operations.models import MissedRunAlert
from operations.tasks import check_missed_runs
from payments import charging
from tests.conftest import close_window
from tests.test_access_matrix import world  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db
BANNER = 'data-testid="missed-run-banner"'


@pytest.fixture
def cycle(make_event, open_cycle, staff, reviewer):
    make_event()
    return open_cycle


def alerts_sent():
    return OutboundEmail.objects.filter(template="missed_run")


def page(user, name="staff:events", *args) -> str:
    client = Client()
    client.force_login(user)
    return client.get(reverse(name, args=args)).content.decode()


def test_nothing_fires_before_ten_minutes_have_passed(cycle, staff):
    with time_machine.travel(cycle.charge_at + dt.timedelta(minutes=9, seconds=59), tick=False):
        assert check_missed_runs.delay().get() == 0
        assert BANNER not in page(staff)
    assert not alerts_sent().exists() and not MissedRunAlert.objects.exists()


def test_it_fires_once_when_the_run_is_ten_minutes_late(cycle, staff, reviewer):
    with time_machine.travel(cycle.charge_at + dt.timedelta(minutes=10, seconds=1), tick=False):
        assert raise_missed_run_alerts() == 1
        assert raise_missed_run_alerts() == 0
        assert check_missed_runs.delay().get() == 0

    email = alerts_sent().get()
    assert email.to_email == staff.email  # managers only, not the reviewer
    assert email.subject.startswith("Charge run not started: due ")
    assert "Beat (the scheduler) has never been heard from." in email.body_text
    assert f"/staff/cycles/{cycle.pk}/charge-run/" in email.body_text


def test_every_staff_page_shows_the_banner_and_members_pages_do_not(
    cycle, staff, reviewer, member, django_capture_on_commit_callbacks
):
    late = cycle.charge_at + dt.timedelta(minutes=11)
    with time_machine.travel(late, tick=False), django_capture_on_commit_callbacks(execute=True):
        for html in (page(staff), page(reviewer), page(staff, "payments:webhook_log")):
            assert BANNER in html
            assert "has not started" in html
        assert BANNER not in page(member, "preorders:dashboard")
    # The page itself raised the alert, and delivered it, without beat or a worker's help.
    assert alerts_sent().get().status == OutboundEmail.Status.SENT


def test_the_banner_says_whether_beat_is_alive(cycle, staff):
    late = cycle.charge_at + dt.timedelta(minutes=12)
    with time_machine.travel(late - dt.timedelta(seconds=20), tick=False):
        record_beat()
    with time_machine.travel(late, tick=False):
        assert "is alive: last heartbeat 20 s ago" in page(staff)
    with time_machine.travel(late + dt.timedelta(minutes=30), tick=False):
        assert "has been silent for 30 minutes" in page(staff)
    assert settings.BEAT_HEARTBEAT_SECONDS * 3 < 30 * 60


def test_a_run_that_started_on_time_raises_nothing(cycle, staff):
    close_window(cycle.pk)
    with time_machine.travel(cycle.charge_at + dt.timedelta(minutes=1), tick=False):
        charging.start_run(cycle.pk, trigger="schedule")
    with time_machine.travel(cycle.charge_at + dt.timedelta(minutes=30), tick=False):
        assert raise_missed_run_alerts() == 0
        assert BANNER not in page(staff)
    assert not alerts_sent().exists()


def test_the_banner_goes_once_the_run_is_started_by_hand(cycle, staff):
    with time_machine.travel(cycle.charge_at + dt.timedelta(minutes=15), tick=False):
        assert BANNER in page(staff)
        charging.start_run(cycle.pk, trigger="staff", actor=staff, early=True)
        assert BANNER not in page(staff)
        assert overdue_cycles() == []


def test_a_cycle_without_events_is_not_a_missed_run(open_cycle, staff):
    with time_machine.travel(open_cycle.charge_at + dt.timedelta(hours=1), tick=False):
        assert raise_missed_run_alerts() == 0


def test_a_week_old_cycle_is_history(cycle, staff):
    with time_machine.travel(cycle.charge_at + dt.timedelta(days=8), tick=False):
        assert overdue_cycles() == []


def test_beat_runs_the_check_every_minute():
    entry = settings.CELERY_BEAT_SCHEDULE["missed-run-check"]
    assert entry["task"] == check_missed_runs.name and entry["schedule"] == 60


def test_the_banner_is_on_every_staff_page_the_resolver_knows(world):  # noqa: F811
    """Every HTML page under staff/ (walked from the URL resolver, as the access matrix does),
    opened by a manager while the run is late, shows the banner."""
    from tests.test_access_matrix import staff_html_pages

    with time_machine.travel(world.cycle.charge_at + dt.timedelta(minutes=11), tick=False):
        pages = dict(staff_html_pages(world))
    checked = list(pages)
    missing = [name for name, html in pages.items() if BANNER not in html]
    assert not missing, f"staff pages without the missed-run banner: {missing}"
    assert len(checked) > 15, checked
