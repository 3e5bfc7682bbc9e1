"""What managers do to accounts: deactivate and reactivate members, give and take staff roles,
revoke and resend invitations. Each change is logged (MemberLogEntry) with who did it."""

from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from members import services
from members.models import Invitation, Member, MemberLogEntry
from members.roles import MANAGE, Role, role_of, set_role
from members.selectors import members_with_permission


class AccountError(Exception):
    """A change the rules refuse; the message is written for the manager."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _lock_staff_changes() -> None:
    """Serialise changes that could leave the club without a manager: two managers demoting
    each other at the same moment must not both succeed. The Manager group's row is the mutex."""
    list(Group.objects.select_for_update().filter(name=Role.MANAGER.value))


def _is_last_manager(member: Member) -> bool:
    managers = members_with_permission(MANAGE)
    return managers.filter(pk=member.pk).exists() and not managers.exclude(pk=member.pk).exists()


def _get(member_id: int) -> Member:
    member = Member.objects.select_for_update().filter(pk=member_id).first()
    if member is None:
        raise AccountError("That member does not exist.")
    return member


def change_role(member_id: int, role: str, *, actor: Member) -> Member:
    """Give a member one staff role, or none ("")."""
    if role and role not in {item.value for item in Role}:
        raise AccountError("Choose a role from the list.")
    new_role = Role(role) if role else None
    with transaction.atomic():
        _lock_staff_changes()
        member = _get(member_id)
        old_role = role_of(member)
        if old_role == new_role:
            return member
        if member.is_superuser:
            raise AccountError(
                f"{member.full_name} is a superuser: change their access in the Django admin."
            )
        if old_role == Role.MANAGER and _is_last_manager(member):
            who = "You are" if member.pk == actor.pk else f"{member.full_name} is"
            raise AccountError(
                f"{who} the last manager. Make someone else a manager first, so the club "
                "always has one."
            )
        if new_role is not None and not member.is_active:
            raise AccountError("Reactivate the member before giving them a staff role.")
        set_role(member, new_role)
        MemberLogEntry.objects.create(
            member=member,
            actor=actor,
            action="role",
            detail=f"{_role_name(old_role)} → {_role_name(new_role)}",
        )
    return member


def _role_name(role: Role | None) -> str:
    return role.value if role else "no staff role"


# The email a member gets for each way deactivation ends an undecided pre-order.
ENDED_EMAIL = {"cancelled": "preorder_cancelled_by_club", "not_allocated": "not_allocated"}


def deactivate(member_id: int, *, actor: Member) -> list[int]:
    """The member can no longer sign in (their sessions end) or pre-order. A pending
    pre-order is cancelled and a waitlisted one leaves the line, and they are emailed; approved,
    charging and paid ones stand. Returns the ids of the pre-orders ended."""
    from notifications.services import email_member_about
    from preorders.models import PreOrderLogEntry
    from preorders.services import end_undecided

    with transaction.atomic():
        _lock_staff_changes()
        member = _get(member_id)
        if member.pk == actor.pk:
            raise AccountError("You cannot deactivate your own account.")
        if not member.is_active:
            raise AccountError(f"{member.full_name} is already deactivated.")
        if _is_last_manager(member):
            raise AccountError(f"{member.full_name} is the last manager and cannot be deactivated.")
        member.is_active = False
        member.save(update_fields=["is_active"])
        ended = end_undecided(
            member, source=PreOrderLogEntry.Source.STAFF, actor=actor,
            note="Member deactivated by the club",
        )  # fmt: skip
        for preorder in ended:
            email_member_about(preorder, ENDED_EMAIL[preorder.status])
        MemberLogEntry.objects.create(
            member=member,
            actor=actor,
            action="deactivated",
            detail=(
                f"Undecided pre-order{'s' if len(ended) != 1 else ''} "
                f"{', '.join(f'#{p.pk}' for p in ended)} ended"
                if ended
                else ""
            ),
        )
    return [preorder.pk for preorder in ended]


def reactivate(member_id: int, *, actor: Member) -> Member:
    with transaction.atomic():
        member = _get(member_id)
        if member.is_active:
            raise AccountError(f"{member.full_name} is already active.")
        member.is_active = True
        member.save(update_fields=["is_active"])
        MemberLogEntry.objects.create(member=member, actor=actor, action="reactivated")
    return member


def revoke_invitation(invitation_id: int, *, actor: Member) -> Invitation:
    with transaction.atomic():
        invitation = Invitation.objects.select_for_update().filter(pk=invitation_id).first()
        if invitation is None:
            raise AccountError("That invitation does not exist.")
        if invitation.status == "accepted":
            raise AccountError(f"The invitation for {invitation.email} has already been used.")
        if invitation.status == "revoked":
            raise AccountError(f"The invitation for {invitation.email} is already revoked.")
        invitation.revoked_at = timezone.now()
        invitation.save(update_fields=["revoked_at"])
    return invitation


def resend_invitation(invitation_id: int, *, actor: Member) -> str:
    """A new link for the same address, emailed; the old link stops working. Returns the
    address."""
    invitation = Invitation.objects.filter(pk=invitation_id).first()
    if invitation is None:
        raise AccountError("That invitation does not exist.")
    if invitation.status == "accepted":
        raise AccountError(f"{invitation.email} has already joined; there is nothing to resend.")
    report = services.invite_members([invitation.email], invited_by=actor)
    if report.already_members:
        raise AccountError(f"{invitation.email} is already a member.")
    return invitation.email
