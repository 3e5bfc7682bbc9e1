"""Staff prepare events: create, edit, delete, and copy a week's events to the next week.

Every rule refuses with a sentence staff can act on and saves nothing; every change is written
to the event's audit log (EventLogEntry) with who, when and each field's old → new value.
An event's row is locked while it changes, and placing a pre-order takes the same lock, so "no
move or delete while pre-orders exist" cannot race with a member pre-ordering."""

import datetime as dt
from dataclasses import dataclass, field, fields

from django.db import transaction
from django.utils import timezone

from events import london
from events.models import Event, EventLogEntry, PresaleCycle
from events.pricing import MINIMUM_CHARGE_PENCE, format_pence, member_price_pence
from events.selectors import cycle_for_week


class EventRuleError(Exception):
    """One or more rules refused the change; `errors` maps a field name (or "") to messages."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        self.errors = errors
        self.message = " ".join(message for messages in errors.values() for message in messages)
        super().__init__(self.message)


class PriceChangeNeedsConfirmation(Exception):
    """The price changes while pre-orders exist: staff must confirm, knowing that the placed
    pre-orders keep the price they were placed at."""

    def __init__(self, preorder_count: int, old_pence: int, new_pence: int) -> None:
        self.preorder_count = preorder_count
        self.message = (
            f"{preorder_count} pre-order{'s' if preorder_count != 1 else ''} "
            f"{'were' if preorder_count != 1 else 'was'} placed at the member price of "
            f"{format_pence(old_pence)} and keep{'' if preorder_count != 1 else 's'} it: they "
            f"will be charged {format_pence(old_pence)}. New pre-orders will pay "
            f"{format_pence(new_pence)}."
        )
        super().__init__(self.message)


@dataclass
class EventDetails:
    """Everything staff set on an event."""

    cycle: PresaleCycle
    title: str
    starts_at: dt.datetime
    venue: str
    public_price_pence: int
    description: str = ""
    discount_percent: int | None = None
    discount_fixed_pence: int | None = None
    fulfilment_mode: str = Event.FulfilmentMode.FIFO
    public_sale_url: str = ""
    public_sale_at: dt.datetime | None = None

    @classmethod
    def of(cls, event: Event, **changes) -> "EventDetails":
        values = {f.name: getattr(event, f.name) for f in fields(cls)}
        return cls(**{**values, **changes})


FIELDS = [f.name for f in fields(EventDetails)]
LABELS = {
    "cycle": "Week",
    "title": "Title",
    "starts_at": "Starts",
    "venue": "Venue",
    "description": "Description",
    "public_price_pence": "Public price",
    "discount_percent": "Discount (%)",
    "discount_fixed_pence": "Discount (fixed)",
    "fulfilment_mode": "Fulfilment",
    "public_sale_url": "Public sale link",
    "public_sale_at": "Public sale opens",
}


def rule_errors(details: EventDetails) -> dict[str, list[str]]:
    """What is wrong with these details, by field; empty when they may be saved."""
    errors: dict[str, list[str]] = {}

    def refuse(name: str, message: str) -> None:
        errors.setdefault(name, []).append(message)

    cycle = details.cycle
    if cycle.decisions_locked:
        refuse("cycle", "That week's charge run has started: its events can no longer change.")
    if details.starts_at <= cycle.charge_at:
        refuse(
            "starts_at",
            "An event must start after its week's charge run "
            f"({london.when(cycle.charge_at)}), so members are charged before it.",
        )
    price = details.public_price_pence
    if price < MINIMUM_CHARGE_PENCE:
        refuse(
            "public_price_pence",
            f"The price must be at least {MINIMUM_CHARGE_PENCE}p, Stripe's minimum charge.",
        )
    if details.discount_percent is not None and details.discount_fixed_pence is not None:
        refuse("discount_percent", "Give either a percentage or a fixed discount, not both.")
    elif details.discount_fixed_pence is not None and details.discount_fixed_pence >= price:
        refuse(
            "discount_fixed_pence",
            f"A fixed discount must be less than the price ({format_pence(price)}).",
        )
    elif details.discount_percent is not None and not 0 <= details.discount_percent <= 100:
        refuse("discount_percent", "A percentage discount is between 0 and 100.")
    elif price >= MINIMUM_CHARGE_PENCE:
        member = _member_price(details)
        if member < MINIMUM_CHARGE_PENCE:
            refuse(
                "public_price_pence",
                f"With this discount members would pay {format_pence(member)}; "
                f"the member price must be at least {MINIMUM_CHARGE_PENCE}p (Stripe's minimum).",
            )
    if details.public_sale_at is not None and details.public_sale_at >= details.starts_at:
        refuse("public_sale_at", "The public sale must open before the event starts.")
    return errors


def _member_price(details: EventDetails) -> int:
    probe = Event(
        public_price_pence=details.public_price_pence,
        discount_percent=details.discount_percent,
        discount_fixed_pence=details.discount_fixed_pence,
    )
    return member_price_pence(details.public_price_pence, probe.discount)


def _display(name: str, value: object) -> str:
    """A value as staff read it in the log: £22.50, Tue 8 Dec 2026, 8PM, not 2250 or UTC."""
    if value is None or value == "":
        return {
            "discount_percent": "club default",
            "discount_fixed_pence": "none",
            "public_sale_at": "not set",
        }.get(name, "(empty)")
    if name in ("public_price_pence", "discount_fixed_pence"):
        return format_pence(int(value))
    if name == "discount_percent":
        return f"{value}%"
    if isinstance(value, dt.datetime):
        return london.short_datetime(value)
    if isinstance(value, PresaleCycle):
        return f"week of {value.week_start:%-d %B %Y}"
    if name == "fulfilment_mode":
        return Event.FulfilmentMode(value).label
    text = str(value)
    return text if len(text) <= 80 else text[:77] + "…"


def _changes(event: Event, details: EventDetails) -> dict[str, tuple[object, object]]:
    changes = {}
    for name in FIELDS:
        old = event.cycle if name == "cycle" else getattr(event, name)
        new = getattr(details, name)
        if name == "cycle":
            old, new = old.pk, new.pk
        if old != new:
            changes[name] = (old, new)
    return changes


def _log(event: Event, actor, action: str, detail: str, data: dict) -> None:
    EventLogEntry.objects.create(
        event=event if action != "event_deleted" else None,
        cycle_id=event.cycle_id,
        actor=actor,
        action=action,
        detail=detail,
        data=data,
        created_at=timezone.now(),
    )


def _apply(event: Event, details: EventDetails) -> None:
    for name in FIELDS:
        setattr(event, name, getattr(details, name))


def create_event(details: EventDetails, *, actor, copied_from: Event | None = None) -> Event:
    with transaction.atomic():
        cycle = PresaleCycle.objects.select_for_update().get(pk=details.cycle.pk)
        details.cycle = cycle
        errors = rule_errors(details)
        if errors:
            raise EventRuleError(errors)
        event = Event(cycle=cycle)
        _apply(event, details)
        event.save()
        summary = "; ".join(
            f"{LABELS[name]}: {_display(name, getattr(details, name))}"
            for name in FIELDS
            if getattr(details, name) not in (None, "")
        )
        origin = f" (a copy of “{copied_from.title}”, #{copied_from.pk})" if copied_from else ""
        _log(
            event,
            actor,
            "event_created",
            f"Event created{origin}. {summary}",
            {"copied_from": copied_from.pk if copied_from else None},
        )
    return event


def _preorder_count(event: Event) -> tuple[int, int]:
    """(live, all) pre-orders of the event; cancelled ones are history, not live."""
    from preorders.models import PreOrder
    from preorders.states import Status

    preorders = PreOrder.objects.filter(event=event)
    return preorders.exclude(status=Status.CANCELLED).count(), preorders.count()


def update_event(
    event_id: int, details: EventDetails, *, actor, confirm_price_change: bool = False
) -> tuple[Event, dict]:
    """Save staff's changes to an event. Returns the event and the changes made (field: (old,
    new)); raises EventRuleError, or PriceChangeNeedsConfirmation until confirmed."""
    with transaction.atomic():
        # Cycles before the event, in id order, as decisions lock them: no deadlock with them.
        current_cycle_id = Event.objects.values_list("cycle_id", flat=True).get(pk=event_id)
        locked = {
            c.pk: c
            for c in PresaleCycle.objects.select_for_update()
            .filter(pk__in={current_cycle_id, details.cycle.pk})
            .order_by("pk")
        }
        event = Event.objects.select_for_update().get(pk=event_id)
        if event.cycle_id not in locked:  # moved by someone else meanwhile
            raise EventRuleError({"": ["Someone else just changed this event. Please try again."]})
        old_cycle, details.cycle = locked[event.cycle_id], locked[details.cycle.pk]
        event.cycle = old_cycle
        changes = _changes(event, details)
        if not changes:
            return event, {}
        errors = rule_errors(details)
        if old_cycle.decisions_locked and "cycle" not in errors:
            errors.setdefault("cycle", []).append(
                "That week's charge run has started: its events can no longer change."
            )
        live, total = _preorder_count(event)
        if "cycle" in changes and total:
            errors.setdefault("cycle", []).append(
                f"This event has {total} pre-order{'s' if total != 1 else ''}"
                f"{f' ({live} live)' if live != total else ''}: it cannot move to another week. "
                "Create a new event in that week instead."
            )
        if errors:
            raise EventRuleError(errors)
        old_member_price = event.member_price_pence
        new_member_price = _member_price(details)
        if live and new_member_price != old_member_price and not confirm_price_change:
            raise PriceChangeNeedsConfirmation(live, old_member_price, new_member_price)
        _apply(event, details)
        event.save()
        detail = "; ".join(
            f"{LABELS[name]}: {_display(name, _value(name, old))} → "
            f"{_display(name, _value(name, new))}"
            for name, (old, new) in changes.items()
        )
        if live and new_member_price != old_member_price:
            detail += (
                f". {live} placed pre-order{'s keep' if live != 1 else ' keeps'} "
                f"{format_pence(old_member_price)}."
            )
        _log(
            event,
            actor,
            "event_updated",
            detail,
            {"changes": {name: [_json(old), _json(new)] for name, (old, new) in changes.items()}},
        )
    return event, changes


def _value(name: str, value: object) -> object:
    if name == "cycle":
        return PresaleCycle.objects.get(pk=value)
    return value


def _json(value: object) -> object:
    return value.isoformat() if isinstance(value, dt.datetime) else value


def delete_event(event_id: int, *, actor) -> str:
    """Delete an event nobody has pre-ordered, with its unassigned ticket codes. Returns the
    deleted event's title."""
    from tickets.models import Ticket

    with transaction.atomic():
        event = Event.objects.select_for_update().select_related("cycle").get(pk=event_id)
        live, total = _preorder_count(event)
        if live:
            raise EventRuleError(
                {
                    "": [
                        f"{event.title} has {live} live pre-order{'s' if live != 1 else ''}: it "
                        "cannot be deleted. Deny them or let the members cancel first."
                    ]
                }
            )
        if total:
            raise EventRuleError(
                {
                    "": [
                        f"{event.title} keeps the history of {total} cancelled "
                        f"pre-order{'s' if total != 1 else ''}: it cannot be deleted."
                    ]
                }
            )
        codes = Ticket.objects.filter(event=event)
        code_count = codes.count()
        codes.delete()
        title, cycle_id = event.title, event.cycle_id
        _log(
            event,
            actor,
            "event_deleted",
            f"Event deleted: {title}, {london.short_datetime(event.starts_at)}, "
            f"{event.venue}, {format_pence(event.public_price_pence)}"
            + (f", with its {code_count} unused ticket codes" if code_count else "")
            + ".",
            {"event_id": event.pk, "cycle_id": cycle_id},
        )
        event.delete()
    return title


@dataclass
class CopyResult:
    target: PresaleCycle
    copied: list[Event] = field(default_factory=list)
    already_there: list[Event] = field(default_factory=list)


def one_week_later(moment: dt.datetime) -> dt.datetime:
    """The same London wall-clock time a week later (an 8PM show stays 8PM over a clock
    change)."""
    local = london.to_london(moment)
    later = (local.replace(tzinfo=None) + dt.timedelta(days=7)).replace(tzinfo=local.tzinfo)
    return later.astimezone(dt.UTC)


def copy_week(source_cycle_id: int, *, actor) -> CopyResult:
    """Copy every event of a week to the next week: same details, times a week later, pools
    empty. An event already copied (same title and start) is not copied twice, so pressing the
    button again changes nothing. All or nothing."""
    source = PresaleCycle.objects.get(pk=source_cycle_id)
    target = cycle_for_week(source.week_start + dt.timedelta(weeks=1))
    result = CopyResult(target=target)
    with transaction.atomic():
        target = PresaleCycle.objects.select_for_update().get(pk=target.pk)
        result.target = target
        existing = {(e.title, e.starts_at) for e in Event.objects.filter(cycle=target)}
        errors: dict[str, list[str]] = {}
        to_create = []
        for event in Event.objects.filter(cycle=source).order_by("starts_at", "id"):
            details = EventDetails.of(
                event,
                cycle=target,
                starts_at=one_week_later(event.starts_at),
                public_sale_at=one_week_later(event.public_sale_at)
                if event.public_sale_at
                else None,
            )
            if (details.title, details.starts_at) in existing:
                result.already_there.append(event)
                continue
            for name, messages in rule_errors(details).items():
                errors.setdefault(name, []).extend(f"{event.title}: {m}" for m in messages)
            to_create.append((event, details))
        if errors:
            raise EventRuleError(errors)
        for original, details in to_create:
            copy = Event(cycle=target)
            _apply(copy, details)
            copy.save()
            _log(
                copy,
                actor,
                "event_created",
                f"Copied from “{original.title}” of the week of "
                f"{source.week_start:%-d %B} (#{original.pk}), a week later. Pool empty.",
                {"copied_from": original.pk},
            )
            result.copied.append(copy)
        if result.copied:
            EventLogEntry.objects.create(
                cycle=target,
                actor=actor,
                action="week_copied",
                detail=f"Copied {len(result.copied)} event{'s' if len(result.copied) != 1 else ''}"
                f" from the week of {source.week_start:%-d %B %Y}.",
                data={"source_cycle": source.pk, "events": [e.pk for e in result.copied]},
            )
    return result
