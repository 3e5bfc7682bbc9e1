"""Doors scanning one ticket at the same instant, in real threads with their own database
connections and real commits: exactly one is told "valid", every other "already checked in",
and there is one live check-in. Runs on PostgreSQL (DATABASE_URL=postgres://...), where the
ticket's row lock queues the doors, and on SQLite in a file, where the write lock does."""

import datetime as dt
import itertools
import threading
import time

import pytest
from django.db import connection
from django.utils import timezone

from events.models import Event, PresaleCycle
from members.models import Member
from preorders.models import PreOrder
from preorders.states import Status
from tests.test_decisions_concurrency import _sqlite_in_a_file, run_together  # noqa: F401
from tickets import checkin
from tickets.models import CheckIn, DoorScan, Ticket

pytestmark = pytest.mark.django_db(transaction=True)

DOORS = 8
ROUNDS = 5
_numbers = itertools.count(1)


def issued_ticket() -> Ticket:
    n = next(_numbers)
    now = timezone.now()
    cycle = PresaleCycle.objects.create(
        week_start=dt.date(1990, 1, 1) + dt.timedelta(weeks=n),
        opens_at=now - dt.timedelta(days=9),
        closes_at=now - dt.timedelta(days=2),
        charge_at=now - dt.timedelta(days=1),
    )
    event = Event.objects.create(
        cycle=cycle, title=f"Door race {n}", venue="Harry's Club", starts_at=now,
        public_price_pence=2500,
    )  # fmt: skip
    member = Member.objects.create(email=f"guest{n}@example.com", full_name=f"Guest {n}")
    preorder = PreOrder.objects.create(
        member=member, event=event, cycle=cycle, status=Status.TICKET_SENT, amount_pence=2250,
        stripe_customer_id="cus_x", payment_method_id="pm_x", setup_intent_id=f"seti_door_{n}",
    )  # fmt: skip
    return Ticket.objects.create(
        event=event, code=f"HC-RACE-{n:04d}", preorder=preorder, assigned_at=now
    )


def door_accounts() -> list[Member]:
    n = next(_numbers)
    return [
        Member.objects.create(email=f"door{n}-{i}@example.com", full_name=f"Door {n}-{i}")
        for i in range(DOORS)
    ]


def test_many_doors_scanning_one_ticket_at_once_let_it_in_once():
    doors = door_accounts()
    for _ in range(ROUNDS):
        ticket = issued_ticket()

        outcomes = run_together(
            *(
                lambda door=door, ticket=ticket: checkin.check_in(
                    ticket.event_id, ticket.code, door=door
                )
                for door in doors
            )
        )

        errors = [value for kind, value in outcomes if kind == "error"]
        assert errors == [], errors
        results = sorted(answer.result for _, answer in outcomes)
        assert results == ["already_checked_in"] * (DOORS - 1) + ["valid"]
        live = CheckIn.objects.get(ticket=ticket, undone_at__isnull=True)
        # Every "already" names the door that won.
        winner = live.checked_in_by.full_name
        for _, answer in outcomes:
            if answer.result == "already_checked_in":
                assert f"by {winner}" in answer.headline
        scans = DoorScan.objects.filter(ticket=ticket)
        assert scans.count() == DOORS
        assert set(scans.values_list("check_in_id", flat=True)) == {live.pk}
        assert scans.get(result="valid").scanned_by == live.checked_in_by
        # Each door that was told "already" scanned after the winner, as the record says.
        assert all(scan.scanned_at >= live.checked_in_at for scan in scans)


def test_an_undo_racing_new_scans_leaves_at_most_one_live_check_in():
    doors = door_accounts()
    manager = Member.objects.create(email=f"m{next(_numbers)}@example.com", full_name="Manager")
    for _ in range(ROUNDS):
        ticket = issued_ticket()
        checkin.check_in(ticket.event_id, ticket.code, door=doors[0])
        first = CheckIn.objects.get(ticket=ticket)

        outcomes = run_together(
            lambda first=first: checkin.undo_check_in(first.pk, actor=manager, reason="Mistake"),
            *(
                lambda door=door, ticket=ticket: checkin.check_in(
                    ticket.event_id, ticket.code, door=door
                )
                for door in doors[1:4]
            ),
        )

        assert [kind for kind, _ in outcomes] == ["ok"] * 4, outcomes
        valid = [answer for _, answer in outcomes[1:] if answer.result == "valid"]
        # Scans before the undo are "already"; the first after it lets the ticket in again.
        assert len(valid) <= 1
        assert CheckIn.objects.filter(ticket=ticket, undone_at__isnull=True).count() == len(valid)


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="row locks: SQLite serialises whole transactions"
)
def test_a_scan_and_a_staff_void_of_the_same_code_do_not_deadlock(monkeypatch):
    """Forces the interleaving: a door scans an unsold pool code and holds its row lock; staff
    then void that ticket (the event's lock, then the ticket's). The scan must not need the event
    after the void took it, or PostgreSQL aborts one of them as a deadlock."""
    from tickets import services

    issued = issued_ticket()
    pool_code = Ticket.objects.create(event=issued.event, code=f"HC-POOL-{next(_numbers):04d}")
    doors = door_accounts()
    scan_holds_ticket = threading.Event()
    real_find = checkin._find_ticket

    def find_then_linger(code):
        ticket = real_find(code)
        scan_holds_ticket.set()
        time.sleep(1.5)  # longer than PostgreSQL's 1 s deadlock_timeout
        return ticket

    monkeypatch.setattr(checkin, "_find_ticket", find_then_linger)

    def void_once_the_scan_holds_it():
        scan_holds_ticket.wait(timeout=30)
        return services.void_ticket(pool_code.pk, actor=doors[1])

    outcomes = run_together(
        lambda: checkin.check_in(issued.event_id, pool_code.code, door=doors[0]),
        void_once_the_scan_holds_it,
    )

    assert [kind for kind, _ in outcomes] == ["ok", "ok"], outcomes
    assert outcomes[0][1].result == "unknown"
    pool_code.refresh_from_db()
    assert pool_code.voided_at is not None
