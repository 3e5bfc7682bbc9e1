"""Writes on the ticket pool. Every change that could move supply or assignment takes the event's
row lock first (lock_event), so approvals, voids and assignments of one event are serialised."""

import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction
from django.utils import timezone

from events.models import Event, EventLogEntry
from tickets.codes import ImportProblem, parse_ticket_codes, quoted_code
from tickets.models import Ticket
from tickets.selectors import pool_summary


class NoTicketAvailable(Exception):
    pass


def lock_event(event_id: int) -> Event:
    """Lock an event's row for the rest of the current transaction: the pool's mutex."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("lock_event() must be called inside transaction.atomic().")
    return Event.objects.select_for_update().get(pk=event_id)


def assign_ticket(preorder) -> Ticket:
    """Give a paid pre-order one concrete ticket of its event's pool, exactly once: a second call
    returns the ticket it already has. The database guarantees one ticket per pre-order and one
    pre-order per ticket (a one-to-one column).

    The caller holds the pre-order's row lock. The ticket is taken with its own row lock, skipping
    tickets other workers are taking: no event-wide lock, so payments of one event settle in
    parallel (approvals already reserved a place for each; void_ticket locks the ticket too)."""
    if preorder.status != "paid":
        raise ValueError(f"Only a paid pre-order gets a ticket, not a {preorder.status} one.")
    with transaction.atomic():
        existing = Ticket.objects.filter(preorder_id=preorder.pk).first()
        if existing is not None:
            return existing
        free = Ticket.objects.filter(
            event_id=preorder.event_id, preorder__isnull=True, voided_at__isnull=True
        ).order_by("id")
        ticket = free.select_for_update(skip_locked=True).first()
        if ticket is None:
            # Every free ticket is locked by someone: maybe a staff void that will be refused
            # (this pre-order holds a place). Wait for them rather than give up.
            ticket = free.select_for_update().first()
        if ticket is None:
            raise NoTicketAvailable(f"No ticket left in the pool of event {preorder.event_id}.")
        ticket.preorder = preorder
        ticket.assigned_at = timezone.now()
        ticket.save(update_fields=["preorder", "assigned_at"])
    return ticket


# --- Pool management (staff) ---------------------------------------------------------------

MAX_IMPORT_CODES = 10_000
MAX_GENERATE = 5_000
PROBLEMS_SHOWN = 20

# Crockford's base32: no I, L, O or U, so a code read over the phone cannot be misheard as another.
CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_PREFIX = "HC-"


class PoolError(Exception):
    """A pool change that was refused; the message is written for the staff member who asked."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class ImportReport:
    """What an import did: either every code was imported, or none was and `problems` says why."""

    imported: int = 0
    problems: list[ImportProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def shown_problems(self) -> list[ImportProblem]:
        return self.problems[:PROBLEMS_SHOWN]

    @property
    def more_problems(self) -> int:
        return max(0, len(self.problems) - PROBLEMS_SHOWN)

    @property
    def headline(self) -> str:
        if self.ok:
            return f"Imported {self.imported:,} ticket code{'' if self.imported == 1 else 's'}."
        n = len(self.problems)
        return f"Nothing was imported: {n:,} problem{'' if n == 1 else 's'} to fix first."


def _duplicate_problems(codes: list[tuple[int, str]]) -> list[ImportProblem]:
    lines_by_code: dict[str, list[int]] = {}
    for number, code in codes:
        lines_by_code.setdefault(code, []).append(number)
    problems = []
    for code, numbers in lines_by_code.items():
        if len(numbers) > 1:
            where = ", ".join(str(n) for n in numbers[:-1]) + f" and {numbers[-1]}"
            problems.append(
                ImportProblem(
                    numbers[0], f"{quoted_code(code)} is listed more than once (lines {where})."
                )
            )
    return problems


def _existing_codes(codes: Iterable[str]) -> dict[str, tuple[int, str]]:
    """Codes already in any pool: code -> (event id, event title)."""
    codes = list(codes)
    found: dict[str, tuple[int, str]] = {}
    # SQLite caps the number of query parameters; chunks keep any backend happy.
    for start in range(0, len(codes), 500):
        chunk = codes[start : start + 500]
        for code, event_id, title in Ticket.objects.filter(code__in=chunk).values_list(
            "code", "event_id", "event__title"
        ):
            found[code] = (event_id, title)
    return found


def _lock_existing_event(event_id: int) -> Event:
    try:
        return lock_event(event_id)
    except Event.DoesNotExist:
        raise PoolError("That event does not exist (any more).") from None


def import_ticket_codes(event_id: int, text: str, *, actor) -> ImportReport:
    """Add box-office codes to an event's pool: all of them, or none.

    See parse_ticket_codes for how the text is read. Also refused: a code listed twice, a code
    already in any event's pool (codes are unique club-wide), more than 10,000 codes at once, and
    a text with no code at all. Every problem is reported with its line number. Raises PoolError
    only if the event does not exist."""
    codes, problems = parse_ticket_codes(text)
    if not codes and not problems:
        return ImportReport(problems=[ImportProblem(None, "No ticket codes found.")])
    too_many = len(codes) + len(problems) > MAX_IMPORT_CODES
    if too_many:
        problems.insert(
            0,
            ImportProblem(
                None,
                f"That is {len(codes) + len(problems):,} lines of codes; import at most "
                f"{MAX_IMPORT_CODES:,} at a time (split the file).",
            ),
        )
    problems += _duplicate_problems(codes)

    try:
        with transaction.atomic():
            event = _lock_existing_event(event_id)
            if not too_many:
                existing = _existing_codes({code for _, code in codes})
                for number, code in codes:
                    if code in existing:
                        other_id, title = existing[code]
                        where = (
                            "this event's pool"
                            if other_id == event.pk
                            else f"the pool of “{title}”"
                        )
                        problems.append(
                            ImportProblem(number, f"{quoted_code(code)} is already in {where}.")
                        )
            if problems:
                problems.sort(key=lambda p: p.line or 0)
                return ImportReport(problems=problems)
            now = timezone.now()
            Ticket.objects.bulk_create(
                Ticket(event_id=event.pk, code=code, created_at=now) for _, code in codes
            )
            EventLogEntry.objects.create(
                event=event,
                cycle_id=event.cycle_id,
                actor=actor,
                action="pool_import",
                detail=f"Imported {len(codes)} codes",
                data={"count": len(codes)},
                created_at=now,
            )
    except IntegrityError:
        # Another pool took one of these codes between our check and our insert.
        return ImportReport(
            problems=[
                ImportProblem(
                    None,
                    "Some of these codes were added elsewhere at the same moment. "
                    "Nothing was imported; please try again to see which.",
                )
            ]
        )
    return ImportReport(imported=len(codes))


def new_ticket_code() -> str:
    """A fresh unguessable code, e.g. HC-7K3M-Q9TX-2B4R: 60 random bits from `secrets`."""
    chars = "".join(secrets.choice(CODE_ALPHABET) for _ in range(12))
    return CODE_PREFIX + "-".join(chars[i : i + 4] for i in range(0, 12, 4))


def fresh_codes(count: int) -> set[str]:
    codes: set[str] = set()
    for _ in range(10):
        while len(codes) < count:
            codes.add(new_ticket_code())
        codes -= set(_existing_codes(codes))
        if len(codes) == count:
            return codes
    raise PoolError("Could not make enough new unique codes; please try again.")


def generate_tickets(event_id: int, count: int, *, actor) -> int:
    """Add `count` (1 to 5,000) new random codes to an event's pool; returns how many."""
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_GENERATE:
        raise PoolError(f"Choose how many codes to generate: 1 to {MAX_GENERATE:,}.")
    try:
        with transaction.atomic():
            event = _lock_existing_event(event_id)
            now = timezone.now()
            Ticket.objects.bulk_create(
                Ticket(event_id=event.pk, code=code, created_at=now) for code in fresh_codes(count)
            )
            EventLogEntry.objects.create(
                event=event,
                cycle_id=event.cycle_id,
                actor=actor,
                action="pool_generate",
                detail=f"Generated {count} codes",
                data={"count": count},
                created_at=now,
            )
    except IntegrityError:
        # Two runs drew the same 60-bit code at the same instant: astronomically rare.
        raise PoolError(
            "A new code clashed with one added at the same moment; please try again."
        ) from None
    return count


def void_ticket(ticket_id: int, *, actor) -> Ticket:
    """Take an unassigned ticket out of the pool for good (e.g. the box office cancelled it).

    Refused for an assigned or already-void ticket, and when the pool would then hold fewer
    tickets than there are approved places: every approved pre-order must keep its ticket."""
    with transaction.atomic():
        event_id = Ticket.objects.filter(pk=ticket_id).values_list("event_id", flat=True).first()
        if event_id is None:
            raise PoolError("That ticket does not exist.")
        event = lock_event(event_id)
        # The ticket's own lock: a payment being settled may be taking this very ticket.
        ticket = (
            Ticket.objects.select_for_update(of=("self",))
            .select_related("preorder__member")
            .get(pk=ticket_id)
        )
        if ticket.voided_at is not None:
            raise PoolError(f"Ticket {ticket.code} is already void.")
        if ticket.preorder_id is not None:
            raise PoolError(
                f"Ticket {ticket.code} is assigned to {ticket.preorder.member.full_name}'s "
                "pre-order and cannot be voided."
            )
        summary = pool_summary(event_id)
        if summary.supply - 1 < summary.holding:
            raise PoolError(
                f"Voiding {ticket.code} would leave {summary.supply - 1} tickets for "
                f"{summary.holding} approved places. Add tickets or deny a pre-order first."
            )
        now = timezone.now()
        ticket.voided_at = now
        ticket.voided_by = actor
        ticket.save(update_fields=["voided_at", "voided_by"])
        EventLogEntry.objects.create(
            event=event,
            cycle_id=event.cycle_id,
            actor=actor,
            action="ticket_void",
            detail=f"Voided ticket {ticket.code}",
            data={"ticket_id": ticket.pk, "code": ticket.code},
            created_at=now,
        )
    return ticket


def void_refunded_ticket(preorder, *, actor, note: str) -> Ticket | None:
    """Take back the ticket of a pre-order being refunded and void it for good: its code was
    emailed, so it must never be given to anyone else. The caller holds the pre-order's row
    lock inside its transaction. The pool's places do not move: the pre-order stops holding
    one as its ticket leaves the supply."""
    ticket = Ticket.objects.select_for_update(of=("self",)).filter(preorder_id=preorder.pk).first()
    if ticket is None:
        return None
    now = timezone.now()
    ticket.preorder = None
    ticket.assigned_at = None
    ticket.voided_at = now
    ticket.voided_by = actor
    ticket.save(update_fields=["preorder", "assigned_at", "voided_at", "voided_by"])
    EventLogEntry.objects.create(
        event_id=preorder.event_id,
        cycle_id=preorder.cycle_id,
        actor=actor,
        action="ticket_void",
        detail=f"Voided ticket {ticket.code}: pre-order #{preorder.pk} refunded ({note})",
        data={"ticket_id": ticket.pk, "code": ticket.code, "preorder_id": preorder.pk},
        created_at=now,
    )
    return ticket
