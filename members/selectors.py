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
