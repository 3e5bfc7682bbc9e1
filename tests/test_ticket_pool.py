"""The ticket pool: importing and generating codes, voiding, assignment, and the database's own
guarantees (one code, one ticket per pre-order, one pre-order per ticket)."""

import re
from itertools import chain, repeat

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from events.models import EventLogEntry
from preorders.models import PreOrder
from tickets import services
from tickets.models import Ticket
from tickets.selectors import pool_summaries, pool_summary
from tickets.services import (
    NoTicketAvailable,
    PoolError,
    assign_ticket,
    generate_tickets,
    import_ticket_codes,
    void_ticket,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def event(make_event):
    return make_event()


@pytest.fixture
def make_preorder(make_member):
    counter = {"n": 0}

    def make(event, status: str = "approved") -> PreOrder:
        counter["n"] += 1
        return PreOrder.objects.create(
            member=make_member(password=None),  # unusable password: skips the slow hashing
            event=event,
            cycle=event.cycle,
            status=status,
            amount_pence=1000,
            stripe_customer_id="cus_x",
            payment_method_id="pm_x",
            setup_intent_id=f"seti_pool_{counter['n']}",
        )

    return make


def add_tickets(event, *codes: str) -> list[Ticket]:
    return [Ticket.objects.create(event=event, code=code) for code in codes]


def codes_of(event) -> list[str]:
    return list(Ticket.objects.filter(event=event).values_list("code", flat=True))


def problem_texts(report) -> list[str]:
    return [str(problem) for problem in report.problems]


# --- Import ---------------------------------------------------------------------------------


def test_import_one_code_per_line(event, staff):
    report = import_ticket_codes(event.pk, "  A-1 \nB_2\nc.3/x\n", actor=staff)

    assert report.ok and report.imported == 3
    assert codes_of(event) == ["A-1", "B_2", "c.3/x"]
    entry = EventLogEntry.objects.get(event=event)
    assert (entry.action, entry.detail, entry.data) == (
        "pool_import",
        "Imported 3 codes",
        {"count": 3},
    )
    assert entry.actor == staff and entry.cycle == event.cycle


@pytest.mark.parametrize("header", ["code", "Code", "Ticket code", "TICKET_CODE", "ticket-codes"])
def test_import_skips_a_header_and_reads_the_first_csv_column(event, staff, header):
    text = f'{header},Seat,Price\r\n"BX-001",A1,25.00\r\nBX-002 , A2,25.00\r\n,,\r\n'

    report = import_ticket_codes(event.pk, text, actor=staff)

    assert report.ok, problem_texts(report)
    assert codes_of(event) == ["BX-001", "BX-002"]


@pytest.mark.parametrize("delimiter", [";", "\t"])
def test_import_reads_semicolon_and_tab_separated_exports(event, staff, delimiter):
    text = f"code{delimiter}seat\nBX-1{delimiter}A1\nBX-2{delimiter}A2\n"

    assert import_ticket_codes(event.pk, text, actor=staff).imported == 2
    assert codes_of(event) == ["BX-1", "BX-2"]


def test_blank_lines_around_the_codes_are_ignored(event, staff):
    assert import_ticket_codes(event.pk, "\n\n  \nAAA\nBBB\n\n\n", actor=staff).imported == 2


def assert_refused(event, report, *expected: str) -> None:
    """Nothing was imported, and each expected text is in some problem."""
    assert not report.ok and report.imported == 0
    assert Ticket.objects.filter(event=event).count() == 0
    assert not EventLogEntry.objects.filter(action="pool_import").exists()
    texts = problem_texts(report)
    for text in expected:
        assert any(text in problem for problem in texts), (text, texts)


def test_a_blank_line_between_codes_is_reported(event, staff):
    report = import_ticket_codes(event.pk, "AAA\nBBB\n\nCCC\n", actor=staff)

    assert_refused(event, report, "Line 3: empty line")


def test_a_row_without_a_code_in_its_first_column_is_reported(event, staff):
    report = import_ticket_codes(event.pk, "code,seat\nAAA,A1\n,A2\n", actor=staff)

    assert_refused(event, report, "Line 3: no code in the first column")


def test_a_code_longer_than_64_characters_is_reported(event, staff):
    report = import_ticket_codes(event.pk, "AAA\n" + "X" * 65 + "\n", actor=staff)

    assert_refused(event, report, "Line 2:", "65 characters long; a code has 64 at most")


@pytest.mark.parametrize(
    ("bad", "named"),
    [
        ("AB CD", "U+0020"),
        ("CAFÉ", "É"),
        ("A\x00B", "U+0000"),
        ("AB'C", "'"),
        ("A\u00a0B", "U+00A0"),
    ],
)
def test_characters_outside_the_allowed_set_are_reported(event, staff, bad, named):
    report = import_ticket_codes(event.pk, f"GOOD-1\n{bad}\n", actor=staff)

    assert_refused(event, report, "Line 2:", named, "may only use letters")


def test_duplicates_within_the_file_are_reported_with_their_lines(event, staff):
    report = import_ticket_codes(event.pk, "AAA\nBBB\nAAA\nCCC\nAAA\nBBB\n", actor=staff)

    assert_refused(
        event,
        report,
        "Line 1: “AAA” is listed more than once (lines 1, 3 and 5)",
        "Line 2: “BBB” is listed more than once (lines 2 and 6)",
    )


def test_codes_already_in_another_events_pool_are_reported(event, make_event, staff):
    other = make_event(title="Folk Night")
    add_tickets(other, "TAKEN-1")

    report = import_ticket_codes(event.pk, "NEW-1\nTAKEN-1\n", actor=staff)

    assert_refused(event, report, "Line 2: “TAKEN-1” is already in the pool of “Folk Night”")
    assert codes_of(other) == ["TAKEN-1"]


def test_codes_already_in_this_pool_are_reported(event, staff):
    add_tickets(event, "OLD-1")

    report = import_ticket_codes(event.pk, "NEW-1\nOLD-1\n", actor=staff)

    assert not report.ok
    assert "Line 2: “OLD-1” is already in this event's pool." in problem_texts(report)
    assert codes_of(event) == ["OLD-1"]


def test_more_than_10000_codes_at_once_is_refused(event, staff):
    text = "\n".join(f"C{i}" for i in range(10_001))

    assert_refused(event, import_ticket_codes(event.pk, text, actor=staff), "at most 10,000")


def test_exactly_10000_codes_are_imported(event, staff):
    text = "\n".join(f"C{i}" for i in range(10_000))

    assert import_ticket_codes(event.pk, text, actor=staff).imported == 10_000


@pytest.mark.parametrize("text", ["", "\n \n", "code\n", "Ticket code,seat\n\n"])
def test_a_text_without_codes_is_refused(event, staff, text):
    assert_refused(event, import_ticket_codes(event.pk, text, actor=staff), "No ticket codes found")


def test_every_problem_is_counted_but_only_twenty_are_shown(event, staff):
    text = "\n".join(["OK"] + [f"BAD {i}" for i in range(30)])

    report = import_ticket_codes(event.pk, text, actor=staff)

    assert len(report.problems) == 30
    assert len(report.shown_problems) == 20 and report.more_problems == 10
    assert report.shown_problems[0].line == 2
    assert report.headline == "Nothing was imported: 30 problems to fix first."


def test_a_race_on_a_code_imports_nothing(event, make_event, staff, monkeypatch):
    """Another pool takes a code between the check and the insert: the database says no."""
    add_tickets(make_event(title="Other"), "RACE-1")
    monkeypatch.setattr(services, "_existing_codes", lambda codes: {})

    report = import_ticket_codes(event.pk, "NEW-1\nRACE-1\n", actor=staff)

    assert_refused(event, report, "Nothing was imported")


# --- Generate -------------------------------------------------------------------------------

GENERATED = re.compile(r"HC-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}")


def test_generate_makes_unguessable_unique_codes(event, staff):
    assert generate_tickets(event.pk, 500, actor=staff) == 500

    codes = codes_of(event)
    assert len(codes) == len(set(codes)) == 500
    assert all(GENERATED.fullmatch(code) for code in codes)
    entry = EventLogEntry.objects.get(event=event)
    assert (entry.action, entry.detail, entry.data) == (
        "pool_generate",
        "Generated 500 codes",
        {"count": 500},
    )


@pytest.mark.parametrize("count", [0, -1, 5001, True, "3", 2.0, None])
def test_generate_refuses_counts_outside_1_to_5000(event, staff, count):
    with pytest.raises(PoolError, match="1 to 5,000"):
        generate_tickets(event.pk, count, actor=staff)
    assert Ticket.objects.count() == 0 and not EventLogEntry.objects.exists()


def test_generate_5000_at_once(event, staff):
    assert generate_tickets(event.pk, 5000, actor=staff) == 5000
    assert Ticket.objects.filter(event=event).count() == 5000


def test_generate_draws_again_when_a_code_is_taken(event, make_event, staff, monkeypatch):
    add_tickets(make_event(title="Other"), "HC-0000-0000-0000")
    fresh = (f"HC-0000-0000-{i:04d}" for i in range(1, 100))
    drawn = chain(repeat("HC-0000-0000-0000", 3), fresh)
    monkeypatch.setattr(services, "new_ticket_code", lambda: next(drawn))

    generate_tickets(event.pk, 2, actor=staff)

    assert sorted(codes_of(event)) == ["HC-0000-0000-0001", "HC-0000-0000-0002"]


def test_new_codes_look_random(event):
    codes = {services.new_ticket_code() for _ in range(2000)}
    assert len(codes) == 2000
    assert all(GENERATED.fullmatch(code) for code in codes)


def test_pool_changes_on_a_missing_event_are_refused(staff):
    with pytest.raises(PoolError, match="does not exist"):
        generate_tickets(999_999, 1, actor=staff)
    with pytest.raises(PoolError, match="does not exist"):
        import_ticket_codes(999_999, "AAA", actor=staff)
    assert not Ticket.objects.exists()


# --- Void ------------------------------------------------------------------------------------


def test_void_an_available_ticket(event, staff, make_preorder):
    first, _ = add_tickets(event, "T1", "T2")
    make_preorder(event)  # one place held; the other ticket still covers it

    voided = void_ticket(first.pk, actor=staff)

    first.refresh_from_db()
    assert first.state == "void" and first.voided_by == staff and voided.pk == first.pk
    assert pool_summary(event.pk).supply == 1
    entry = EventLogEntry.objects.get(event=event)
    assert (entry.action, entry.detail) == ("ticket_void", "Voided ticket T1")


def test_void_refuses_an_assigned_ticket(event, staff, make_preorder):
    (ticket,) = add_tickets(event, "T1")
    preorder = make_preorder(event, status="paid")
    assign_ticket(preorder)

    with pytest.raises(PoolError, match=r"assigned to .* cannot be voided"):
        void_ticket(ticket.pk, actor=staff)
    ticket.refresh_from_db()
    assert ticket.voided_at is None and ticket.preorder_id == preorder.pk


def test_void_refuses_what_would_undercut_the_approved_places(event, staff, make_preorder):
    first, _ = add_tickets(event, "T1", "T2")
    make_preorder(event)
    make_preorder(event, status="charging")

    with pytest.raises(PoolError, match="leave 1 tickets for 2 approved places"):
        void_ticket(first.pk, actor=staff)
    assert pool_summary(event.pk).supply == 2
    assert not EventLogEntry.objects.exists()


def test_pending_and_denied_pre_orders_hold_no_place(event, staff, make_preorder):
    (ticket,) = add_tickets(event, "T1")
    make_preorder(event, status="pending")
    make_preorder(event, status="denied")

    void_ticket(ticket.pk, actor=staff)

    assert pool_summary(event.pk).supply == 0


def test_void_refuses_a_void_or_missing_ticket(event, staff):
    (ticket,) = add_tickets(event, "T1")
    void_ticket(ticket.pk, actor=staff)

    with pytest.raises(PoolError, match="already void"):
        void_ticket(ticket.pk, actor=staff)
    with pytest.raises(PoolError, match="does not exist"):
        void_ticket(999_999, actor=staff)
    assert EventLogEntry.objects.count() == 1


# --- Assignment ------------------------------------------------------------------------------


def test_assign_gives_one_ticket_and_the_same_one_again(event, make_preorder):
    add_tickets(event, "T1", "T2")
    preorder = make_preorder(event, status="paid")

    ticket = assign_ticket(preorder)
    again = assign_ticket(preorder)

    assert ticket.code == "T1" and again.pk == ticket.pk
    assert Ticket.objects.filter(preorder=preorder).count() == 1
    assert ticket.assigned_at is not None


def test_assign_never_gives_a_void_ticket(event, staff, make_preorder):
    void, _ = add_tickets(event, "T1", "T2")
    void_ticket(void.pk, actor=staff)

    assert assign_ticket(make_preorder(event, status="paid")).code == "T2"


def test_assign_raises_when_the_pool_is_empty(event, make_event, staff, make_preorder):
    (ticket,) = add_tickets(event, "T1")
    add_tickets(make_event(title="Other"), "ELSEWHERE")
    void_ticket(ticket.pk, actor=staff)

    with pytest.raises(NoTicketAvailable):
        assign_ticket(make_preorder(event, status="paid"))


def test_assign_gives_different_tickets_to_different_pre_orders(event, make_preorder):
    add_tickets(event, "T1", "T2")

    first = assign_ticket(make_preorder(event, status="paid"))
    second = assign_ticket(make_preorder(event, status="paid"))

    assert {first.code, second.code} == {"T1", "T2"}
    with pytest.raises(NoTicketAvailable):
        assign_ticket(make_preorder(event, status="paid"))


# --- What the database itself refuses -------------------------------------------------------


def test_the_database_refuses_a_code_twice(event, make_event):
    add_tickets(event, "SAME")
    with pytest.raises(IntegrityError), transaction.atomic():
        add_tickets(make_event(title="Other"), "SAME")


def test_the_database_refuses_one_pre_order_on_two_tickets(event, make_preorder):
    first, second = add_tickets(event, "T1", "T2")
    preorder = make_preorder(event, status="paid")
    now = timezone.now()
    Ticket.objects.filter(pk=first.pk).update(preorder=preorder, assigned_at=now)

    with pytest.raises(IntegrityError), transaction.atomic():
        Ticket.objects.filter(pk=second.pk).update(preorder=preorder, assigned_at=now)


def test_the_database_refuses_a_second_pre_order_on_an_assigned_ticket(event, make_preorder):
    """One ticket row has one pre-order column; giving the same code to another pre-order means
    a second row with that code, which the unique code refuses."""
    (ticket,) = add_tickets(event, "T1")
    first, second = make_preorder(event, status="paid"), make_preorder(event, status="paid")
    now = timezone.now()
    Ticket.objects.filter(pk=ticket.pk).update(preorder=first, assigned_at=now)

    with pytest.raises(IntegrityError), transaction.atomic():
        Ticket.objects.create(event=event, code="T1", preorder=second, assigned_at=now)


@pytest.mark.parametrize(
    "fields",
    [
        {"code": ""},
        {"assigned_at": "now"},  # assigned_at without a pre-order
        {"preorder": True},  # a pre-order without assigned_at
        {"preorder": True, "assigned_at": "now", "voided_at": "now"},  # assigned and void
    ],
)
def test_the_database_refuses_inconsistent_tickets(event, make_preorder, fields):
    now = timezone.now()
    values = {"event": event, "code": "T1"}
    for name, value in fields.items():
        if value == "now":
            value = now
        elif name == "preorder":
            value = make_preorder(event, status="paid")
        values[name] = value

    with pytest.raises(IntegrityError), transaction.atomic():
        Ticket.objects.create(**values)


# --- Pool summaries -------------------------------------------------------------------------


def test_pool_summaries_count_every_state_in_two_queries(
    make_event, staff, make_preorder, django_assert_num_queries
):
    busy, quiet, empty = make_event(title="Busy"), make_event(title="Quiet"), make_event()
    tickets = add_tickets(busy, *(f"B{i}" for i in range(10)))
    add_tickets(quiet, "Q1", "Q2")
    for ticket in tickets[:2]:
        void_ticket(ticket.pk, actor=staff)
    for status in ("paid", "ticket_sent", "paid"):
        paid = make_preorder(busy, status="paid")
        assign_ticket(paid)
        PreOrder.objects.filter(pk=paid.pk).update(status=status)
    for status in ("approved", "charging", "pending", "denied", "cancelled", "failed"):
        make_preorder(busy, status=status)
    make_preorder(quiet)

    with django_assert_num_queries(2):
        summaries = pool_summaries([busy.pk, quiet.pk, empty.pk])

    busy_summary = summaries[busy.pk]
    assert (busy_summary.supply, busy_summary.void, busy_summary.assigned) == (8, 2, 3)
    assert (busy_summary.holding, busy_summary.reserved, busy_summary.left) == (5, 2, 3)
    assert busy_summary.unassigned == 5
    quiet_summary = summaries[quiet.pk]
    assert (quiet_summary.supply, quiet_summary.holding, quiet_summary.left) == (2, 1, 1)
    assert summaries[empty.pk] == services.pool_summary(empty.pk)
    assert (summaries[empty.pk].supply, summaries[empty.pk].left) == (0, 0)
