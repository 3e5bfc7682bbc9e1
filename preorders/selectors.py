"""Reads on pre-orders. A member only ever sees their own."""

from django.contrib.auth import get_user_model

from events.models import PresaleCycle
from preorders.models import PreOrder
from preorders.states import LIVE_STATUSES

Member = get_user_model()


def _as_pk(value: object) -> int | None:
    try:
        pk = int(value)
    except (TypeError, ValueError):
        return None
    return pk if 0 < pk < 2**63 else None


def live_preorder(member: Member, cycle: PresaleCycle) -> PreOrder | None:
    return (
        PreOrder.objects.filter(member=member, cycle=cycle, status__in=LIVE_STATUSES)
        .select_related("event", "cycle")
        .first()
    )


def member_preorder(member: Member, preorder_id: object) -> PreOrder | None:
    pk = _as_pk(preorder_id)
    if pk is None:
        return None
    return PreOrder.objects.filter(pk=pk, member=member).select_related("event", "cycle").first()


def member_preorder_for_update(member: Member, preorder_id: object) -> PreOrder | None:
    pk = _as_pk(preorder_id)
    if pk is None:
        return None
    return (
        PreOrder.objects.select_for_update(of=("self",))
        .filter(pk=pk, member=member)
        .select_related("event", "cycle")
        .first()
    )


def member_history(member: Member, limit: int = 20) -> list[PreOrder]:
    return list(
        PreOrder.objects.filter(member=member)
        .select_related("event", "cycle")
        .order_by("-created_at", "-id")[:limit]
    )
