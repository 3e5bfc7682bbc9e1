"""Staff decisions made at the same moment, in real threads with their own database connections
and real commits: two staff members approving at once never oversell an event's pool, and an
approval racing the start of the charge run either lands before the lock or is refused.

Runs on SQLite and on PostgreSQL (set DATABASE_URL=postgres://...). On SQLite the module uses a
database file, as the app does: the in-memory test database's shared cache answers a second
writer with "database table is locked" at once instead of waiting (busy timeout), which is not
how the app's own SQLite (a file, WAL, BEGIN IMMEDIATE, 20 s timeout) behaves."""

import datetime as dt
import itertools
import threading

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from events.models import Event, PresaleCycle
from members.models import Member
from preorders import decisions
from preorders.decisions import DecisionError
from preorders.models import PreOrder, PreOrderLogEntry
from preorders.states import HOLDING_STATUSES, Status
from tickets.models import Ticket

pytestmark = pytest.mark.django_db(transaction=True)

ROUNDS = 5
SUPPLY = 5
THREAD_TIMEOUT = 60

_numbers = itertools.count(1)


@pytest.fixture(scope="module", autouse=True)
def _sqlite_in_a_file(django_db_setup, django_db_blocker, tmp_path_factory):
    if connection.vendor != "sqlite" or not connection.is_in_memory_db():
        yield
        return
    with django_db_blocker.unblock():
        connection.ensure_connection()
        # The in-memory test database lives as long as a connection to it is open: keep it.
        in_memory = connection.connection
        settings_dict = connection.settings_dict  # shared with the threads' connections
        in_memory_name = settings_dict["NAME"]
        settings_dict["NAME"] = str(tmp_path_factory.mktemp("race") / "race.sqlite3")
        connection.connection = None
        try:
            call_command("migrate", verbosity=0, interactive=False)
            seen = []
            thread = threading.Thread(
                target=lambda: (seen.append(connection.settings_dict["NAME"]), connection.close())
            )
            thread.start()
            thread.join()
            assert seen == [settings_dict["NAME"]]
            yield
        finally:
            connection.close()
            settings_dict["NAME"] = in_memory_name
            connection.connection = in_memory


# --- Set-up without the slow paths (no password hashing, no Stripe) ---------------------------


def in_review_cycle() -> PresaleCycle:
    """A cycle whose window closed yesterday and whose charge run is due tomorrow."""
    now = timezone.now()
    n = next(_numbers)
    return PresaleCycle.objects.create(
        week_start=dt.date(2001, 1, 1) + dt.timedelta(weeks=n),
        opens_at=now - dt.timedelta(days=6),
        closes_at=now - dt.timedelta(days=1),
        charge_at=now + dt.timedelta(days=1),
    )


def new_event(cycle: PresaleCycle, supply: int) -> Event:
    event = Event.objects.create(
        cycle=cycle,
        title=f"Event {next(_numbers)}",
        venue="Harry's Club",
        starts_at=cycle.charge_at + dt.timedelta(days=2),
        public_price_pence=2500,
    )
    Ticket.objects.bulk_create(Ticket(event=event, code=f"C{event.pk}-{i}") for i in range(supply))
    return event


def pending_preorders(event: Event, n: int) -> list[int]:
    tag = next(_numbers)
    members = Member.objects.bulk_create(
        Member(email=f"race{tag}-{i}@example.com", full_name=f"Racer {tag}-{i}", password="!")
        for i in range(n)
    )
    base = timezone.now() - dt.timedelta(days=2)
    preorders = PreOrder.objects.bulk_create(
        PreOrder(
            member=member,
            event=event,
            cycle=event.cycle,
            status=Status.PENDING,
            amount_pence=1000,
            stripe_customer_id="cus_x",
            payment_method_id="pm_x",
            setup_intent_id=f"seti_race_{tag}_{i}",
            created_at=base + dt.timedelta(seconds=i),
        )
        for i, member in enumerate(members)
    )
    return [p.pk for p in preorders]


def staff_member() -> Member:
    n = next(_numbers)
    return Member.objects.create(
        email=f"staff{n}@example.com", full_name=f"Staff {n}", is_staff=True, password="!"
    )


def run_together(*calls):
    """Run each call in its own thread, released at the same instant. Returns a list of
    ("ok", value) or ("error", exception), one per call, in order."""
    barrier = threading.Barrier(len(calls))
    outcomes: list = [None] * len(calls)

    def run(index, call):
        try:
            barrier.wait(timeout=THREAD_TIMEOUT)
            outcomes[index] = ("ok", call())
        except BaseException as error:  # reported to the test below
            outcomes[index] = ("error", error)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=run, args=(i, call), daemon=True) for i, call in enumerate(calls)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=THREAD_TIMEOUT)
    assert not any(thread.is_alive() for thread in threads), "a thread hung (deadlock?)"
    return outcomes


# --- Two staff members approving at once ------------------------------------------------------


@pytest.mark.parametrize("threads", [2, 4])
def test_concurrent_approvals_never_exceed_supply(threads):
    cycle = in_review_cycle()
    staff = [staff_member() for _ in range(threads)]
    for _ in range(ROUNDS):
        event = new_event(cycle, SUPPLY)
        # Each thread gets its own, disjoint set of SUPPLY candidates.
        sets = [pending_preorders(event, SUPPLY) for _ in range(threads)]

        outcomes = run_together(
            *(
                (
                    lambda ids=ids, actor=actor, event=event: decisions.approve(
                        event.pk, ids, actor=actor
                    )
                )
                for ids, actor in zip(sets, staff, strict=True)
            )
        )

        errors = [value for kind, value in outcomes if kind == "error"]
        assert errors == [], errors
        results = [value for _, value in outcomes]
        approved = PreOrder.objects.filter(event=event, status__in=HOLDING_STATUSES)
        assert approved.count() == SUPPLY
        assert sum(len(r.changed) for r in results) == SUPPLY
        assert sum(len(r.no_supply) for r in results) == (threads - 1) * SUPPLY
        # Every candidate is accounted for exactly once, and the database agrees.
        reported = sorted(pk for r in results for pk in r.changed + r.no_supply)
        assert reported == sorted(pk for ids in sets for pk in ids)
        assert sorted(approved.values_list("pk", flat=True)) == sorted(
            pk for r in results for pk in r.changed
        )
        assert (
            PreOrderLogEntry.objects.filter(
                preorder__event=event, to_status=Status.APPROVED
            ).count()
            == SUPPLY
        )


def test_concurrent_approve_and_deny_keep_the_pool_consistent():
    """One staff member denies approved pre-orders while another approves new ones: the places
    freed may be taken, but the pool is never oversold."""
    cycle = in_review_cycle()
    alice, bob = staff_member(), staff_member()
    for _ in range(ROUNDS):
        event = new_event(cycle, SUPPLY)
        first = pending_preorders(event, SUPPLY)
        decisions.approve(event.pk, first, actor=alice)
        waiting = pending_preorders(event, 2 * SUPPLY)

        outcomes = run_together(
            lambda event=event, first=first: decisions.deny(event.pk, first[:2], actor=alice),
            lambda event=event, waiting=waiting: decisions.approve(event.pk, waiting, actor=bob),
        )

        assert [kind for kind, _ in outcomes] == ["ok", "ok"], outcomes
        approved_now = outcomes[1][1].changed
        assert len(approved_now) in (0, 2)  # before the deny committed, or after it
        held = PreOrder.objects.filter(event=event, status__in=HOLDING_STATUSES).count()
        assert held == SUPPLY - 2 + len(approved_now) <= SUPPLY


# --- An approval racing the start of the charge run -------------------------------------------


@override_settings(PRESALE_WAITLIST=False)  # the brief's rule: not allocated at the lock
def test_approval_racing_the_lock_lands_before_it_or_is_refused():
    outcomes_seen = set()
    staff = staff_member()
    for _ in range(ROUNDS * 2):
        cycle = in_review_cycle()
        event = new_event(cycle, SUPPLY)
        ids = pending_preorders(event, SUPPLY + 2)

        outcomes = run_together(
            lambda event=event, ids=ids: decisions.approve(event.pk, ids, actor=staff),
            lambda cycle=cycle: decisions.lock_decisions(cycle.pk),
        )

        (approve_kind, approve_value), (lock_kind, lock_value) = outcomes
        assert lock_kind == "ok", lock_value
        cycle.refresh_from_db()
        assert cycle.charge_run_started_at is not None
        approved = PreOrder.objects.filter(event=event, status=Status.APPROVED)
        approval_logs = PreOrderLogEntry.objects.filter(
            preorder__event=event, to_status=Status.APPROVED
        )
        # Nothing is left pending; an approval either went in before the lock (the lock then
        # saw it) or was refused. (The recorded instants are checked in the test below.)
        assert not PreOrder.objects.filter(event=event, status=Status.PENDING).exists()
        assert approval_logs.count() == approved.count()
        if approve_kind == "ok":
            outcomes_seen.add("approved first")
            assert sorted(approve_value.changed) == sorted(approved.values_list("pk", flat=True))
            assert approved.count() == SUPPLY
            assert lock_value == 2  # the two without a place are not allocated
        else:
            outcomes_seen.add("refused")
            assert isinstance(approve_value, DecisionError), approve_value
            assert not approved.exists()
            assert lock_value == SUPPLY + 2
        assert (
            PreOrder.objects.filter(event=event, status=Status.NOT_ALLOCATED).count() == lock_value
        )
    # Which one wins each race is up to the scheduler; both outcomes are correct.
    assert outcomes_seen <= {"approved first", "refused"}


@override_settings(PRESALE_WAITLIST=False)
def test_concurrent_lock_decisions_sends_each_email_once():
    """Two charge-run workers starting at once: one locks, the other finds it locked."""
    from notifications.models import OutboundEmail

    for _ in range(ROUNDS):
        cycle = in_review_cycle()
        event = new_event(cycle, SUPPLY)
        ids = pending_preorders(event, 3)

        outcomes = run_together(
            lambda cycle=cycle: decisions.lock_decisions(cycle.pk),
            lambda cycle=cycle: decisions.lock_decisions(cycle.pk),
        )

        assert [kind for kind, _ in outcomes] == ["ok", "ok"], outcomes
        assert sorted(value for _, value in outcomes) == [0, 3]
        emails = OutboundEmail.objects.filter(preorder_id__in=ids, template="not_allocated")
        assert sorted(emails.values_list("preorder_id", flat=True)) == sorted(ids)
        assert PreOrderLogEntry.objects.filter(preorder_id__in=ids, source="system").count() == 3


def test_an_approval_that_wins_the_race_is_recorded_before_the_charge_run_start(monkeypatch):
    """Forces the interleaving: the charge run reads the clock, then an approval reads the clock,
    takes the locks first and commits, then the charge run takes the locks. The pre-order is
    rightly approved (it got there first), so the instants recorded must say so too: no
    approval after charge_run_started_at. Each side must read the clock once it holds the
    cycle's lock, not before."""
    cycle = in_review_cycle()
    event = new_event(cycle, SUPPLY)
    ids = pending_preorders(event, 2)
    staff = staff_member()
    run_has_read_clock = threading.Event()
    approval_holds_lock = threading.Event()
    real_timezone, real_pool_summary = decisions.timezone, decisions.pool_summary

    class Clock:
        def __getattr__(self, name):
            return getattr(real_timezone, name)

        def now(self):
            moment = real_timezone.now()
            if threading.current_thread().name == "charge-run":
                run_has_read_clock.set()
                approval_holds_lock.wait(timeout=3)
            return moment

    def pool_summary(event_id):
        if threading.current_thread().name == "approval":
            approval_holds_lock.set()
        return real_pool_summary(event_id)

    monkeypatch.setattr(decisions, "timezone", Clock())
    monkeypatch.setattr(decisions, "pool_summary", pool_summary)
    outcomes = {}

    def run(name, call):
        try:
            outcomes[name] = ("ok", call())
        except BaseException as error:
            outcomes[name] = ("error", error)
        finally:
            connection.close()

    def approval():
        run_has_read_clock.wait(timeout=THREAD_TIMEOUT)
        return decisions.approve(event.pk, ids, actor=staff)

    threads = [
        threading.Thread(
            target=run,
            args=("charge-run", lambda: decisions.lock_decisions(cycle.pk)),
            name="charge-run",
            daemon=True,
        ),
        threading.Thread(target=run, args=("approval", approval), name="approval", daemon=True),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=THREAD_TIMEOUT)
    assert not any(thread.is_alive() for thread in threads)

    assert outcomes["charge-run"][0] == "ok", outcomes
    cycle.refresh_from_db()
    approved = list(PreOrder.objects.filter(event=event, status=Status.APPROVED))
    if outcomes["approval"][0] == "ok":
        assert len(approved) == 2
    else:
        assert isinstance(outcomes["approval"][1], DecisionError), outcomes
        assert approved == []
    for preorder in approved:
        assert preorder.status_changed_at <= cycle.charge_run_started_at
    logs = PreOrderLogEntry.objects.filter(preorder__event=event, to_status=Status.APPROVED)
    assert all(entry.created_at <= cycle.charge_run_started_at for entry in logs)
