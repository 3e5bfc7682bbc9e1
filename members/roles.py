"""Staff roles: Django groups holding three permissions of our own.

- Door: checks tickets in at the venue's door, nothing else.
- Reviewer: prepares events and pools, approves and denies pre-orders (and may work the door).
- Manager: everything a reviewer does, plus the charge run, refunds, members, invitations and
  staff roles.

Views ask for a permission, never for a group name, so a club may build other groups from the
same permissions in the Django admin. Superusers hold every permission."""

from enum import StrEnum

from django.contrib.auth.models import Group
from django.db import transaction

# Permission codenames, declared on members.Member (Meta.permissions).
REVIEW = "review_presale"
MANAGE = "manage_presale"
CHECK_IN = "check_in_tickets"

# As `user.has_perm` wants them: "app_label.codename".
PERM_REVIEW = f"members.{REVIEW}"
PERM_MANAGE = f"members.{MANAGE}"
PERM_CHECK_IN = f"members.{CHECK_IN}"

ALL_PERMISSIONS = (REVIEW, MANAGE, CHECK_IN)  # their names: members.Member.Meta


class Role(StrEnum):
    DOOR = "Door"
    REVIEWER = "Reviewer"
    MANAGER = "Manager"


ROLE_PERMISSIONS: dict[Role, tuple[str, ...]] = {
    Role.DOOR: (CHECK_IN,),
    Role.REVIEWER: (REVIEW, CHECK_IN),
    Role.MANAGER: (REVIEW, MANAGE, CHECK_IN),
}
# Roles that may open Django's admin (for support work); the door never needs it.
ADMIN_ROLES = frozenset({Role.REVIEWER, Role.MANAGER})


def sync_role_groups(*, using: str = "default", **_signal) -> None:
    """Create the role groups and give each exactly its permissions (post_migrate receiver)."""
    from django.contrib.auth.models import Permission

    permissions = {
        p.codename: p
        for p in Permission.objects.using(using).filter(
            content_type__app_label="members", codename__in=ALL_PERMISSIONS
        )
    }
    if len(permissions) < len(ALL_PERMISSIONS):
        return  # permissions not created yet (a partial migrate); the next run does it
    for role, codenames in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.using(using).get_or_create(name=role.value)
        group.permissions.set([permissions[codename] for codename in codenames])


def role_of(member) -> Role | None:
    """The highest role a member holds through their groups (superusers count as managers)."""
    if member.is_superuser:
        return Role.MANAGER
    names = set(member.groups.values_list("name", flat=True))
    for role in (Role.MANAGER, Role.REVIEWER, Role.DOOR):
        if role.value in names:
            return role
    return None


@transaction.atomic
def set_role(member, role: Role | None) -> None:
    """Give a member exactly one staff role (or none): the role's group, and Django's staff flag
    for the roles that may open the admin. Other groups a club made itself are left alone."""
    member.groups.remove(*Group.objects.filter(name__in=[r.value for r in Role]))
    if role is not None:
        try:
            group = Group.objects.get(name=Role(role).value)
        except Group.DoesNotExist:  # a database flushed since migrate (tests)
            sync_role_groups()
            group = Group.objects.get(name=Role(role).value)
        member.groups.add(group)
    is_staff = member.is_superuser or role in ADMIN_ROLES
    if member.is_staff != is_staff:
        member.is_staff = is_staff
        member.save(update_fields=["is_staff"])
    # Django caches a user's permissions on the instance.
    for cache in ("_perm_cache", "_user_perm_cache", "_group_perm_cache"):
        member.__dict__.pop(cache, None)


def home_for(member) -> str:
    """The page a person starts from (URL name): staff who review start on the events page, the
    door role at the door, members on their dashboard."""
    if member.is_authenticated and member.is_active:
        if member.has_perm(PERM_REVIEW):
            return "staff:events"
        if member.has_perm(PERM_CHECK_IN):
            return "tickets:door_events"
    return "preorders:dashboard"
