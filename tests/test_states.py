"""The pre-order state machine: which moves are legal, and that every other move is an error."""

import itertools

import pytest

from preorders.states import (
    LIVE_STATUSES,
    MEMBER_EDITABLE_STATUSES,
    TRANSITIONS,
    IllegalTransition,
    Status,
    check_transition,
)

# Written out from DESIGN.md §3, not derived from TRANSITIONS, so the test can disagree with it.
LEGAL = {
    ("pending", "approved"),
    ("pending", "denied"),
    ("pending", "cancelled"),
    # Still pending when the charge run locks decisions (DESIGN.md §8: not a staff denial).
    ("pending", "not_allocated"),
    ("approved", "charging"),
    # Staff may change their decision until the charge run starts.
    ("approved", "denied"),
    ("denied", "approved"),
    ("charging", "paid"),
    ("charging", "failed"),
    # Not allocated at the lock (waitlist off), or waitlisted until a place frees or the cut-off.
    ("pending", "not_allocated"),
    ("pending", "waitlisted"),
    ("waitlisted", "approved"),
    ("waitlisted", "not_allocated"),
    # The bank asked for authentication: the member confirms, or the deadline passes.
    ("charging", "awaiting_authentication"),
    ("awaiting_authentication", "paid"),
    ("awaiting_authentication", "failed"),
    ("paid", "ticket_sent"),
    ("paid", "refunded"),
    # A manager's refund (or one made in Stripe's dashboard) after the ticket went out.
    ("ticket_sent", "refunded"),
}
ALL_PAIRS = set(itertools.product([s.value for s in Status], repeat=2))
ILLEGAL = sorted(ALL_PAIRS - LEGAL)


def test_the_statuses():
    assert {status.value: status.label for status in Status} == {
        "pending": "Pending",
        "approved": "Approved",
        "denied": "Denied",
        "not_allocated": "Not allocated",
        "waitlisted": "Waitlisted",
        "awaiting_authentication": "Awaiting authentication",
        "cancelled": "Cancelled",
        "charging": "Charging",
        "paid": "Paid",
        "ticket_sent": "Ticket sent",
        "failed": "Failed",
        "refunded": "Refunded",
    }


def test_every_status_has_an_entry_in_the_table():
    assert set(TRANSITIONS) == set(Status)


def test_the_table_is_exactly_the_designed_moves():
    table = {(current, target) for current, targets in TRANSITIONS.items() for target in targets}

    assert table == LEGAL


@pytest.mark.parametrize(("current", "target"), sorted(LEGAL))
def test_legal_move_is_accepted(current, target):
    assert check_transition(current, target) is None
    assert check_transition(Status(current), Status(target)) is None


@pytest.mark.parametrize(("current", "target"), ILLEGAL)
def test_illegal_move_is_refused(current, target):
    with pytest.raises(IllegalTransition) as raised:
        check_transition(current, target)

    assert raised.value.current == current
    assert raised.value.target == target
    assert str(raised.value) == f"A pre-order cannot go from {current} to {target}."


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (Status.PENDING, Status.PAID),
        (Status.PENDING, Status.CHARGING),
        (Status.PENDING, Status.TICKET_SENT),
        (Status.APPROVED, Status.PAID),
        (Status.APPROVED, Status.CANCELLED),
        (Status.DENIED, Status.CHARGING),
        (Status.CHARGING, Status.APPROVED),
        (Status.PAID, Status.FAILED),
        (Status.FAILED, Status.PAID),
    ],
    ids=str,
)
def test_representative_illegal_moves_are_refused_with_enum_members(current, target):
    with pytest.raises(IllegalTransition):
        check_transition(current, target)


@pytest.mark.parametrize(
    "terminal", [Status.CANCELLED, Status.FAILED, Status.NOT_ALLOCATED, Status.REFUNDED]
)
@pytest.mark.parametrize("target", list(Status), ids=str)
def test_terminal_statuses_go_nowhere(terminal, target):
    with pytest.raises(IllegalTransition):
        check_transition(terminal, target)


@pytest.mark.parametrize("status", list(Status), ids=str)
def test_staying_put_is_not_a_transition(status):
    with pytest.raises(IllegalTransition):
        check_transition(status, status)


def test_an_unknown_target_is_refused():
    with pytest.raises(IllegalTransition):
        check_transition(Status.PENDING, "teleported")


def test_every_status_is_reachable_from_pending():
    reached, frontier = {Status.PENDING}, [Status.PENDING]
    while frontier:
        for target in TRANSITIONS[frontier.pop()]:
            if target not in reached:
                reached.add(target)
                frontier.append(target)

    assert reached == set(Status)


def test_live_statuses_are_all_but_cancelled():
    assert LIVE_STATUSES == set(Status) - {Status.CANCELLED}
    assert "cancelled" not in LIVE_STATUSES
    assert "pending" in LIVE_STATUSES


def test_ticket_sent_can_only_be_refunded():
    assert TRANSITIONS[Status.TICKET_SENT] == {Status.REFUNDED}


def test_only_pending_is_member_editable():
    assert MEMBER_EDITABLE_STATUSES == {Status.PENDING}
