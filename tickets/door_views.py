"""The door: pick tonight's event, then scan or type ticket codes. Thin: the rules are in
tickets.checkin. The scan form works without JavaScript (a normal POST answered with the page);
the scanner script posts the same form with `Accept: application/json` to keep the camera on."""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from events import london
from events.models import Event
from members.permissions import door_required, manager_required
from tickets import checkin
from tickets.models import CheckIn


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _door_page(
    request: HttpRequest, event: Event, answer: checkin.Answer | None = None, status: int = 200
) -> HttpResponse:
    context = {
        "event": event,
        "answer": answer,
        "count": checkin.door_count(event.pk),
        "recent": checkin.recent_scans(event.pk),
    }
    return render(request, "tickets/door.html", context, status=status)


@door_required
@require_safe
def door_events(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    events = [(event, checkin.is_tonight(event, now)) for event in checkin.door_events(now)]
    return render(request, "tickets/door_events.html", {"events": events})


@door_required
@require_safe
def door(request: HttpRequest, event_id: int) -> HttpResponse:
    event = get_object_or_404(Event, pk=event_id)
    return _door_page(request, event)


@door_required
@require_POST
def door_scan(request: HttpRequest, event_id: int) -> HttpResponse:
    event = get_object_or_404(Event, pk=event_id)
    code = request.POST.get("code", "")
    if not code.strip():
        message = "Type or scan a ticket code first."
        if _wants_json(request):
            return JsonResponse({"error": message}, status=400)
        messages.error(request, message)
        return _door_page(request, event, status=400)
    answer = checkin.check_in(event.pk, code, door=request.user)
    if _wants_json(request):
        count = checkin.door_count(event.pk)
        scanned_at = f"{london.to_london(timezone.now()):%H:%M}"
        return JsonResponse({**answer.as_dict(), "count": count.as_dict(), "time": scanned_at})
    return _door_page(request, event, answer)


@door_required
@require_safe
def door_count(request: HttpRequest, event_id: int) -> JsonResponse:
    event = get_object_or_404(Event, pk=event_id)
    return JsonResponse(checkin.door_count(event.pk).as_dict())


@manager_required
@require_http_methods(["GET", "HEAD", "POST"])
def check_in_undo(request: HttpRequest, check_in_id: int) -> HttpResponse:
    check_in = get_object_or_404(
        CheckIn.objects.select_related("ticket__event", "ticket__preorder__member"),
        pk=check_in_id,
    )
    event = check_in.ticket.event
    error = ""
    reason = ""
    if request.method == "POST":
        reason = request.POST.get("reason", "")
        try:
            checkin.undo_check_in(check_in.pk, actor=request.user, reason=reason)
        except checkin.CheckInError as refusal:
            error = refusal.message
        else:
            messages.success(
                request,
                f"The check-in of ticket {check_in.ticket.code} is undone: "
                "it can be scanned in again.",
            )
            return redirect(reverse("staff:event", args=[event.pk]) + "#at-the-door")
    context = {
        "check_in": check_in,
        "event": event,
        "error": error,
        "reason": reason,
        "max_reason": checkin.MAX_REASON_LENGTH,
    }
    return render(request, "tickets/check_in_undo.html", context, status=400 if error else 200)
