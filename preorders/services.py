"""Writes on pre-orders: placing, editing and cancelling (the member's side), and the one guarded
function through which every status change goes."""

import datetime as dt

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from events import london
from events.models import Event
from events.pricing import format_pence
from notifications.services import email_member_about
from payments.cards import verify_saved_card
from payments.services import CardSetupError, VerifiedCard, verify_card_setup
from preorders import selectors
from preorders.models import PreOrder, PreOrderLogEntry
from preorders.states import MEMBER_EDITABLE_STATUSES, Status, check_transition

Member = get_user_model()


class PreorderError(Exception):
    """A request the rules refuse. The message is written for the member."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def transition(
    preorder_id: int,
    target: Status,
    *,
    source: str,
    actor: Member | None = None,
    note: str = "",
    now: dt.datetime | None = None,
) -> tuple[PreOrder, bool]:
    """Move a pre-order to `target`, under a row lock, and log it. Applying the same move twice
    is a no-op (returns changed=False); an illegal move raises IllegalTransition."""
    with transaction.atomic():
        preorder = PreOrder.objects.select_for_update().get(pk=preorder_id)
        if preorder.status == target:
            return preorder, False
        check_transition(preorder.status, target)
        previous = preorder.status
        preorder.status = target
        preorder.status_changed_at = now or timezone.now()
        preorder.save(update_fields=["status", "status_changed_at", "updated_at"])
        PreOrderLogEntry.objects.create(
            preorder=preorder,
            source=source,
            actor=actor,
            action="status",
            from_status=previous,
            to_status=target,
            note=note,
            created_at=preorder.status_changed_at,
        )
    return preorder, True


# A member who leaves or is deactivated ends what is still undecided: a pending pre-order is
# cancelled; a waitlisted one leaves the line, since it could otherwise be promoted to a freed
# place and charged. Approved and later ones stand: the club decided on them.
UNDECIDED_ENDS = {Status.PENDING: Status.CANCELLED, Status.WAITLISTED: Status.NOT_ALLOCATED}


def end_undecided(
    member: Member, *, source: str, actor: Member | None, note: str, now: dt.datetime | None = None
) -> list[PreOrder]:
    """End the member's pending and waitlisted pre-orders; returns them in their new state."""
    ended = []
    undecided = PreOrder.objects.filter(member=member, status__in=list(UNDECIDED_ENDS))
    for preorder in undecided.order_by("pk"):
        preorder, _ = transition(
            preorder.pk, UNDECIDED_ENDS[preorder.status], source=source, actor=actor, note=note,
            now=now,
        )  # fmt: skip
        ended.append(preorder)
    return ended


def transition_many(
    preorders: list[PreOrder],
    target: Status,
    *,
    actor: Member | None,
    source: str,
    note: str,
    now: dt.datetime,
) -> None:
    """Move pre-orders the caller has already locked to `target`, in two queries, and log each.
    Every move is checked first: one illegal move and nothing changes."""
    if not preorders:
        return
    for preorder in preorders:
        check_transition(preorder.status, target)
    PreOrder.objects.filter(pk__in=[p.pk for p in preorders]).update(
        status=target, status_changed_at=now, updated_at=now
    )
    PreOrderLogEntry.objects.bulk_create(
        PreOrderLogEntry(
            preorder=preorder,
            source=source,
            actor=actor,
            action="status",
            from_status=preorder.status,
            to_status=target,
            note=note,
            created_at=now,
        )
        for preorder in preorders
    )
    for preorder in preorders:
        preorder.status = target
        preorder.status_changed_at = now


def _open_event(event_id: object, now: dt.datetime, *, lock: bool = False) -> Event:
    """The event, if its cycle's pre-order window is open at `now`. With `lock`, its row stays
    locked to the end of the transaction, so staff cannot move, delete or reprice it meanwhile
    (events/planning.py takes the same lock)."""
    try:
        event_pk = int(event_id)
    except (TypeError, ValueError):
        raise PreorderError("Please choose an event from this week's presale.") from None
    if not 0 < event_pk < 2**63:
        raise PreorderError("Please choose an event from this week's presale.")
    events = Event.objects.select_for_update(of=("self",)) if lock else Event.objects
    event = events.filter(pk=event_pk).select_related("cycle").first()
    if event is None:
        raise PreorderError("That event is not part of this week's presale.")
    cycle = event.cycle
    if now >= cycle.window_ends_at:
        raise PreorderError(
            f"Pre-orders for {event.title} closed at {london.when(cycle.last_open_moment)}."
        )
    if now < cycle.opens_at:
        raise PreorderError(f"Pre-orders for {event.title} open at {london.when(cycle.opens_at)}.")
    return event


def _lock_member(member: Member) -> None:
    """Serialises a member's card choices with the removal of a card (members.account), so a
    pre-order cannot take up a card in the instant it is being detached."""
    Member.objects.select_for_update().filter(pk=member.pk).first()


def _verified_card(
    member: Member, setup_intent_id: object, payment_method_id: object
) -> VerifiedCard:
    """A new card (a SetupIntent the browser confirmed) or a saved one, checked with Stripe.
    A saved card is checked under the member's row lock: call inside a transaction."""
    try:
        if payment_method_id:
            _lock_member(member)
            return verify_saved_card(member, payment_method_id)
        return verify_card_setup(member, setup_intent_id)
    except CardSetupError as error:
        raise PreorderError(error.message) from error


def place_preorder(
    member: Member,
    event_id: object,
    setup_intent_id: object = None,
    *,
    payment_method_id: object = None,
) -> PreOrder:
    """Place the member's one pre-order of the week, paid later by a new card (a confirmed
    SetupIntent) or by a card saved earlier (its payment method id), never both."""
    now = timezone.now()
    event = _open_event(event_id, now)
    if selectors.live_preorder(member, event.cycle) is not None:
        raise PreorderError("You already have a pre-order this week. You can edit or cancel it.")
    if bool(setup_intent_id) == bool(payment_method_id):
        raise PreorderError("Please choose one of your saved cards or enter a new card.")
    try:
        with transaction.atomic():
            card = _verified_card(member, setup_intent_id, payment_method_id)
            # A manager may have deactivated the member meanwhile (members.staff_services
            # locks the same row while it cancels their pending pre-orders).
            active = (
                Member.objects.select_for_update()
                .filter(pk=member.pk)
                .values_list("is_active", flat=True)
                .first()
            )
            if not active:
                raise PreorderError("Your membership is not active, so you cannot pre-order.")
            # The window may have closed while Stripe was answering.
            event = _open_event(event.pk, timezone.now(), lock=True)
            preorder = PreOrder.objects.create(
                member=member,
                event=event,
                cycle=event.cycle,
                amount_pence=event.member_price_pence,
                stripe_customer_id=card.customer_id,
                payment_method_id=card.payment_method_id,
                setup_intent_id=card.setup_intent_id,
                card_brand=card.brand,
                card_last4=card.last4,
                created_at=now,
                status_changed_at=now,
            )
            PreOrderLogEntry.objects.create(
                preorder=preorder,
                source=PreOrderLogEntry.Source.MEMBER,
                actor=member,
                action="placed",
                to_status=Status.PENDING,
                note=(
                    f"{event.title}, {card.brand.title()} •••• {card.last4}"
                    f"{' (saved card)' if card.setup_intent_id is None else ''}, "
                    f"{format_pence(preorder.amount_pence)}"
                ),
            )
            _email_member(preorder, "preorder_placed")
    except IntegrityError as error:
        raise _explain_integrity_error(error) from error
    return preorder


def _explain_integrity_error(error: IntegrityError) -> PreorderError:
    text = str(error).lower()
    if "setup_intent" in text:
        return PreorderError("That card confirmation has already been used. Please try again.")
    return PreorderError("You already have a pre-order this week. You can edit or cancel it.")


def _editable(member: Member, preorder_id: object) -> PreOrder:
    """The member's own pre-order, locked, if it may still be changed."""
    preorder = selectors.member_preorder_for_update(member, preorder_id)
    if preorder is None:
        raise PreorderError("We could not find that pre-order.")
    if preorder.status not in MEMBER_EDITABLE_STATUSES:
        raise PreorderError(
            f"This pre-order is {preorder.get_status_display().lower()} and can no longer change."
        )
    if not preorder.cycle.is_open_at(timezone.now()):
        raise PreorderError("The pre-order window has closed, so this pre-order is now locked.")
    return preorder


def edit_preorder(
    member: Member,
    preorder_id: object,
    *,
    event_id: object,
    setup_intent_id: object = None,
    payment_method_id: object = None,
) -> PreOrder:
    """Switch to another event of the same cycle and/or to another card: a new one (a confirmed
    SetupIntent) or one saved earlier."""
    if setup_intent_id and payment_method_id:
        raise PreorderError("Please choose one of your saved cards or enter a new card.")
    try:
        with transaction.atomic():
            card: VerifiedCard | None = None
            if setup_intent_id or payment_method_id:
                card = _verified_card(member, setup_intent_id, payment_method_id)
            preorder = _editable(member, preorder_id)
            event = _open_event(event_id, timezone.now(), lock=True)
            if event.cycle_id != preorder.cycle_id:
                raise PreorderError("You can only switch to an event of the same week.")
            changes = []
            if event.pk != preorder.event_id:
                changes.append(f"event {preorder.event.title} → {event.title}")
                preorder.event = event
                preorder.amount_pence = event.member_price_pence
            if card is not None and card.payment_method_id != preorder.payment_method_id:
                changes.append(
                    f"card {preorder.card_brand.title()} •••• {preorder.card_last4} → "
                    f"{card.brand.title()} •••• {card.last4}"
                )
                preorder.payment_method_id = card.payment_method_id
                preorder.setup_intent_id = card.setup_intent_id
                preorder.card_brand = card.brand
                preorder.card_last4 = card.last4
            if not changes:
                return preorder
            preorder.save()
            PreOrderLogEntry.objects.create(
                preorder=preorder,
                source=PreOrderLogEntry.Source.MEMBER,
                actor=member,
                action="edited",
                from_status=preorder.status,
                to_status=preorder.status,
                note="; ".join(changes),
            )
            _email_member(preorder, "preorder_updated")
    except IntegrityError as error:
        raise _explain_integrity_error(error) from error
    return preorder


def cancel_preorder(member: Member, preorder_id: object) -> PreOrder:
    with transaction.atomic():
        preorder = _editable(member, preorder_id)
        preorder, _ = transition(
            preorder.pk, Status.CANCELLED, source=PreOrderLogEntry.Source.MEMBER, actor=member
        )
        _email_member(preorder, "preorder_cancelled")
    return preorder


def _email_member(preorder: PreOrder, template: str) -> None:
    email_member_about(preorder, template, cycle=preorder.cycle)
