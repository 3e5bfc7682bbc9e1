"""The five answers at the door, what each one records, and a manager's undo."""

import datetime as dt

import pytest
import time_machine
from django.db import IntegrityError, transaction
from django.utils import timezone

from events.models import EventLogEntry
from preorders.states import Status
from tickets import checkin
from tickets.checkin import CheckInError
from tickets.models import CheckIn, DoorScan, Ticket

pytestmark = pytest.mark.django_db

Result = DoorScan.Result
# 19:42 in London on a winter evening (GMT), so the clock reads the same in UTC.
EVENING = dt.datetime(2026, 12, 5, 19, 42, tzinfo=dt.UTC)


@pytest.fixture
def event(make_event):
    return make_event(title="Jazz in the Cellar")


@pytest.fixture
def alice_ticket(event, member, issue_ticket):
    return issue_ticket(event, member, code="HC-7K3M-Q9TX-2B4R")


def state() -> tuple:
    """Everything a scan could change besides its own record."""
    return (
        list(CheckIn.objects.order_by("pk").values_list("pk", "ticket_id", "undone_at")),
        list(Ticket.objects.order_by("pk").values_list("pk", "preorder_id", "voided_at")),
    )


def test_a_valid_ticket_is_checked_in_and_welcomed_by_name(event, alice_ticket, door_staff):
    answer = checkin.check_in(event.pk, "HC-7K3M-Q9TX-2B4R", door=door_staff)

    assert answer.result == Result.VALID and answer.admitted
    assert answer.headline == "Valid — welcome Alice Archer"
    live = CheckIn.objects.get(ticket=alice_ticket)
    assert live.checked_in_by == door_staff and live.undone_at is None
    scan = DoorScan.objects.get()
    assert (scan.result, scan.ticket, scan.check_in, scan.scanned_by, scan.event) == (
        Result.VALID,
        alice_ticket,
        live,
        door_staff,
        event,
    )
    assert checkin.door_count(event.pk) == checkin.DoorCount(checked_in=1, issued=1)


def test_a_paid_ticket_whose_email_is_not_sent_yet_is_valid(event, issue_ticket, door_staff):
    ticket = issue_ticket(event, status=Status.PAID)
    assert checkin.check_in(event.pk, ticket.code, door=door_staff).result == Result.VALID


def test_a_second_scan_says_when_and_by_whom(event, alice_ticket, door_staff, make_staff):
    with time_machine.travel(EVENING, tick=False):
        checkin.check_in(event.pk, alice_ticket.code, door=door_staff)
    other_door = make_staff("Door", full_name="Olive Other")
    with time_machine.travel(EVENING + dt.timedelta(minutes=5), tick=False):
        before = state()
        answer = checkin.check_in(event.pk, alice_ticket.code, door=other_door)

    assert answer.result == Result.ALREADY_CHECKED_IN and not answer.admitted
    assert answer.headline == "Already checked in at 19:42 by Dan Door"
    assert "Alice Archer" in answer.detail
    assert state() == before
    scan = DoorScan.objects.first()  # newest first
    assert scan.result == Result.ALREADY_CHECKED_IN
    assert scan.check_in == CheckIn.objects.get()
    assert scan.scanned_by == other_door


def test_an_earlier_day_is_named_in_the_already_answer(event, alice_ticket, door_staff):
    with time_machine.travel(EVENING, tick=False):
        checkin.check_in(event.pk, alice_ticket.code, door=door_staff)
    with time_machine.travel(EVENING + dt.timedelta(days=1), tick=False):
        answer = checkin.check_in(event.pk, alice_ticket.code, door=door_staff)
    assert answer.headline == "Already checked in at 19:42 on Sat 5 Dec by Dan Door"


def test_summer_time_is_london_time(event, alice_ticket, door_staff):
    with time_machine.travel(dt.datetime(2027, 6, 5, 18, 42, tzinfo=dt.UTC), tick=False):
        checkin.check_in(event.pk, alice_ticket.code, door=door_staff)
        answer = checkin.check_in(event.pk, alice_ticket.code, door=door_staff)
    assert answer.headline.startswith("Already checked in at 19:42 by")


def test_a_ticket_for_another_event_names_it_and_its_date(
    event, make_event, alice_ticket, door_staff
):
    other = make_event(
        title="Folk Night", starts_at=dt.datetime(2026, 12, 12, 20, 0, tzinfo=dt.UTC)
    )
    before = state()
    answer = checkin.check_in(other.pk, alice_ticket.code, door=door_staff)

    assert answer.result == Result.WRONG_EVENT
    assert answer.headline == "Not for this event"
    assert answer.detail == (
        f"Ticket HC-7K3M-Q9TX-2B4R is for Jazz in the Cellar on "
        f"{checkin.london.short_datetime(event.starts_at)}."
    )
    assert state() == before
    assert DoorScan.objects.get().event == other


def test_a_refunded_ticket_is_refused(event, issue_ticket, door_staff):
    ticket = issue_ticket(event, status=Status.REFUNDED)
    before = state()
    answer = checkin.check_in(event.pk, ticket.code, door=door_staff)
    assert (answer.result, answer.headline) == (Result.VOID, "Refunded or void")
    assert "was refunded" in answer.detail
    assert state() == before


def test_a_ticket_taken_back_by_a_refund_is_refused_as_refunded(
    event, alice_ticket, door_staff, staff
):
    """A refund unassigns and voids the ticket (payments.refunds.complete_refund does this):
    the door is still told it was refunded, not merely voided."""
    from tickets.services import void_refunded_ticket

    preorder = alice_ticket.preorder
    with transaction.atomic():
        void_refunded_ticket(preorder, actor=staff, note="Cannot come")
        preorder.status = Status.REFUNDED
        preorder.save(update_fields=["status"])
    before = state()
    answer = checkin.check_in(event.pk, alice_ticket.code, door=door_staff)
    assert (answer.result, answer.headline) == (Result.VOID, "Refunded or void")
    assert answer.detail == "Ticket HC-7K3M-Q9TX-2B4R was refunded. Do not let it in."
    assert answer.member == ""  # the ticket is nobody's any more
    assert state() == before


def test_a_void_ticket_is_refused(event, staff, door_staff):
    from tickets.services import generate_tickets, void_ticket

    generate_tickets(event.pk, 1, actor=staff)
    ticket = void_ticket(Ticket.objects.get(event=event).pk, actor=staff)
    answer = checkin.check_in(event.pk, ticket.code, door=door_staff)
    assert answer.result == Result.VOID and "was voided" in answer.detail
    assert not CheckIn.objects.exists()


def test_a_refund_after_check_in_leaves_the_record_and_refuses_the_next_scan(
    event, alice_ticket, door_staff
):
    checkin.check_in(event.pk, alice_ticket.code, door=door_staff)
    alice_ticket.preorder.status = Status.REFUNDED
    alice_ticket.preorder.save(update_fields=["status"])
    assert checkin.check_in(event.pk, alice_ticket.code, door=door_staff).result == Result.VOID
    assert CheckIn.objects.filter(ticket=alice_ticket, undone_at__isnull=True).count() == 1


@pytest.mark.parametrize(
    "text",
    [
        "HC-0000-0000-0000",  # well formed, but no such ticket
        "OTHERCLUB-12345",  # another club's code
        "https://harrys.club/tickets/HC-7K3M-Q9TX-2B4R",  # a URL containing a real code
        "harrys.club/HC-7K3M-Q9TX-2B4R",
        "HC-7K3M-Q9TX-2B4R; DROP TABLE tickets_ticket;--",
        "HC-7K3M-Q9TX-2B4R\x00",
        "X" * 100_000,
        "   ",
        "<script>alert(1)</script>",
        "HC-7K3M-Q9TX-2B4Rx",
        "%",
        "HC-7K3M-Q9TX-%",
        # Unicode: look-alike letters, full-width forms, invisible and bidi characters, emoji,
        # a lone surrogate (which no database column could store).
        "\u041d\u0421-7K3M-Q9TX-2B4R",  # Cyrillic EN and ES in place of H and C
        "\uff28\uff23-\uff17\uff2b\uff13\uff2d-Q9TX-2B4R",  # full-width HC-7K3M
        "HC-7K3M-Q9TX-2B4R\u200b",
        "\u202eR4B2-XT9Q-M3K7-CH",
        "\U0001f39f\ufe0f HC-7K3M-Q9TX-2B4R",
        "HC-7K3M-Q9TX-2B4R\ud800",
    ],
)
def test_a_wrong_or_hostile_input_is_an_unknown_code_and_changes_nothing(
    event, alice_ticket, door_staff, text
):
    before = state()
    answer = checkin.check_in(event.pk, text, door=door_staff)
    assert (answer.result, answer.headline) == (Result.UNKNOWN, "Unknown code")
    assert state() == before
    scan = DoorScan.objects.get()
    assert scan.ticket is None and scan.check_in is None
    assert len(scan.code) <= 64


def test_a_pool_ticket_nobody_bought_is_unknown(event, staff, door_staff):
    from tickets.services import generate_tickets

    generate_tickets(event.pk, 1, actor=staff)
    code = Ticket.objects.get(event=event).code
    assert checkin.check_in(event.pk, code, door=door_staff).result == Result.UNKNOWN
    assert not CheckIn.objects.exists()


def test_a_code_typed_in_lower_case_or_with_spaces_is_found(event, alice_ticket, door_staff):
    answer = checkin.check_in(event.pk, "  hc-7k3m-q9tx-2b4r \n", door=door_staff)
    assert answer.result == Result.VALID


def test_the_event_must_exist(door_staff):
    with pytest.raises(CheckInError):
        checkin.check_in(999_999, "HC-7K3M-Q9TX-2B4R", door=door_staff)
    assert not DoorScan.objects.exists()


def test_the_count_is_live_checked_in_over_issued(event, issue_ticket, door_staff, staff):
    tickets = [issue_ticket(event) for _ in range(3)]
    issue_ticket(event, status=Status.REFUNDED)  # not in anyone's hands
    assert checkin.door_count(event.pk) == checkin.DoorCount(checked_in=0, issued=3)
    for ticket in tickets[:2]:
        checkin.check_in(event.pk, ticket.code, door=door_staff)
    checkin.check_in(event.pk, tickets[0].code, door=door_staff)  # a repeat counts once
    assert checkin.door_count(event.pk) == checkin.DoorCount(checked_in=2, issued=3)
    first = CheckIn.objects.get(ticket=tickets[0])
    checkin.undo_check_in(first.pk, actor=staff, reason="Scanned by mistake")
    assert checkin.door_count(event.pk) == checkin.DoorCount(checked_in=1, issued=3)


# --- Undo ---------------------------------------------------------------------------------------


def test_a_manager_undoes_a_check_in_with_a_reason_and_the_ticket_can_come_in_again(
    event, alice_ticket, door_staff, staff
):
    checkin.check_in(event.pk, alice_ticket.code, door=door_staff)
    first = CheckIn.objects.get()

    undone = checkin.undo_check_in(first.pk, actor=staff, reason="  Scanned the wrong phone  ")

    assert undone.undone_by == staff and undone.undo_reason == "Scanned the wrong phone"
    log = EventLogEntry.objects.get(action="check_in_undo")
    assert log.actor == staff and "Scanned the wrong phone" in log.detail
    assert log.data == {"check_in_id": first.pk, "ticket_id": alice_ticket.pk}
    again = checkin.check_in(event.pk, alice_ticket.code, door=door_staff)
    assert again.result == Result.VALID
    assert CheckIn.objects.filter(ticket=alice_ticket).count() == 2
    assert list(checkin.attendance(event.pk)) == [first, CheckIn.objects.get(undone_at=None)]


@pytest.mark.parametrize("reason", ["", "   ", "x" * 501, "mistake\x00", "oops\x1b[31m"])
def test_an_undo_needs_a_short_reason(event, alice_ticket, door_staff, staff, reason):
    checkin.check_in(event.pk, alice_ticket.code, door=door_staff)
    with pytest.raises(CheckInError):
        checkin.undo_check_in(CheckIn.objects.get().pk, actor=staff, reason=reason)
    assert CheckIn.objects.get().undone_at is None
    assert not EventLogEntry.objects.filter(action="check_in_undo").exists()


def test_an_undo_reason_may_have_several_lines(event, alice_ticket, door_staff, staff):
    checkin.check_in(event.pk, alice_ticket.code, door=door_staff)
    undone = checkin.undo_check_in(
        CheckIn.objects.get().pk, actor=staff, reason="Scanned by mistake.\r\nShe was outside."
    )
    assert undone.undo_reason == "Scanned by mistake.\nShe was outside."


def test_an_undo_happens_once(event, alice_ticket, door_staff, staff):
    checkin.check_in(event.pk, alice_ticket.code, door=door_staff)
    pk = CheckIn.objects.get().pk
    checkin.undo_check_in(pk, actor=staff, reason="Mistake")
    with pytest.raises(CheckInError, match="already undone"):
        checkin.undo_check_in(pk, actor=staff, reason="Again")
    with pytest.raises(CheckInError, match="does not exist"):
        checkin.undo_check_in(pk + 1000, actor=staff, reason="Nothing")
    assert CheckIn.objects.get().undo_reason == "Mistake"


# --- The database's own guarantees ---------------------------------------------------------------


def test_the_database_refuses_a_second_live_check_in(alice_ticket, door_staff):
    CheckIn.objects.create(ticket=alice_ticket, checked_in_by=door_staff)
    with pytest.raises(IntegrityError), transaction.atomic():
        CheckIn.objects.create(ticket=alice_ticket, checked_in_by=door_staff)


def test_the_database_refuses_an_undo_without_a_reason(alice_ticket, door_staff):
    live = CheckIn.objects.create(ticket=alice_ticket, checked_in_by=door_staff)
    with pytest.raises(IntegrityError), transaction.atomic():
        CheckIn.objects.filter(pk=live.pk).update(undone_at=timezone.now())


def test_the_database_refuses_a_valid_scan_without_its_check_in(event, door_staff):
    with pytest.raises(IntegrityError), transaction.atomic():
        DoorScan.objects.create(event=event, scanned_by=door_staff, result=Result.VALID)


# --- Which events the door sees -------------------------------------------------------------------


def test_the_door_lists_tonight_first_then_what_comes_next(make_event):
    now = timezone.now()
    later = make_event(title="In 3 days", starts_at=now + dt.timedelta(days=3))
    started = make_event(title="Started 3 h ago", starts_at=now - dt.timedelta(hours=3))
    make_event(title="Yesterday's", starts_at=now - dt.timedelta(hours=30))
    next_month = make_event(title="Next month", starts_at=now + dt.timedelta(days=30))
    assert checkin.door_events(now) == [started, later, next_month]
    assert checkin.door_events(now, limit=2) == [started, later]


def test_tonight_is_today_in_london_or_started_in_the_last_12_hours(make_event):
    # 23:30 London in summer is 22:30 UTC; just after midnight the late show is still tonight's.
    now = dt.datetime(2027, 6, 5, 22, 30, tzinfo=dt.UTC)
    today = make_event(starts_at=dt.datetime(2027, 6, 5, 18, 0, tzinfo=dt.UTC))
    tomorrow_morning = make_event(starts_at=dt.datetime(2027, 6, 6, 9, 0, tzinfo=dt.UTC))
    after_midnight = now + dt.timedelta(hours=1)  # 00:30 London, 6 June
    assert checkin.is_tonight(today, now) and checkin.is_tonight(today, after_midnight)
    assert not checkin.is_tonight(tomorrow_morning, now)
    assert not checkin.is_tonight(today, now + dt.timedelta(hours=13))
    late_show = make_event(starts_at=now + dt.timedelta(hours=2))  # 01:30 London, 6 June
    assert checkin.is_tonight(late_show, now)
