"""Managers' pages for members, staff roles and invitations. Thin: the rules are in
members.staff_services."""

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from members import staff_services
from members.models import Invitation, Member
from members.permissions import manager_required
from members.roles import Role, role_of
from members.selectors import MEMBER_FILTERS, search_members

PER_PAGE = 50
INVITATION_STATES = {
    "open": "Sent",
    "accepted": "Used",
    "expired": "Expired",
    "revoked": "Revoked",
}


@manager_required
def members(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "")
    status = request.GET.get("status", "")
    page = Paginator(search_members(query, status), PER_PAGE).get_page(request.GET.get("page"))
    for member in page:
        member.role = role_of(member)
    return render(
        request,
        "members/staff/members.html",
        {"page": page, "q": query, "status": status, "statuses": list(MEMBER_FILTERS)},
    )


@manager_required
def member_detail(request: HttpRequest, member_id: int) -> HttpResponse:
    member = get_object_or_404(Member, pk=member_id)
    return render(
        request,
        "members/staff/member.html",
        {
            "member": member,
            "role": role_of(member),
            "roles": [role.value for role in Role],
            "preorders": member.preorders.select_related("event", "cycle").order_by("-created_at"),
            "log": member.account_log.select_related("actor")[:50],
            "invitation": Invitation.objects.filter(accepted_by=member).first(),
        },
    )


def _done(request: HttpRequest, member_id: int, action) -> HttpResponse:
    try:
        message = action()
    except staff_services.AccountError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, message)
    return redirect("members:staff_member", member_id)


@manager_required
@require_POST
def member_role(request: HttpRequest, member_id: int) -> HttpResponse:
    role = request.POST.get("role")
    if role is None:
        messages.error(request, "Choose a role from the list.")
        return redirect("members:staff_member", member_id)

    def change() -> str:
        member = staff_services.change_role(member_id, role, actor=request.user)
        return f"{member.full_name} now has {f'the {role} role' if role else 'no staff role'}."

    return _done(request, member_id, change)


@manager_required
@require_POST
def member_deactivate(request: HttpRequest, member_id: int) -> HttpResponse:
    if request.POST.get("confirm") != "deactivate":
        messages.error(request, "Tick the confirmation to deactivate this member.")
        return redirect("members:staff_member", member_id)

    def deactivate() -> str:
        cancelled = staff_services.deactivate(member_id, actor=request.user)
        note = (
            " Their undecided pre-orders were ended (a pending one cancelled, a waitlisted"
            " one taken off the waitlist) and they have been emailed."
            if cancelled
            else ""
        )
        return f"Deactivated: they can no longer sign in or pre-order.{note}"

    return _done(request, member_id, deactivate)


@manager_required
@require_POST
def member_reactivate(request: HttpRequest, member_id: int) -> HttpResponse:
    def reactivate() -> str:
        member = staff_services.reactivate(member_id, actor=request.user)
        return f"{member.full_name} is active again and can sign in."

    return _done(request, member_id, reactivate)


def invitation_list(request: HttpRequest) -> dict:
    """The invitations table: every invitation, filtered by state, 50 a page."""
    state = request.GET.get("state", "")
    invitations = Invitation.objects.select_related("invited_by", "accepted_by").order_by(
        "-created_at", "-id"
    )
    now = timezone.now()
    filters = {
        "open": Q(accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=now),
        "accepted": Q(accepted_at__isnull=False),
        "expired": Q(accepted_at__isnull=True, revoked_at__isnull=True, expires_at__lte=now),
        "revoked": Q(accepted_at__isnull=True, revoked_at__isnull=False),
    }
    if state in filters:
        invitations = invitations.filter(filters[state])
    return {
        "page": Paginator(invitations, PER_PAGE).get_page(request.GET.get("page")),
        "state": state,
        "states": INVITATION_STATES,
    }


@manager_required
@require_POST
def invitation_revoke(request: HttpRequest, invitation_id: int) -> HttpResponse:
    try:
        invitation = staff_services.revoke_invitation(invitation_id, actor=request.user)
    except staff_services.AccountError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"Revoked the invitation for {invitation.email}.")
    return redirect("members:invitations")


@manager_required
@require_POST
def invitation_resend(request: HttpRequest, invitation_id: int) -> HttpResponse:
    try:
        email = staff_services.resend_invitation(invitation_id, actor=request.user)
    except staff_services.AccountError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"Sent a new link to {email}; the old one no longer works.")
    return redirect("members:invitations")
