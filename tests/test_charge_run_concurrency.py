"""Runs and webhooks racing each other: every pre-order is charged exactly once and gets exactly
one ticket. Meant for PostgreSQL (row locks, SKIP LOCKED); on SQLite the same code is serialised
by its write lock, and the tests still hold."""

import threading

import pytest
from django.db import connection

from payments import charging, gateway, run_execution
from payments.models import ChargeAttempt, ChargeRun
from payments.settlement import settle
from preorders.models import PreOrder
from preorders.states import Status
from tests.conftest import close_window
from tests.stripe_helpers import SUCCEEDS, payment_intents_by_preorder
from tickets.models import Ticket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.stripe]


def _in_threads(*targets) -> list[BaseException]:
    barrier = threading.Barrier(len(targets))
    errors: list[BaseException] = []

    def run(target):
        try:
            barrier.wait()
            target()
        except BaseException as error:  # reported to the test
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(target,)) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return errors


def test_two_runs_at_once_charge_every_preorder_exactly_once(
    stripe_server, approved_preorder_factory, settings
):
    settings.CHARGE_CONCURRENCY = 4
    preorders = [approved_preorder_factory(SUCCEEDS) for _ in range(12)]
    cycle_id = preorders[0].cycle_id
    close_window(cycle_id)
    first = charging.start_run(cycle_id, trigger="test", early=True)
    second = ChargeRun.objects.create(cycle_id=cycle_id, trigger="test")

    errors = _in_threads(
        lambda: run_execution.execute_run(first.pk), lambda: run_execution.execute_run(second.pk)
    )

    assert errors == []
    assert payment_intents_by_preorder(stripe_server) == {str(p.pk): 1 for p in preorders}
    assert ChargeAttempt.objects.count() == 12
    assert set(PreOrder.objects.values_list("status", flat=True)) == {Status.TICKET_SENT}
    runs = ChargeRun.objects.filter(pk__in=[first.pk, second.pk])
    assert sum(run.claimed for run in runs) == 12


def test_one_outcome_settled_from_several_places_at_once_gives_one_ticket(
    approved_preorder_factory,
):
    preorder = approved_preorder_factory(SUCCEEDS)
    close_window(preorder.cycle_id)
    run = charging.start_run(preorder.cycle_id, trigger="test", early=True)
    (attempt_id,) = charging.claim_batch(run, 10)
    outcome = gateway.ChargeOutcome("succeeded", "pi_raced_by_webhooks")

    errors = _in_threads(*[lambda: settle(attempt_id, outcome, source="stripe")] * 4)

    assert errors == []
    assert Ticket.objects.filter(preorder=preorder).count() == 1
    assert PreOrder.objects.get(pk=preorder.pk).status == Status.TICKET_SENT


def test_concurrent_successes_never_share_a_ticket(approved_preorder_factory):
    preorders = [approved_preorder_factory(SUCCEEDS) for _ in range(8)]
    close_window(preorders[0].cycle_id)
    run = charging.start_run(preorders[0].cycle_id, trigger="test", early=True)
    attempt_ids = charging.claim_batch(run, 20)

    errors = _in_threads(
        *[
            (
                lambda a=attempt_id: settle(
                    a, gateway.ChargeOutcome("succeeded", f"pi_{a}"), source="stripe"
                )
            )
            for attempt_id in attempt_ids
        ]
    )

    assert errors == []
    assigned = list(
        Ticket.objects.filter(preorder__isnull=False).values_list("preorder_id", "code")
    )
    assert len(assigned) == 8
    assert len({code for _, code in assigned}) == 8
    assert {preorder_id for preorder_id, _ in assigned} == {p.pk for p in preorders}
