"""Staff pages about one pre-order: its page (history, emails, ticket, charges, refund), a
decision on it alone, and resending its ticket email."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from members.permissions import reviewer_required
from preorders import decisions
from preorders.models import PreOrder
from preorders.states import REFUNDABLE_STATUSES
from tickets import delivery
from tickets.models import Ticket


@reviewer_required
def preorder_detail(request: HttpRequest, preorder_id: int) -> HttpResponse:
    preorder = get_object_or_404(
        PreOrder.objects.select_related("member", "event", "cycle"), pk=preorder_id
    )
    return render(
        request,
        "preorders/staff/preorder.html",
        {
            "preorder": preorder,
            "log": preorder.log_entries.select_related("actor").order_by("-created_at", "-id"),
            "in_review": preorder.cycle.in_review_at(timezone.now()),
            "emails": preorder.emails.order_by("-created_at")[:20],
            "ticket": Ticket.objects.filter(preorder=preorder).first(),
            "attempts": preorder.charge_attempts.order_by("number"),
            "refundable": preorder.status in REFUNDABLE_STATUSES,
            "refund": preorder.refunds.exclude(status="failed")
            .select_related("requested_by")
            .first(),
        },
    )


@reviewer_required
@require_POST
def decide_one(request: HttpRequest, preorder_id: int) -> HttpResponse:
    preorder = get_object_or_404(PreOrder, pk=preorder_id)
    action = request.POST.get("action")
    if action not in ("approve", "deny"):
        messages.error(request, "Choose approve or deny.")
        return redirect("staff:preorder", preorder.pk)
    try:
        decide_fn = decisions.approve if action == "approve" else decisions.deny
        result = decide_fn(preorder.event_id, [preorder.pk], actor=request.user)
    except decisions.DecisionError as error:
        messages.error(request, error.message)
    else:
        if result.no_supply:
            messages.error(request, "Not approved: the event's pool has no places left.")
        elif result.not_decidable:
            messages.error(request, "This pre-order can no longer be decided.")
        else:
            verb = "approved" if action == "approve" else "denied"
            messages.success(request, f"Pre-order #{preorder.pk} {verb}.")
    if request.POST.get("next") == "event":
        return redirect("staff:event", preorder.event_id)
    return redirect("staff:preorder", preorder.pk)


@reviewer_required
@require_POST
def resend_ticket(request: HttpRequest, preorder_id: int) -> HttpResponse:
    preorder = get_object_or_404(PreOrder, pk=preorder_id)
    to_email = (request.POST.get("to_email") or "").strip() or None
    if to_email is not None:
        try:
            if len(to_email) > 254:
                raise ValidationError("too long")
            validate_email(to_email)
        except ValidationError:
            messages.error(request, "That is not a valid email address. Nothing was sent.")
            return redirect("staff:preorder", preorder.pk)
    try:
        email = delivery.resend_ticket(preorder.pk, actor=request.user, to_email=to_email)
    except delivery.ResendError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"The ticket is on its way to {email.to_email}.")
    return redirect("staff:preorder", preorder.pk)
