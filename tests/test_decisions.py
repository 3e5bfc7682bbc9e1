"""Staff decisions on pre-orders (preorders.decisions): approve, deny, auto-fulfil (first come,
first served or a seeded ballot), the lock at the start of the charge run, and closing the
pre-order window early. Approvals never exceed the pool's supply."""

import datetime as dt
import itertools

import pytest
import time_machine
from django.utils import timezone

from events import selectors as event_selectors
from events.models import Event, EventLogEntry, PresaleCycle
from events.services import CycleError, close_window_early
from notifications.models import OutboundEmail
from preorders import decisions
from preorders.decisions import DecisionError
from preorders.models import PreOrder, PreOrderLogEntry
from preorders.states import Status
from tickets.models import Ticket
from tickets.selectors import pool_summary

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.PRESALE_AUTO_FULFIL = False


# --- Helpers -------------------------------------------------------------------------------


def add_tickets(event: Event, n: int) -> None:
    start = Ticket.objects.filter(event=event).count()
    Ticket.objects.bulk_create(
        Ticket(event=event, code=f"T{event.pk}-{i}") for i in range(start, start + n)
    )


def close_window(cycle: PresaleCycle) -> PresaleCycle:
    """Put the cycle in review: its window ended a second ago."""
    PresaleCycle.objects.filter(pk=cycle.pk).update(
        closed_early_at=timezone.now() - dt.timedelta(seconds=1)
    )
    cycle.refresh_from_db()
    return cycle


def statuses(*preorders: PreOrder) -> list[str]:
    return [PreOrder.objects.get(pk=p.pk).status for p in preorders]


_setup_ids = itertools.count()


@pytest.fixture
def place(make_member):
    """place(event, status=..., minutes=...) -> a pre-order of a new member, placed `minutes`
    after a fixed base time (so tests choose the pre-order time order independently of ids)."""
    base = timezone.now() - dt.timedelta(days=1)

    def place(event: Event, status: str = Status.PENDING, minutes: int = 0, member=None):
        return PreOrder.objects.create(
            member=member or make_member(),
            event=event,
            cycle=event.cycle,
            status=status,
            amount_pence=1000,
            stripe_customer_id="cus_x",
            payment_method_id="pm_x",
            setup_intent_id=f"seti_{next(_setup_ids)}",
            created_at=base + dt.timedelta(minutes=minutes),
        )

    return place


@pytest.fixture
def event(make_event):
    return make_event()


@pytest.fixture
def review(event):
    """The event's cycle is in review (window closed, charge run not started)."""
    close_window(event.cycle)
    return event


# --- Approve and deny ----------------------------------------------------------------------


def test_approve_one(review, place, staff):
    add_tickets(review, 3)
    preorder = place(review)

    result = decisions.approve(review.pk, [preorder.pk], actor=staff)

    assert result.changed == [preorder.pk]
    assert result.no_supply == result.unchanged == result.not_decidable == []
    assert result.left == 2
    assert statuses(preorder) == [Status.APPROVED]
    assert pool_summary(review.pk).left == 2


def test_deny_one(review, place, staff):
    add_tickets(review, 3)
    preorder = place(review)

    result = decisions.deny(review.pk, [preorder.pk], actor=staff)

    assert result.changed == [preorder.pk]
    assert statuses(preorder) == [Status.DENIED]
    assert result.left == 3


def test_bulk_approve_and_bulk_deny(review, place, staff):
    add_tickets(review, 10)
    preorders = [place(review, minutes=i) for i in range(6)]
    ids = [p.pk for p in preorders]

    approved = decisions.approve(review.pk, ids[:4], actor=staff)
    denied = decisions.deny(review.pk, ids[4:], actor=staff)

    assert sorted(approved.changed) == sorted(ids[:4])
    assert sorted(denied.changed) == sorted(ids[4:])
    assert statuses(*preorders) == [Status.APPROVED] * 4 + [Status.DENIED] * 2
    assert pool_summary(review.pk).left == 6


def test_approving_twice_reports_unchanged_and_logs_once(review, place, staff):
    add_tickets(review, 3)
    preorder = place(review)
    decisions.approve(review.pk, [preorder.pk], actor=staff)

    again = decisions.approve(review.pk, [preorder.pk], actor=staff)
    denied_again = decisions.deny(review.pk, [preorder.pk], actor=staff)
    denied_twice = decisions.deny(review.pk, [preorder.pk], actor=staff)

    assert again.changed == [] and again.unchanged == [preorder.pk]
    assert denied_again.changed == [preorder.pk]
    assert denied_twice.changed == [] and denied_twice.unchanged == [preorder.pk]
    assert PreOrderLogEntry.objects.filter(preorder=preorder).count() == 2


def test_approve_stops_at_supply_in_preorder_time_order(review, place, staff):
    add_tickets(review, 3)
    # Created (ids ascending) in an order unlike their pre-order times.
    minutes = [40, 10, 50, 30, 20]
    preorders = [place(review, minutes=m) for m in minutes]
    by_time = [p for _, p in sorted(zip(minutes, preorders, strict=True), key=lambda x: x[0])]

    result = decisions.approve(review.pk, [p.pk for p in preorders], actor=staff)

    assert result.changed == [p.pk for p in by_time[:3]]
    assert result.no_supply == [p.pk for p in by_time[3:]]
    assert result.left == 0
    assert statuses(*by_time) == [Status.APPROVED] * 3 + [Status.PENDING] * 2
    summary = pool_summary(review.pk)
    assert summary.holding == summary.supply == 3
    assert "2 could not be approved: no tickets left." in result.summary("approved")


def test_approve_never_exceeds_supply_when_some_are_already_approved(review, place, staff):
    add_tickets(review, 3)
    first = [place(review, minutes=i) for i in range(2)]
    decisions.approve(review.pk, [p.pk for p in first], actor=staff)
    later = [place(review, minutes=10 + i) for i in range(3)]

    result = decisions.approve(review.pk, [p.pk for p in first + later], actor=staff)

    assert sorted(result.unchanged) == sorted(p.pk for p in first)
    assert result.changed == [later[0].pk]
    assert result.no_supply == [later[1].pk, later[2].pk]
    assert PreOrder.objects.filter(event=review, status=Status.APPROVED).count() == 3

    # Full: nothing more can be approved, whichever way it is asked.
    for _ in range(2):
        again = decisions.approve(review.pk, [later[1].pk, later[2].pk], actor=staff)
        assert again.changed == []
        assert again.no_supply == [later[1].pk, later[2].pk]
    assert pool_summary(review.pk).left == 0


def test_charging_and_paid_preorders_hold_places_too(review, place, staff):
    add_tickets(review, 3)
    place(review, status=Status.CHARGING)
    place(review, status=Status.PAID)
    place(review, status=Status.TICKET_SENT)
    pending = place(review)

    result = decisions.approve(review.pk, [pending.pk], actor=staff)

    assert result.changed == [] and result.no_supply == [pending.pk]
    assert statuses(pending) == [Status.PENDING]


def test_void_tickets_are_not_supply(review, place, staff):
    add_tickets(review, 2)
    Ticket.objects.filter(pk=Ticket.objects.filter(event=review).first().pk).update(
        voided_at=timezone.now()
    )
    preorders = [place(review, minutes=i) for i in range(2)]

    result = decisions.approve(review.pk, [p.pk for p in preorders], actor=staff)

    assert result.changed == [preorders[0].pk]
    assert result.no_supply == [preorders[1].pk]


def test_denying_an_approved_preorder_frees_its_place(review, place, staff):
    add_tickets(review, 1)
    first, second = place(review, minutes=1), place(review, minutes=2)
    decisions.approve(review.pk, [first.pk], actor=staff)
    assert decisions.approve(review.pk, [second.pk], actor=staff).no_supply == [second.pk]
    assert pool_summary(review.pk).left == 0

    result = decisions.deny(review.pk, [first.pk], actor=staff)

    assert result.changed == [first.pk]
    assert result.left == 1
    assert pool_summary(review.pk).left == 1
    assert decisions.approve(review.pk, [second.pk], actor=staff).changed == [second.pk]
    assert statuses(first, second) == [Status.DENIED, Status.APPROVED]


def test_a_denied_preorder_can_be_approved(review, place, staff):
    add_tickets(review, 1)
    preorder = place(review)
    decisions.deny(review.pk, [preorder.pk], actor=staff)

    result = decisions.approve(review.pk, [preorder.pk], actor=staff)

    assert result.changed == [preorder.pk]
    assert statuses(preorder) == [Status.APPROVED]
    transitions = list(
        PreOrderLogEntry.objects.filter(preorder=preorder).values_list("from_status", "to_status")
    )
    assert transitions == [(Status.PENDING, Status.DENIED), (Status.DENIED, Status.APPROVED)]


@pytest.mark.parametrize(
    "status",
    [
        Status.CANCELLED,
        Status.CHARGING,
        Status.PAID,
        Status.TICKET_SENT,
        Status.FAILED,
        Status.REFUNDED,
    ],
)
def test_cancelled_and_charged_preorders_cannot_be_decided(review, place, staff, status):
    add_tickets(review, 5)
    preorder = place(review, status=status)

    approved = decisions.approve(review.pk, [preorder.pk], actor=staff)
    denied = decisions.deny(review.pk, [preorder.pk], actor=staff)

    assert approved.not_decidable == [preorder.pk] and approved.changed == []
    assert denied.not_decidable == [preorder.pk] and denied.changed == []
    assert statuses(preorder) == [status]
    assert not PreOrderLogEntry.objects.filter(preorder=preorder).exists()
    assert "1 skipped" in approved.summary("approved")


def test_preorders_of_another_event_are_not_touched(review, make_event, place, staff):
    add_tickets(review, 5)
    other = make_event(title="Other night")
    add_tickets(other, 5)
    foreign = place(other)

    approved = decisions.approve(review.pk, [foreign.pk], actor=staff)
    denied = decisions.deny(review.pk, [foreign.pk, 10**9], actor=staff)

    assert approved.changed == denied.changed == []
    assert statuses(foreign) == [Status.PENDING]
    assert not PreOrderLogEntry.objects.exists()


def test_each_decision_is_logged_with_actor_statuses_and_source(review, place, staff):
    add_tickets(review, 5)
    a, b = place(review, minutes=1), place(review, minutes=2)

    decisions.approve(review.pk, [a.pk, b.pk], actor=staff, note="Regulars first")
    decisions.deny(review.pk, [b.pk], actor=staff)

    entries = list(PreOrderLogEntry.objects.order_by("id"))
    assert [(e.preorder_id, e.from_status, e.to_status) for e in entries] == [
        (a.pk, Status.PENDING, Status.APPROVED),
        (b.pk, Status.PENDING, Status.APPROVED),
        (b.pk, Status.APPROVED, Status.DENIED),
    ]
    assert {e.source for e in entries} == {PreOrderLogEntry.Source.STAFF}
    assert {e.actor_id for e in entries} == {staff.pk}
    assert {e.action for e in entries} == {"status"}
    assert [e.note for e in entries] == ["Regulars first", "Regulars first", ""]
    preorder_b = PreOrder.objects.get(pk=b.pk)
    assert preorder_b.status_changed_at == entries[-1].created_at


# --- When decisions are allowed --------------------------------------------------------------


def test_decisions_are_refused_while_the_window_is_open(event, place, staff):
    add_tickets(event, 5)
    preorder = place(event)
    assert event.cycle.is_open

    for call in (
        lambda: decisions.approve(event.pk, [preorder.pk], actor=staff),
        lambda: decisions.deny(event.pk, [preorder.pk], actor=staff),
        lambda: decisions.auto_fulfil(event.pk, actor=staff, mode="fifo"),
        lambda: decisions.auto_fulfil(event.pk, actor=staff, mode="ballot", seed=1),
    ):
        with pytest.raises(DecisionError, match="still open"):
            call()

    assert statuses(preorder) == [Status.PENDING]
    assert not PreOrderLogEntry.objects.exists()
    assert not EventLogEntry.objects.exists()


def test_decisions_start_at_the_window_close_instant(event, place, staff):
    """At closes_at exactly the window is closed (closes_at is its first closed instant)."""
    add_tickets(event, 5)
    preorder = place(event)
    cycle = event.cycle
    with time_machine.travel(cycle.closes_at - dt.timedelta(microseconds=1), tick=False):
        with pytest.raises(DecisionError):
            decisions.approve(event.pk, [preorder.pk], actor=staff)
    with time_machine.travel(cycle.closes_at, tick=False):
        assert decisions.approve(event.pk, [preorder.pk], actor=staff).changed == [preorder.pk]


def test_decisions_are_refused_after_the_lock(review, place, staff):
    add_tickets(review, 5)
    approved, pending = place(review, minutes=1), place(review, minutes=2)
    decisions.approve(review.pk, [approved.pk], actor=staff)
    decisions.lock_decisions(review.cycle_id)
    log_count = PreOrderLogEntry.objects.count()
    before = statuses(approved, pending)
    assert before == [Status.APPROVED, Status.WAITLISTED]

    for call in (
        lambda: decisions.approve(review.pk, [pending.pk], actor=staff),
        lambda: decisions.deny(review.pk, [approved.pk], actor=staff),
        lambda: decisions.auto_fulfil(review.pk, actor=staff, mode="fifo"),
    ):
        with pytest.raises(DecisionError, match="charge run has started"):
            call()

    assert statuses(approved, pending) == before
    assert PreOrderLogEntry.objects.count() == log_count
    assert not EventLogEntry.objects.filter(action="auto_fulfil").exists()


# --- Auto-fulfil -----------------------------------------------------------------------------


def test_auto_fulfil_fifo_approves_the_earliest_pending_up_to_places_left(review, place, staff):
    add_tickets(review, 4)
    already = place(review, status=Status.APPROVED, minutes=0)
    denied = place(review, status=Status.DENIED, minutes=1)
    place(review, status=Status.CANCELLED, minutes=2)
    minutes = [30, 10, 50, 20, 40]
    pending = [place(review, minutes=m) for m in minutes]
    by_time = [p for _, p in sorted(zip(minutes, pending, strict=True), key=lambda x: x[0])]

    result = decisions.auto_fulfil(review.pk, actor=staff, mode="fifo")

    assert result.changed == [p.pk for p in by_time[:3]]
    assert sorted(result.no_supply) == sorted(p.pk for p in by_time[3:])
    assert result.left == 0
    assert result.seed is None
    assert statuses(*by_time) == [Status.APPROVED] * 3 + [Status.PENDING] * 2
    assert statuses(already, denied) == [Status.APPROVED, Status.DENIED]
    entry = EventLogEntry.objects.get(action="auto_fulfil")
    assert entry.event_id == review.pk and entry.actor_id == staff.pk
    assert entry.data["mode"] == "fifo"
    assert entry.data["places"] == 3
    assert entry.data["candidates"] == sorted(p.pk for p in pending)
    assert entry.data["approved"] == sorted(p.pk for p in by_time[:3])
    logs = PreOrderLogEntry.objects.filter(to_status=Status.APPROVED, source="staff")
    assert logs.count() == 3
    assert all(log.note.startswith("Auto-fulfil") for log in logs)


def test_auto_fulfil_fifo_records_no_ballot_seed(review, place, staff):
    """A seed typed in the form means nothing to first come, first served: the log must not
    call the draw a ballot."""
    add_tickets(review, 1)
    place(review)

    result = decisions.auto_fulfil(review.pk, actor=staff, mode="fifo", seed=5)

    entry = EventLogEntry.objects.get(action="auto_fulfil")
    assert result.seed is None
    assert entry.data["seed"] is None
    assert "ballot" not in entry.detail.lower()


def test_auto_fulfil_uses_the_events_mode_by_default(make_event, place, staff):
    event = make_event(fulfilment_mode=Event.FulfilmentMode.BALLOT)
    close_window(event.cycle)
    add_tickets(event, 1)
    for i in range(3):
        place(event, minutes=i)

    result = decisions.auto_fulfil(event.pk, actor=staff)

    assert result.seed is not None
    assert len(result.changed) == 1
    assert EventLogEntry.objects.get(action="auto_fulfil").data["mode"] == "ballot"


def test_auto_fulfil_refuses_an_unknown_mode(review, place, staff):
    add_tickets(review, 1)
    preorder = place(review)
    with pytest.raises(DecisionError):
        decisions.auto_fulfil(review.pk, actor=staff, mode="loudest")
    assert statuses(preorder) == [Status.PENDING]


def test_draw_ballot_is_a_pure_function():
    candidates = [17, 3, 99, 42, 8, 23, 61, 5]
    copy = list(candidates)

    first = decisions.draw_ballot(candidates, 3, seed=2026)
    second = decisions.draw_ballot(list(reversed(candidates)), 3, seed=2026)

    assert candidates == copy, "the candidates list is not modified"
    assert first == second == decisions.draw_ballot(candidates, 3, seed=2026)
    assert len(first) == 3 and set(first) <= set(candidates) and first == sorted(first)
    draws = {tuple(decisions.draw_ballot(candidates, 3, seed=s)) for s in range(20)}
    assert len(draws) > 1, "different seeds give different draws"
    assert decisions.draw_ballot(candidates, 8, seed=1) == sorted(candidates)
    assert decisions.draw_ballot(candidates, 20, seed=1) == sorted(candidates)
    assert decisions.draw_ballot(candidates, 0, seed=1) == []
    assert decisions.draw_ballot([], 3, seed=1) == []


def test_ballot_with_a_fixed_seed_is_deterministic(review, place, staff):
    add_tickets(review, 3)
    pending = [place(review, minutes=i) for i in range(10)]
    ids = sorted(p.pk for p in pending)

    first = decisions.auto_fulfil(review.pk, actor=staff, mode="ballot", seed=424242)
    assert first.seed == 424242
    assert len(first.changed) == 3
    assert sorted(first.changed) == decisions.draw_ballot(ids, 3, 424242)
    # Same seed, same candidates again: the same winners.
    PreOrder.objects.filter(pk__in=ids).update(status=Status.PENDING)
    second = decisions.auto_fulfil(review.pk, actor=staff, mode="ballot", seed=424242)

    assert sorted(second.changed) == sorted(first.changed)
    assert sorted(second.no_supply) == sorted(set(ids) - set(first.changed))


def test_ballot_is_recorded_and_can_be_verified(review, place, staff):
    add_tickets(review, 2)
    pending = [place(review, minutes=i) for i in range(6)]

    result = decisions.auto_fulfil(review.pk, actor=staff, mode="ballot", seed=7)

    entry = EventLogEntry.objects.get(action="auto_fulfil")
    assert entry.event_id == review.pk
    assert entry.cycle_id == review.cycle_id
    assert entry.actor_id == staff.pk
    assert entry.data == {
        "mode": "ballot",
        "seed": 7,
        "places": 2,
        "candidates": sorted(p.pk for p in pending),
        "approved": sorted(result.changed),
    }
    assert "seed 7" in entry.detail
    assert decisions.verify_ballot(entry) is True
    notes = set(
        PreOrderLogEntry.objects.filter(preorder_id__in=result.changed).values_list(
            "note", flat=True
        )
    )
    assert notes == {"Auto-fulfil: Fair ballot (random draw), seed 7"}

    # Re-read from the database, tamper with the winners: verification fails.
    stored = EventLogEntry.objects.get(pk=entry.pk)
    loser = next(pk for pk in stored.data["candidates"] if pk not in stored.data["approved"])
    stored.data["approved"] = sorted([stored.data["approved"][0], loser])
    assert decisions.verify_ballot(stored) is False
    tampered_seed = EventLogEntry.objects.get(pk=entry.pk)
    tampered_seed.data["approved"] = []
    assert decisions.verify_ballot(tampered_seed) is False


def test_verify_ballot_refuses_entries_that_are_not_ballots(review, place, staff):
    add_tickets(review, 1)
    place(review)
    decisions.auto_fulfil(review.pk, actor=staff, mode="fifo")
    with pytest.raises(ValueError, match="not a ballot"):
        decisions.verify_ballot(EventLogEntry.objects.get(action="auto_fulfil"))


def test_ballot_approves_everyone_when_supply_suffices(review, place, staff):
    add_tickets(review, 10)
    pending = [place(review, minutes=i) for i in range(4)]

    result = decisions.auto_fulfil(review.pk, actor=staff, mode="ballot", seed=99)

    assert sorted(result.changed) == sorted(p.pk for p in pending)
    assert result.no_supply == []
    assert result.left == 6
    assert decisions.verify_ballot(EventLogEntry.objects.get(action="auto_fulfil"))


@pytest.mark.parametrize("mode", ["fifo", "ballot"])
def test_auto_fulfil_with_an_empty_pool_approves_nobody(review, place, staff, mode):
    pending = [place(review, minutes=i) for i in range(3)]

    result = decisions.auto_fulfil(review.pk, actor=staff, mode=mode, seed=5)

    assert result.changed == []
    assert sorted(result.no_supply) == sorted(p.pk for p in pending)
    assert statuses(*pending) == [Status.PENDING] * 3
    entry = EventLogEntry.objects.get(action="auto_fulfil")
    assert entry.data["approved"] == [] and entry.data["places"] == 0


def test_auto_fulfil_when_the_pool_is_already_full(review, place, staff):
    add_tickets(review, 1)
    place(review, status=Status.PAID)
    pending = place(review)

    result = decisions.auto_fulfil(review.pk, actor=staff, mode="fifo")

    assert result.changed == [] and result.no_supply == [pending.pk]
    assert pool_summary(review.pk).left == 0


def test_auto_fulfil_without_a_seed_draws_and_records_one(review, place, staff):
    add_tickets(review, 1)
    for i in range(4):
        place(review, minutes=i)

    result = decisions.auto_fulfil(review.pk, actor=staff, mode="ballot")

    entry = EventLogEntry.objects.get(action="auto_fulfil")
    assert isinstance(result.seed, int)
    assert entry.data["seed"] == result.seed
    assert decisions.verify_ballot(entry)


# --- The lock at the start of the charge run --------------------------------------------------


def test_lock_decisions_marks_pending_not_allocated_and_tells_each_member_once(
    review, place, staff, mailoutbox, django_capture_on_commit_callbacks, settings
):
    settings.PRESALE_WAITLIST = False  # the brief's rule: not allocated at the lock
    add_tickets(review, 5)
    approved = place(review, minutes=1)
    staff_denied = place(review, minutes=2)
    cancelled = place(review, status=Status.CANCELLED, minutes=3)
    pending = [place(review, minutes=10 + i) for i in range(3)]
    decisions.approve(review.pk, [approved.pk], actor=staff)
    decisions.deny(review.pk, [staff_denied.pk], actor=staff)
    before = timezone.now()

    with django_capture_on_commit_callbacks(execute=True):
        not_allocated = decisions.lock_decisions(review.cycle_id)

    cycle = PresaleCycle.objects.get(pk=review.cycle_id)
    assert cycle.charge_run_started_at is not None and cycle.charge_run_started_at >= before
    assert cycle.decisions_locked
    assert not_allocated == 4
    assert statuses(*pending) == [Status.NOT_ALLOCATED] * 3
    assert statuses(approved, staff_denied, cancelled) == [
        Status.APPROVED,
        Status.DENIED,
        Status.CANCELLED,
    ]
    system = PreOrderLogEntry.objects.filter(source=PreOrderLogEntry.Source.SYSTEM)
    assert sorted(system.values_list("preorder_id", flat=True)) == sorted(p.pk for p in pending)
    assert {(e.from_status, e.to_status, e.actor_id) for e in system} == {
        (Status.PENDING, Status.NOT_ALLOCATED, None)
    }
    assert all(e.created_at == cycle.charge_run_started_at for e in system)

    told = [*pending, staff_denied]
    emails = OutboundEmail.objects.filter(template="not_allocated")
    assert sorted(emails.values_list("preorder_id", flat=True)) == sorted(p.pk for p in told)
    assert sorted(emails.values_list("to_email", flat=True)) == sorted(p.member.email for p in told)
    assert sorted(mail.to[0] for mail in mailoutbox) == sorted(p.member.email for p in told)
    for mail in mailoutbox:
        assert mail.subject == f"No ticket this time: {review.title}"
        assert "No charge was made" in mail.body
        assert "No charge was made" in mail.alternatives[0].content
    assert set(emails.values_list("status", flat=True)) == {OutboundEmail.Status.SENT}


def test_lock_decisions_twice_does_nothing_the_second_time(
    review, place, mailoutbox, django_capture_on_commit_callbacks, settings
):
    settings.PRESALE_WAITLIST = False
    add_tickets(review, 1)
    [place(review, minutes=i) for i in range(2)]
    with django_capture_on_commit_callbacks(execute=True):
        assert decisions.lock_decisions(review.cycle_id) == 2
    started = PresaleCycle.objects.get(pk=review.cycle_id).charge_run_started_at
    logs = PreOrderLogEntry.objects.count()

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert decisions.lock_decisions(review.cycle_id) == 0

    assert callbacks == []
    assert OutboundEmail.objects.count() == 2
    assert len(mailoutbox) == 2
    assert PreOrderLogEntry.objects.count() == logs
    assert PresaleCycle.objects.get(pk=review.cycle_id).charge_run_started_at == started


def test_lock_decisions_without_auto_fulfil_approves_nobody(review, place):
    add_tickets(review, 5)
    pending = [place(review, minutes=i) for i in range(2)]

    decisions.lock_decisions(review.cycle_id)

    assert statuses(*pending) == [Status.WAITLISTED] * 2
    assert not EventLogEntry.objects.filter(action="auto_fulfil").exists()


def test_lock_decisions_auto_fulfils_each_event_by_its_own_mode(
    settings, make_event, place, django_capture_on_commit_callbacks
):
    settings.PRESALE_AUTO_FULFIL = True
    settings.PRESALE_WAITLIST = False
    fifo = make_event(title="First come", fulfilment_mode="fifo")
    ballot = make_event(title="Ballot", fulfilment_mode="ballot")
    close_window(fifo.cycle)
    add_tickets(fifo, 2)
    add_tickets(ballot, 2)
    fifo_minutes = [30, 10, 40, 20]
    fifo_pending = [place(fifo, minutes=m) for m in fifo_minutes]
    fifo_by_time = [
        p for _, p in sorted(zip(fifo_minutes, fifo_pending, strict=True), key=lambda x: x[0])
    ]
    ballot_pending = [place(ballot, minutes=i) for i in range(5)]

    with django_capture_on_commit_callbacks(execute=True):
        not_allocated = decisions.lock_decisions(fifo.cycle_id)

    assert not_allocated == 2 + 3
    assert statuses(*fifo_by_time) == [Status.APPROVED] * 2 + [Status.NOT_ALLOCATED] * 2
    assert sorted(statuses(*ballot_pending)) == [Status.APPROVED] * 2 + [Status.NOT_ALLOCATED] * 3
    entries = {e.event_id: e for e in EventLogEntry.objects.filter(action="auto_fulfil")}
    assert entries[fifo.pk].data["mode"] == "fifo"
    assert entries[ballot.pk].data["mode"] == "ballot"
    assert entries[fifo.pk].actor_id is None and entries[ballot.pk].actor_id is None
    assert decisions.verify_ballot(entries[ballot.pk])
    won = PreOrder.objects.filter(event=ballot, status=Status.APPROVED).values_list("pk", flat=True)
    assert sorted(won) == entries[ballot.pk].data["approved"]
    assert OutboundEmail.objects.filter(template="not_allocated").count() == 5
    assert PresaleCycle.objects.get(pk=fifo.cycle_id).decisions_locked


# --- Closing the window early ------------------------------------------------------------------


def test_close_window_early(open_cycle, staff):
    assert event_selectors.open_cycle() == open_cycle
    before = timezone.now()

    closed = close_window_early(open_cycle.pk, actor=staff)

    stored = PresaleCycle.objects.get(pk=open_cycle.pk)
    assert stored.closed_early_at is not None and stored.closed_early_at >= before
    assert closed.closed_early_at == stored.closed_early_at
    assert stored.window_ends_at == stored.closed_early_at
    assert not stored.is_open
    entry = EventLogEntry.objects.get(action="window_closed_early")
    assert entry.cycle_id == open_cycle.pk and entry.actor_id == staff.pk
    assert entry.event_id is None
    # Members now see the window closed.
    assert event_selectors.open_cycle() is None


def test_close_window_early_is_refused_when_already_closed(open_cycle, staff):
    close_window_early(open_cycle.pk, actor=staff)
    first = PresaleCycle.objects.get(pk=open_cycle.pk).closed_early_at

    with pytest.raises(CycleError, match="already closed"):
        close_window_early(open_cycle.pk, actor=staff)

    assert PresaleCycle.objects.get(pk=open_cycle.pk).closed_early_at == first
    assert EventLogEntry.objects.filter(action="window_closed_early").count() == 1


def test_close_window_early_is_refused_after_the_normal_close(open_cycle, staff):
    with time_machine.travel(open_cycle.closes_at + dt.timedelta(hours=1), tick=False):
        with pytest.raises(CycleError, match="already closed"):
            close_window_early(open_cycle.pk, actor=staff)
    assert PresaleCycle.objects.get(pk=open_cycle.pk).closed_early_at is None


def test_close_window_early_is_refused_before_the_window_opens(open_cycle, staff):
    later = event_selectors.cycle_for_week(open_cycle.week_start + dt.timedelta(weeks=1))

    with pytest.raises(CycleError, match="not opened yet"):
        close_window_early(later.pk, actor=staff)

    assert PresaleCycle.objects.get(pk=later.pk).closed_early_at is None
    assert not EventLogEntry.objects.exists()


def test_closing_early_starts_the_review(event, place, staff):
    add_tickets(event, 1)
    preorder = place(event)
    with pytest.raises(DecisionError):
        decisions.approve(event.pk, [preorder.pk], actor=staff)

    close_window_early(event.cycle_id, actor=staff)

    assert decisions.approve(event.pk, [preorder.pk], actor=staff).changed == [preorder.pk]
