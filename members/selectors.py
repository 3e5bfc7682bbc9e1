"""Reads about members and staff."""

from django.db.models import Q, QuerySet

from members.models import Member
from members.roles import MANAGE


def members_with_permission(codename: str) -> QuerySet[Member]:
    """Active members holding a members.<codename> permission, through a group, directly, or as
    superusers."""
    in_group = Q(
        groups__permissions__codename=codename,
        groups__permissions__content_type__app_label="members",
    )
    directly = Q(
        user_permissions__codename=codename,
        user_permissions__content_type__app_label="members",
    )
    holds = Q(is_superuser=True) | in_group | directly
    return Member.objects.filter(holds, is_active=True).distinct()


def manager_emails() -> list[str]:
    """Where staff alerts and run summaries go."""
    return list(members_with_permission(MANAGE).order_by("email").values_list("email", flat=True))


MEMBER_FILTERS = {
    "active": Q(is_active=True),
    "deactivated": Q(is_active=False),
    "staff": Q(is_superuser=True) | Q(groups__isnull=False),
}


def search_members(query: str = "", status: str = "") -> QuerySet[Member]:
    """Members whose name or email contains `query`, optionally only active, deactivated or
    staff, newest first, each with how many pre-orders they have placed."""
    from django.db.models import Count

    members = Member.objects.all()
    query = " ".join(query.split())[:100]
    if query:
        members = members.filter(Q(full_name__icontains=query) | Q(email__icontains=query))
    if status in MEMBER_FILTERS:
        members = members.filter(MEMBER_FILTERS[status])
    return (
        members.distinct()
        .annotate(preorder_count=Count("preorders", distinct=True))
        .prefetch_related("groups")
        .order_by("-date_joined", "-id")
    )
