"""Staff pages for the charge run (dry-run preview, start, report) and the webhook log."""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from config.listing import status_filtered_page
from events.models import PresaleCycle
from events.pricing import format_pence
from members.permissions import manager_required, reviewer_required
from payments import charging, refunds, run_summary
from payments.models import StripeEvent
from payments.stripe_events import process_event
from payments.tasks import execute_charge_run
from preorders.models import PreOrder

# How often the charge-run page reloads itself while a run is under way.
REFRESH_SECONDS = 5


@reviewer_required
def charge_run(request: HttpRequest, cycle_id: int) -> HttpResponse:
    cycle = get_object_or_404(PresaleCycle, pk=cycle_id)
    now = timezone.now()
    return render(
        request,
        "payments/charge_run.html",
        {
            "cycle": cycle,
            "preview": charging.preview(cycle.pk),
            "report": charging.report(cycle.pk),
            "window_closed": cycle.window_ends_at <= now,
            "due": cycle.charge_at <= now,
            "approved": list(charging.approved_preorders(cycle.pk)[:200]),
            "running": run_summary.run_in_progress(cycle.pk, now),
            "refresh_seconds": REFRESH_SECONDS,
        },
    )


@manager_required
@require_POST
def start_charge_run(request: HttpRequest, cycle_id: int) -> HttpResponse:
    cycle = get_object_or_404(PresaleCycle, pk=cycle_id)
    if run_summary.run_in_progress(cycle.pk):
        messages.error(request, "A charge run is already under way for this week.")
        return redirect("payments:charge_run", cycle.pk)
    if request.POST.get("confirm") != "charge":
        messages.error(request, "Tick the confirmation to start charging cards.")
        return redirect("payments:charge_run", cycle.pk)
    try:
        run = charging.start_run(cycle.pk, trigger="staff", actor=request.user, early=True)
    except charging.ChargeRunError as error:
        messages.error(request, error.message)
        return redirect("payments:charge_run", cycle.pk)
    execute_charge_run.delay(run.pk)
    messages.success(request, "The charge run has started. This page follows it as it goes.")
    return redirect("payments:charge_run", cycle.pk)


@manager_required
def webhook_log(request: HttpRequest) -> HttpResponse:
    events = StripeEvent.objects.select_related("preorder__member").order_by("-received_at", "-id")
    context = status_filtered_page(request, events, StripeEvent.Status)
    return render(request, "payments/webhook_log.html", context)


@manager_required
@require_POST
def replay_webhook(request: HttpRequest, event_pk: int) -> HttpResponse:
    event = get_object_or_404(StripeEvent, pk=event_pk)
    if event.status != StripeEvent.Status.FAILED:
        messages.error(request, "Only an event whose processing failed can be replayed.")
        return redirect("payments:webhook_log")
    event = process_event(event.pk)
    if event.status == StripeEvent.Status.FAILED:
        messages.error(request, f"Replay of {event.stripe_id} failed again: {event.error}")
    else:
        messages.success(request, f"Replayed {event.stripe_id}: {event.result}")
    return redirect("payments:webhook_log")


@manager_required
@require_POST
def refund(request: HttpRequest, preorder_id: int) -> HttpResponse:
    preorder = get_object_or_404(PreOrder, pk=preorder_id)
    if request.POST.get("confirm") != "refund":
        messages.error(request, "Tick the confirmation to refund the payment.")
        return redirect("staff:preorder", preorder.pk)
    try:
        done = refunds.refund_preorder(
            preorder.pk, actor=request.user, reason=request.POST.get("reason")
        )
    except refunds.RefundError as error:
        messages.error(request, error.message)
    else:
        messages.success(
            request,
            f"Refunded {format_pence(done.amount_pence)} to {preorder.member.full_name}; "
            "their ticket is void and they have been emailed.",
        )
    return redirect("staff:preorder", preorder.pk)
