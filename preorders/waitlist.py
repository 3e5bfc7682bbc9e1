"""The waitlist: members still pending when decisions lock wait, in a recorded order, for a
place to free up (a decline, an authentication deadline, unused places), until the event's
public sale or the cut-off; then they are told "not allocated", once.

Promotion is an approval: it runs under the same locks as staff decisions (the cycle's row, then
the event's row) and counts the places left inside them, so approved + charging + awaiting
authentication + paid never exceeds the pool. The charge that follows goes through the charge
run's claim and idempotency machinery (payments/refill.py)."""

import datetime as dt
import random
import secrets
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from events.models import Event, EventLogEntry, PresaleCycle
from events.schedule import WeeklyTime
from notifications.services import email_member_about
from preorders.models import PreOrder
from preorders.services import transition_many
from preorders.states import Status
from tickets.models import Ticket
from tickets.selectors import pool_summary
from tickets.services import fresh_codes, lock_event


def closes_at(event: Event) -> dt.datetime:
    """When the event's waitlist closes: its public sale time when staff set one, else the first
    PRESALE_WAITLIST_CUTOFF (default Wednesday 12:00 London) after the charge run is due."""
    if event.public_sale_at is not None:
        return event.public_sale_at
    zone = ZoneInfo(settings.PRESALE_TIME_ZONE)
    cutoff = WeeklyTime.parse(settings.PRESALE_WAITLIST_CUTOFF)
    wall = cutoff.on_or_after(event.cycle.charge_at.astimezone(zone).replace(tzinfo=None))
    return wall.replace(tzinfo=zone).astimezone(dt.UTC)


def rank_ballot(candidate_ids: list[int], seed: int) -> list[int]:
    """The whole order of a seeded ballot, not only its winners: a pure function of its inputs,
    so anyone can re-run the draw and check every place in the line."""
    ranking = sorted(candidate_ids)
    random.Random(seed).shuffle(ranking)  # noqa: S311 - fair, not secret
    return ranking


def verify_waitlist(entry: EventLogEntry) -> bool:
    """Re-run a recorded waitlist draw: does it give the recorded order?"""
    data = entry.data
    if entry.action != "waitlist":
        raise ValueError("That log entry is not a waitlist.")
    if data["mode"] == Event.FulfilmentMode.BALLOT:
        return rank_ballot(data["candidates"], data["seed"]) == data["order"]
    return data["order"] == data["candidates"]


def waitlist_pending(cycle: PresaleCycle, now: dt.datetime) -> list[PreOrder]:
    """Inside lock_decisions' transaction (cycle row locked): every pre-order still pending
    joins its event's waitlist in the event's recorded order. Returns them."""
    waitlisted: list[PreOrder] = []
    for event in Event.objects.filter(cycle=cycle).order_by("pk"):
        pending = list(
            PreOrder.objects.select_for_update()
            .filter(event=event, status=Status.PENDING)
            .order_by("created_at", "id")
        )
        if not pending:
            continue
        candidates = [p.pk for p in pending]
        seed = None
        if event.fulfilment_mode == Event.FulfilmentMode.BALLOT:
            seed = secrets.randbits(63)
            order = rank_ballot(candidates, seed)
        else:
            order = candidates
        position = {pk: number for number, pk in enumerate(order, start=1)}
        for preorder in pending:
            preorder.waitlist_position = position[preorder.pk]
            preorder.save(update_fields=["waitlist_position"])
        transition_many(
            pending, Status.WAITLISTED, actor=None, source="system",
            note="Still pending when decisions locked: on the waitlist", now=now,
        )  # fmt: skip
        label = Event.FulfilmentMode(event.fulfilment_mode).label
        EventLogEntry.objects.create(
            event=event,
            cycle=cycle,
            action="waitlist",
            detail=f"{len(order)} on the waitlist, {label}"
            + (f"; ballot seed {seed}" if seed is not None else ""),
            data={
                "mode": event.fulfilment_mode,
                "seed": seed,
                "candidates": candidates,
                "order": order,
            },
            created_at=now,
        )
        waitlisted += pending
    return waitlisted


def promote(event_id: int, *, actor=None, now: dt.datetime | None = None) -> list[int]:
    """Approve the next waitlisted pre-orders of an event, in their order, while places are
    left. Returns their ids (to be charged). Nothing before decisions lock (staff decide then)
    or once the waitlist has closed."""
    now = now or timezone.now()
    with transaction.atomic():
        event = Event.objects.select_related("cycle").get(pk=event_id)
        cycle = PresaleCycle.objects.select_for_update().get(pk=event.cycle_id)
        if not cycle.decisions_locked or now >= closes_at(event):
            return []
        event = lock_event(event_id)
        left = pool_summary(event.pk).left
        if left <= 0:
            return []
        chosen = list(
            PreOrder.objects.select_for_update()
            .filter(event_id=event_id, status=Status.WAITLISTED, member__is_active=True)
            .order_by("waitlist_position", "id")[:left]
        )
        transition_many(
            chosen, Status.APPROVED, actor=actor, source="staff" if actor else "system",
            note="Promoted from the waitlist: a place was freed", now=now,
        )  # fmt: skip
    return [p.pk for p in chosen]


def free_refunded_place(
    preorder: PreOrder, voided: Ticket, *, actor, now: dt.datetime
) -> Ticket | None:
    """A refund before the waitlist closes frees its place for the next member in line: the
    refunded code was emailed, so it stays void, and one new code takes its place in the pool
    (then promoted as any freed place: within a minute for events that refill automatically,
    when staff offer it otherwise). Nothing when nobody is waiting or the waitlist has closed:
    the place is then the public sale's. Called inside the refund's transaction."""
    event = Event.objects.select_related("cycle").get(pk=preorder.event_id)
    if not event.cycle.decisions_locked or now >= closes_at(event):
        return None
    if not PreOrder.objects.filter(event=event, status=Status.WAITLISTED).exists():
        return None
    event = lock_event(event.pk)
    (code,) = fresh_codes(1)
    ticket = Ticket.objects.create(event=event, code=code, created_at=now)
    EventLogEntry.objects.create(
        event=event,
        cycle_id=event.cycle_id,
        actor=actor,
        action="pool_replace",
        detail=f"Added ticket {code} in place of refunded ticket {voided.code}: "
        "the place goes to the waitlist",
        data={"ticket_id": ticket.pk, "replaces": voided.pk, "preorder_id": preorder.pk},
        created_at=now,
    )
    return ticket


def events_to_refill(now: dt.datetime | None = None) -> list[int]:
    """Events that refill on their own, with someone waitlisted, whose waitlist is open."""
    now = now or timezone.now()
    candidates = (
        Event.objects.filter(
            refill_mode=Event.RefillMode.AUTOMATIC,
            cycle__charge_run_started_at__isnull=False,
            preorders__status=Status.WAITLISTED,
        )
        .select_related("cycle")
        .distinct()
    )
    return [event.pk for event in candidates if now < closes_at(event)]


def close_due(now: dt.datetime | None = None) -> int:
    """Waitlists whose time is over: everyone still on them is not allocated, and told once
    (the transition happens once, so the email does too)."""
    now = now or timezone.now()
    closed = 0
    events = (
        Event.objects.filter(preorders__status=Status.WAITLISTED).select_related("cycle").distinct()
    )
    for event in events:
        if now < closes_at(event):
            continue
        with transaction.atomic():
            PresaleCycle.objects.select_for_update().get(pk=event.cycle_id)
            lock_event(event.pk)
            waiting = list(
                PreOrder.objects.select_for_update()
                .filter(event=event, status=Status.WAITLISTED)
                .select_related("member", "event")
            )
            transition_many(
                waiting, Status.NOT_ALLOCATED, actor=None, source="system",
                note="The waitlist closed without a place", now=now,
            )  # fmt: skip
            for preorder in waiting:
                email_member_about(preorder, "not_allocated")
            closed += len(waiting)
    return closed


class WaitlistError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def set_refill_mode(event_id: int, mode: object, *, actor) -> Event:
    """Staff choose whether the event's freed places are offered automatically or on their
    word; the choice is logged."""
    if mode not in Event.RefillMode.values:
        raise WaitlistError("Choose how freed places are offered: automatically or by staff.")
    with transaction.atomic():
        event = lock_event(event_id)
        if event.refill_mode != mode:
            event.refill_mode = mode
            event.save(update_fields=["refill_mode"])
            EventLogEntry.objects.create(
                event=event,
                cycle_id=event.cycle_id,
                actor=actor,
                action="refill_mode",
                detail=f"Freed places: {Event.RefillMode(mode).label}",
            )
    return event


def waiting_in_order(event_id: int) -> list[PreOrder]:
    """The event's waitlist as staff see it: next in line first."""
    return list(
        PreOrder.objects.filter(event_id=event_id, status=Status.WAITLISTED)
        .select_related("member")
        .order_by("waitlist_position", "id")
    )
