"""Staff decisions on pre-orders: approve, deny, in bulk, or automatically up to supply.

Approvals never exceed supply. Every decision runs under the cycle's row lock (so it cannot
interleave with the start of the charge run) and the event's row lock (so two staff members
approving at once cannot oversell), and counts the places left inside those locks."""

import datetime as dt
import random
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from events import london
from events.models import Event, EventLogEntry, PresaleCycle
from notifications.services import email_member_about
from preorders.models import PreOrder
from preorders.services import transition_many
from preorders.states import Status
from preorders.waitlist import waitlist_pending
from tickets.selectors import pool_summary
from tickets.services import lock_event

DECIDABLE = (Status.PENDING, Status.APPROVED, Status.DENIED)


class DecisionError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class DecisionResult:
    changed: list[int] = field(default_factory=list)
    unchanged: list[int] = field(default_factory=list)
    no_supply: list[int] = field(default_factory=list)
    not_decidable: list[int] = field(default_factory=list)
    left: int = 0
    seed: int | None = None

    def summary(self, verb: str, *, refusals: bool = True) -> str:
        parts = [f"{verb.capitalize()} {len(self.changed)}."]
        if self.unchanged:
            parts.append(f"{len(self.unchanged)} already {verb}.")
        if self.no_supply and refusals:
            parts.append(f"{len(self.no_supply)} could not be approved: no tickets left.")
        if self.not_decidable:
            parts.append(f"{len(self.not_decidable)} skipped (cancelled or already charged).")
        return " ".join(parts)


def _lock_for_decisions(event_id: int, now: dt.datetime) -> tuple[PresaleCycle, Event]:
    event = Event.objects.select_related("cycle").get(pk=event_id)
    cycle = PresaleCycle.objects.select_for_update().get(pk=event.cycle_id)
    if cycle.decisions_locked:
        raise DecisionError("The charge run has started: decisions for this week are locked.")
    if now < cycle.window_ends_at:
        raise DecisionError(
            "Pre-orders are still open until "
            f"{london.when(cycle.last_open_moment)}; decisions start when the window closes "
            "(or close it early from the events page)."
        )
    return cycle, lock_event(event_id)


def _locked_preorders(event_id: int, preorder_ids: Iterable[int]) -> list[PreOrder]:
    ids = sorted({int(pk) for pk in preorder_ids})
    return list(
        PreOrder.objects.select_for_update()
        .filter(event_id=event_id, pk__in=ids)
        .order_by("created_at", "id")
    )


def approve(event_id: int, preorder_ids: Iterable[int], *, actor, note: str = "") -> DecisionResult:
    """Approve the given pre-orders of one event, first placed first, while places are left."""
    now = timezone.now()
    result = DecisionResult()
    with transaction.atomic():
        _, event = _lock_for_decisions(event_id, now)
        left = pool_summary(event.pk).left
        to_approve = []
        for preorder in _locked_preorders(event.pk, preorder_ids):
            if preorder.status == Status.APPROVED:
                result.unchanged.append(preorder.pk)
            elif preorder.status not in DECIDABLE:
                result.not_decidable.append(preorder.pk)
            elif left > 0:
                to_approve.append(preorder)
                left -= 1
            else:
                result.no_supply.append(preorder.pk)
        transition_many(
            to_approve, Status.APPROVED, actor=actor, source="staff", note=note, now=now
        )
        result.changed = [p.pk for p in to_approve]
        result.left = left
    return result


def deny(event_id: int, preorder_ids: Iterable[int], *, actor, note: str = "") -> DecisionResult:
    """Deny the given pre-orders; an approved one gives its place back to the pool."""
    now = timezone.now()
    result = DecisionResult()
    with transaction.atomic():
        _, event = _lock_for_decisions(event_id, now)
        to_deny = []
        for preorder in _locked_preorders(event.pk, preorder_ids):
            if preorder.status == Status.DENIED:
                result.unchanged.append(preorder.pk)
            elif preorder.status in DECIDABLE:
                to_deny.append(preorder)
            else:
                result.not_decidable.append(preorder.pk)
        transition_many(to_deny, Status.DENIED, actor=actor, source="staff", note=note, now=now)
        result.changed = [p.pk for p in to_deny]
        result.left = pool_summary(event.pk).left
    return result


def draw_ballot(candidate_ids: list[int], places: int, seed: int) -> list[int]:
    """The ballot's winners: a pure function of its inputs, so anyone can re-run it."""
    ordered = sorted(candidate_ids)
    if places >= len(ordered):
        return ordered
    return sorted(random.Random(seed).sample(ordered, places))  # noqa: S311 - fair, not secret


def auto_fulfil(
    event_id: int, *, actor, mode: str | None = None, seed: int | None = None
) -> DecisionResult:
    """Approve pending pre-orders up to the places left: first come first served, or by a ballot
    whose seed is recorded so the draw can be re-run and audited."""
    now = timezone.now()
    result = DecisionResult()
    with transaction.atomic():
        _, event = _lock_for_decisions(event_id, now)
        mode = mode or event.fulfilment_mode
        if mode not in Event.FulfilmentMode.values:
            raise DecisionError("Choose first come, first served or a ballot.")
        left = pool_summary(event.pk).left
        pending = list(
            PreOrder.objects.select_for_update()
            .filter(event=event, status=Status.PENDING)
            .order_by("created_at", "id")
        )
        places = max(left, 0)
        if mode == Event.FulfilmentMode.FIFO:
            seed = None  # a seed means nothing without a draw
            chosen = pending[:places]
        else:
            seed = secrets.randbits(63) if seed is None else seed
            winners = set(draw_ballot([p.pk for p in pending], places, seed))
            chosen = [p for p in pending if p.pk in winners]
            result.seed = seed
        label = Event.FulfilmentMode(mode).label
        note = f"Auto-fulfil: {label}" + (f", seed {seed}" if mode == "ballot" else "")
        transition_many(chosen, Status.APPROVED, actor=actor, source="staff", note=note, now=now)
        result.changed = [p.pk for p in chosen]
        chosen_ids = {p.pk for p in chosen}
        result.no_supply = [p.pk for p in pending if p.pk not in chosen_ids]
        result.left = left - len(chosen)
        EventLogEntry.objects.create(
            event=event,
            cycle_id=event.cycle_id,
            actor=actor,
            action="auto_fulfil",
            detail=(
                f"{label}: approved {len(chosen)} of {len(pending)} pending "
                f"with {places} places left" + (f"; ballot seed {seed}" if seed is not None else "")
            ),
            data={
                "mode": mode,
                "seed": seed,
                "places": places,
                "candidates": sorted(p.pk for p in pending),
                "approved": sorted(result.changed),
            },
            created_at=now,
        )
    return result


def verify_ballot(entry: EventLogEntry) -> bool:
    """Re-run a recorded ballot from its seed and candidates: does it give the same winners?"""
    data = entry.data
    if entry.action != "auto_fulfil" or data.get("mode") != "ballot":
        raise ValueError("That log entry is not a ballot.")
    return draw_ballot(data["candidates"], data["places"], data["seed"]) == data["approved"]


def lock_decisions(cycle_id: int) -> int:
    """The first step of the charge run: optionally auto-fulfil every event, then lock decisions
    for good. Pre-orders nobody approved are waitlisted (PRESALE_WAITLIST, preorders/waitlist.py)
    or else become "not allocated"; every member who will not get a ticket is told (no charge
    was made). Returns how many were told. Safe to call twice: the second call finds the cycle
    locked and does nothing."""
    with transaction.atomic():
        cycle = PresaleCycle.objects.select_for_update().get(pk=cycle_id)
        if cycle.decisions_locked:
            return 0
    if settings.PRESALE_AUTO_FULFIL:
        for event_id in Event.objects.filter(cycle_id=cycle_id).values_list("pk", flat=True):
            auto_fulfil(event_id, actor=None)
    with transaction.atomic():
        cycle = PresaleCycle.objects.select_for_update().get(pk=cycle_id)
        if cycle.decisions_locked:
            return 0
        # Read the clock only once the lock is held: a decision that got the lock first must
        # be recorded before the moment decisions were locked.
        now = timezone.now()
        cycle.charge_run_started_at = now
        cycle.save(update_fields=["charge_run_started_at"])
        if settings.PRESALE_WAITLIST:
            # Still pending: next in line for a freed place, told only once it is final.
            waitlist_pending(cycle, now)
        pending = list(
            PreOrder.objects.select_for_update().filter(cycle=cycle, status=Status.PENDING)
        )
        transition_many(
            pending,
            Status.NOT_ALLOCATED,
            actor=None,
            source="system",
            note="Not approved before the charge run",
            now=now,
        )
        not_allocated = list(
            PreOrder.objects.filter(
                cycle=cycle, status__in=(Status.DENIED, Status.NOT_ALLOCATED)
            ).select_related("member", "event", "cycle")
        )
        for preorder in not_allocated:
            email_member_about(preorder, "not_allocated")
    return len(not_allocated)
