"""After Tuesday's run: the managers' summary email (exactly once per run, only once settled)
and the charge-run page following a run live."""

import threading

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from notifications.models import OutboundEmail
from payments import charging, run_execution, run_summary
from payments.models import ChargeRun
from tests.conftest import close_window
from tests.stripe_helpers import DECLINED_OFF_SESSION, SUCCEEDS

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.stripe]


def summaries(to: str | None = None):
    emails = OutboundEmail.objects.filter(template="run_summary")
    return emails.filter(to_email=to) if to else emails


@pytest.fixture
def week(approved_preorder_factory, make_staff, staff, reviewer):
    """Two good cards, one declined off-session, one never approved; a second manager."""
    make_staff("Manager", email="second@example.com", full_name="Second Manager")
    good = [approved_preorder_factory(SUCCEEDS) for _ in range(2)]
    declined = approved_preorder_factory(DECLINED_OFF_SESSION)
    pending = approved_preorder_factory(approve=False)
    close_window(good[0].cycle_id)
    return {"good": good, "declined": declined, "pending": pending, "cycle_id": good[0].cycle_id}


def test_managers_get_one_summary_in_plain_words_when_the_run_settles(week):
    run_execution.run_charges(week["cycle_id"], trigger="test", early=True)

    assert sorted(summaries().values_list("to_email", flat=True)) == [
        "second@example.com",
        "staff@example.com",
    ]
    email = summaries("staff@example.com").get()
    text = email.body_text
    declined_name = week["declined"].member.full_name
    assert email.subject == "Charge run settled: 2 paid, 1 failed, £45 taken"
    assert "Attempted: 3\nPaid: 2\nFailed: 1\nTotal taken: £45\n" in text
    assert "Not allocated or waitlisted (no charge): 1" in text
    assert f"- Card declined by the bank (1): {declined_name}" in text
    assert "- Jazz in the Cellar: 2 paid, 48 tickets left" in text
    assert "Nothing is left unsettled." in text
    assert f"/staff/cycles/{week['cycle_id']}/charge-run/" in text
    assert "card_declined" not in text and "card_declined" not in email.body_html


def test_the_summary_is_sent_once_however_often_it_is_asked_for(week):
    run_execution.run_charges(week["cycle_id"], trigger="test", early=True)

    assert run_summary.send_summary_if_settled(week["cycle_id"]) is False
    charging.reconcile(cycle_id=week["cycle_id"])
    # A rerun (the five-minute catch-up, a second start) that finds nothing to charge.
    rerun = ChargeRun.objects.create(cycle_id=week["cycle_id"], trigger="test")
    run_execution.execute_run(rerun.pk)

    assert summaries("staff@example.com").count() == 1
    assert ChargeRun.objects.filter(summary_sent_at__isnull=True).count() == 0


def test_racing_callers_send_one_summary(week):
    run = charging.start_run(week["cycle_id"], trigger="test", early=True)
    # Charge without the run's own ending, so that nobody has asked for the summary yet.
    for attempt_id in charging.claim_batch(run, 10):
        charging.charge_attempt(attempt_id)
    ChargeRun.objects.filter(pk=run.pk).update(finished_at=run.started_at)
    barrier = threading.Barrier(4)

    def ask():
        try:
            barrier.wait()
            run_summary.send_summary_if_settled(week["cycle_id"])
        finally:
            connection.close()

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert summaries("staff@example.com").count() == 1
    assert summaries("second@example.com").count() == 1


def test_no_summary_while_a_charge_awaits_stripe_then_one_when_it_settles(week, settings):
    run = charging.start_run(week["cycle_id"], trigger="test", early=True)
    attempt_ids = charging.claim_batch(run, 10)
    for attempt_id in attempt_ids[1:]:
        charging.charge_attempt(attempt_id)
    ChargeRun.objects.filter(pk=run.pk).update(finished_at=run.started_at)
    # The first charge's answer never came: the run is finished but not settled.

    assert run_summary.run_in_progress(week["cycle_id"])
    assert run_summary.send_summary_if_settled(week["cycle_id"]) is False
    assert not summaries().exists()

    settings.CHARGE_STALE_AFTER_SECONDS = 0
    charging.reconcile()

    assert not run_summary.run_in_progress(week["cycle_id"])
    assert summaries("staff@example.com").count() == 1
    assert "Attempted: 3\nPaid: 2\nFailed: 1" in summaries("staff@example.com").get().body_text


def test_the_charge_run_page_follows_a_run_and_hides_start_meanwhile(week, staff):
    client = Client()
    client.force_login(staff)
    url = reverse("payments:charge_run", args=[week["cycle_id"]])

    before = client.get(url).content.decode()
    assert "Start the charge run" in before and 'http-equiv="refresh"' not in before

    run = charging.start_run(week["cycle_id"], trigger="test", early=True)
    during = client.get(url).content.decode()
    assert '<meta http-equiv="refresh" content="5">' in during
    assert 'data-testid="run-in-progress"' in during
    assert "Start the charge run" not in during
    answer = client.post(
        reverse("payments:start_charge_run", args=[week["cycle_id"]]),
        {"confirm": "charge"},
        follow=True,
    )
    assert "already under way" in answer.content.decode()
    assert ChargeRun.objects.count() == 1

    run_execution.execute_run(run.pk)
    after = client.get(url).content.decode()
    assert 'http-equiv="refresh"' not in after
    assert '<b data-testid="report-attempted">3</b><span>attempted</span>' in after
    assert "Card declined by the bank" in after
