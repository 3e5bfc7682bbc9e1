"""Checking tickets in at the door: one scan, one answer, recorded; and a manager's undo.

The door types or scans a ticket's code (the QR code on the email and dashboard carries exactly
that code). Each scan gets one of five answers, in this order of precedence:

1. unknown code: no ticket has it, it is not a code at all (a URL, a huge string, another club's
   code), or it is a pool ticket never sold to a member;
2. refunded or void: the ticket was voided, or its pre-order was refunded;
3. not for this event: it is a good ticket for another event (named, with its date);
4. already checked in: at HH:MM by <door>;
5. valid: the ticket is now checked in ("welcome <name>").

Only the last one changes anything besides the scan log. Two doors scanning one ticket at the
same moment: the ticket's row lock queues the second behind the first, and a unique index on the
live check-in is the backstop, so exactly one gets "valid"."""

import datetime as dt
from dataclasses import dataclass, replace

from django.db import IntegrityError, transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from events import london
from events.models import Event, EventLogEntry
from preorders.states import Status
from tickets.codes import CODE_PATTERN, MAX_CODE_LENGTH
from tickets.models import CheckIn, DoorScan, Ticket

Result = DoorScan.Result
# A ticket is in a member's hands once its payment has succeeded.
ISSUED_STATUSES = frozenset({Status.PAID, Status.TICKET_SENT})
MAX_REASON_LENGTH = CheckIn._meta.get_field("undo_reason").max_length


class CheckInError(Exception):
    """A request that was refused; the message is written for the staff member who made it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Answer:
    """What the door is told about one scan."""

    result: str
    headline: str
    detail: str = ""
    ticket_code: str = ""  # the ticket found, if any
    member: str = ""  # whose it is, if it was sold

    @property
    def admitted(self) -> bool:
        return self.result == Result.VALID

    def as_dict(self) -> dict[str, object]:
        return {
            "result": str(self.result),
            "label": str(Result(self.result).label),
            "headline": self.headline,
            "detail": self.detail,
            "admitted": self.admitted,
            "ticket_code": self.ticket_code,
            "member": self.member,
        }


def clean_code(raw: str) -> str | None:
    """The code as the pool stores it, or None when the text cannot be a ticket code."""
    code = raw.strip() if isinstance(raw, str) else ""
    if not code or len(code) > MAX_CODE_LENGTH or not CODE_PATTERN.fullmatch(code):
        return None
    return code


def _printable(raw: str) -> str:
    """What was scanned, as it can be stored and shown (no NUL or control characters)."""
    if not isinstance(raw, str):
        return ""
    return "".join(c for c in raw[:1000] if c.isprintable()).strip()


def _door_name(member) -> str:
    return member.full_name if member is not None else "a former staff account"


def _when(moment: dt.datetime) -> str:
    """'19:42', or '19:42 on Sat 5 Dec' when it was not today (London)."""
    local = london.to_london(moment)
    clock = f"{local:%H:%M}"
    if local.date() != london.to_london(timezone.now()).date():
        return f"{clock} on {local:%a} {local.day} {local:%b}"
    return clock


def _hold_event_key(event_id: int) -> None:
    """Take now the lock that recording the scan will need on the event's row (PostgreSQL's key
    share, which a foreign key check takes). Taken later, after the ticket's lock, it would wait
    for a staff void that holds the event and waits for that ticket: a deadlock. Key share does
    not conflict with itself, so doors do not queue behind each other here. SQLite has no row
    locks: its write lock already serialises whole transactions."""
    connection = transaction.get_connection()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT 1 FROM {Event._meta.db_table} WHERE id = %s FOR KEY SHARE",  # noqa: S608
                [event_id],
            )


def _find_ticket(code: str | None) -> Ticket | None:
    """The ticket with this code, locked until the end of the transaction. Codes are
    case-sensitive in the pool; a code typed in lower case still finds an upper-case one."""
    if code is None:
        return None
    candidates = [code] if code == code.upper() else [code, code.upper()]
    for candidate in candidates:
        ticket = (
            Ticket.objects.select_for_update(of=("self",))
            .select_related("event", "preorder__member")
            .filter(code=candidate)
            .first()
        )
        if ticket is not None:
            return ticket
    return None


def _was_refunded(ticket: Ticket) -> bool:
    """Whether a refused ticket was refunded rather than voided by staff. A refund unassigns
    and voids the ticket in one step (tickets.services.void_refunded_ticket), so the pre-order it
    belonged to is known only from that step's entry in the event's log."""
    if ticket.preorder_id is not None:
        return ticket.preorder.status == Status.REFUNDED
    return EventLogEntry.objects.filter(
        event_id=ticket.event_id,
        action="ticket_void",
        data__ticket_id=ticket.pk,
        data__has_key="preorder_id",
    ).exists()


def _already(check_in: CheckIn, ticket: Ticket) -> Answer:
    return Answer(
        Result.ALREADY_CHECKED_IN,
        f"Already checked in at {_when(check_in.checked_in_at)} "
        f"by {_door_name(check_in.checked_in_by)}",
        f"Ticket {ticket.code} of {ticket.preorder.member.full_name}. Do not let in again.",
    )


def _live_check_in(ticket: Ticket) -> CheckIn | None:
    return (
        CheckIn.objects.select_related("checked_in_by")
        .filter(ticket=ticket, undone_at__isnull=True)
        .first()
    )


def check_in(event_id: int, raw_code: str, *, door) -> Answer:
    """Scan `raw_code` at the door of event `event_id` on behalf of staff member `door`.
    Records the scan and, when the ticket is valid, checks it in. Raises CheckInError only when
    the event does not exist."""
    code = clean_code(raw_code)
    with transaction.atomic():
        event = Event.objects.filter(pk=event_id).first()
        if event is None:
            raise CheckInError("That event does not exist.")
        _hold_event_key(event.pk)
        ticket = _find_ticket(code)
        # Read once the ticket is ours: a door that waited for another's scan records a later time.
        now = timezone.now()
        live = None
        if ticket is None or (ticket.preorder_id is None and ticket.voided_at is None):
            ticket = None  # a pool ticket nobody bought is not one anyone can hold
            answer = Answer(
                Result.UNKNOWN,
                "Unknown code",
                "No ticket has this code. Check it was typed correctly; if it was, do not let "
                "it in.",
            )
        elif ticket.voided_at is not None or ticket.preorder.status not in ISSUED_STATUSES:
            answer = Answer(
                Result.VOID,
                "Refunded or void",
                f"Ticket {ticket.code} was {'refunded' if _was_refunded(ticket) else 'voided'}. "
                "Do not let it in.",
            )
        elif ticket.event_id != event.pk:
            answer = Answer(
                Result.WRONG_EVENT,
                "Not for this event",
                f"Ticket {ticket.code} is for {ticket.event.title} on "
                f"{london.short_datetime(ticket.event.starts_at)}.",
            )
        elif (live := _live_check_in(ticket)) is not None:
            answer = _already(live, ticket)
        else:
            try:
                with transaction.atomic():
                    live = CheckIn.objects.create(
                        ticket=ticket, checked_in_at=now, checked_in_by=door
                    )
                answer = Answer(
                    Result.VALID,
                    f"Valid — welcome {ticket.preorder.member.full_name}",
                    f"Ticket {ticket.code} is now checked in.",
                )
            except IntegrityError:
                # Where the row lock does not serialise (SQLite has none), the unique index does.
                live = _live_check_in(ticket)
                answer = _already(live, ticket)
        if ticket is not None:
            owner = ticket.preorder.member.full_name if ticket.preorder_id else ""
            answer = replace(answer, ticket_code=ticket.code, member=owner)
        DoorScan.objects.create(
            event=event,
            scanned_at=now,
            scanned_by=door,
            code=_printable(raw_code)[:MAX_CODE_LENGTH],
            result=answer.result,
            ticket=ticket,
            check_in=live,
        )
    return answer


def undo_check_in(check_in_id: int, *, actor, reason: str) -> CheckIn:
    """Undo a live check-in (a manager's correction), with the reason recorded: the ticket may
    then be checked in again. Refused without a reason, or when already undone."""
    # A textarea sends its line breaks as CRLF.
    reason = (reason or "").replace("\r\n", "\n").replace("\r", "\n").strip()
    if not reason:
        raise CheckInError("Say why the check-in is being undone.")
    if len(reason) > MAX_REASON_LENGTH:
        raise CheckInError(f"Keep the reason to {MAX_REASON_LENGTH} characters.")
    if any(not (c.isprintable() or c in "\n\t") for c in reason):
        raise CheckInError("Write the reason in plain words: it has characters we cannot keep.")
    with transaction.atomic():
        check_in = (
            CheckIn.objects.select_for_update(of=("self",))
            .select_related("ticket__event")
            .filter(pk=check_in_id)
            .first()
        )
        if check_in is None:
            raise CheckInError("That check-in does not exist.")
        if check_in.undone_at is not None:
            raise CheckInError(
                f"This check-in of ticket {check_in.ticket.code} was already undone."
            )
        now = timezone.now()
        check_in.undone_at = now
        check_in.undone_by = actor
        check_in.undo_reason = reason
        check_in.save(update_fields=["undone_at", "undone_by", "undo_reason"])
        event = check_in.ticket.event
        EventLogEntry.objects.create(
            event=event,
            cycle_id=event.cycle_id,
            actor=actor,
            action="check_in_undo",
            detail=f"Undid the check-in of ticket {check_in.ticket.code}: {reason}",
            data={"check_in_id": check_in.pk, "ticket_id": check_in.ticket_id},
            created_at=now,
        )
    return check_in


# --- Reads --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DoorCount:
    checked_in: int
    issued: int

    def as_dict(self) -> dict[str, int]:
        return {"checked_in": self.checked_in, "issued": self.issued}


def door_count(event_id: int) -> DoorCount:
    """Tickets checked in (live) and tickets issued (in members' hands, not void) for an event."""
    counts = Ticket.objects.filter(
        event_id=event_id, voided_at__isnull=True, preorder__status__in=ISSUED_STATUSES
    ).aggregate(
        issued=Count("id", distinct=True),
        checked_in=Count("check_ins", filter=Q(check_ins__undone_at__isnull=True), distinct=True),
    )
    return DoorCount(checked_in=counts["checked_in"], issued=counts["issued"])


def attendance(event_id: int) -> QuerySet[CheckIn]:
    """Every check-in of an event's tickets, live and undone, in the order they happened."""
    return (
        CheckIn.objects.filter(ticket__event_id=event_id)
        .select_related("ticket__preorder__member", "checked_in_by", "undone_by")
        .order_by("checked_in_at", "id")
    )


def recent_scans(event_id: int, limit: int = 5) -> QuerySet[DoorScan]:
    return (
        DoorScan.objects.filter(event_id=event_id)
        .select_related("scanned_by", "ticket__preorder__member")
        .order_by("-scanned_at", "-id")[:limit]
    )


def is_tonight(event: Event, now: dt.datetime | None = None) -> bool:
    """Starts today (London), or within the next 6 hours (a late show seen before midnight), or
    started up to 12 hours ago and may still be going (seen after midnight)."""
    now = now or timezone.now()
    starts = event.starts_at
    same_day = london.to_london(starts).date() == london.to_london(now).date()
    return same_day or now - dt.timedelta(hours=12) <= starts <= now + dt.timedelta(hours=6)


def door_events(now: dt.datetime | None = None, *, limit: int = 10) -> list[Event]:
    """The events a door may be working, soonest first: tonight's (including one that started
    up to 12 hours ago and is still going after midnight), then the next ones."""
    now = now or timezone.now()
    return list(
        Event.objects.filter(starts_at__gte=now - dt.timedelta(hours=12)).order_by(
            "starts_at", "id"
        )[:limit]
    )
