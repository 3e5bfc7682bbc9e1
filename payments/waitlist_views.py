"""Staff controls for an event's waitlist: how freed places are offered, and offering them now."""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from events.models import Event
from members.permissions import manager_required, reviewer_required
from payments.tasks import offer_freed_places as offer_task
from preorders import waitlist


@reviewer_required
@require_POST
def refill_mode(request: HttpRequest, event_id: int) -> HttpResponse:
    event = get_object_or_404(Event, pk=event_id)
    try:
        event = waitlist.set_refill_mode(
            event.pk, request.POST.get("refill_mode"), actor=request.user
        )
    except waitlist.WaitlistError as problem:
        messages.error(request, problem.message)
    else:
        messages.success(request, f"Freed places: {event.get_refill_mode_display()}.")
    return redirect("staff:event", event.pk)


@manager_required  # it charges members' cards
@require_POST
def offer_freed_places(request: HttpRequest, event_id: int) -> HttpResponse:
    event = get_object_or_404(Event.objects.select_related("cycle"), pk=event_id)
    if not event.cycle.decisions_locked:
        messages.error(
            request, "Freed places are offered after the charge run; until then, decide."
        )
        return redirect("staff:event", event.pk)
    offer_task.delay(event.pk, request.user.pk)
    messages.success(
        request, "Freed places are being offered to the waitlist, in order; cards are charged now."
    )
    return redirect("staff:event", event.pk)
