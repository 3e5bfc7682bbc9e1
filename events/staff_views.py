"""Staff pages to prepare events: create, edit, duplicate, delete, and copy a week to the next.
Thin: the rules are in events.planning."""

import datetime as dt

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from events import planning
from events.forms import EventForm
from events.models import Event, EventLogEntry, PresaleCycle
from events.selectors import cycles_taking_events
from members.permissions import reviewer_required


def _cycles_for(event: Event | None = None):
    cycles = cycles_taking_events()
    if event is not None:
        cycles = cycles | PresaleCycle.objects.filter(pk=event.cycle_id)
    return cycles.order_by("week_start").distinct()


def _week_initial(request: HttpRequest, cycles) -> dict:
    try:
        week = dt.date.fromisoformat(request.GET.get("week", ""))
    except ValueError:
        week = None
    chosen = cycles.filter(week_start=week).first() if week else None
    return {"cycle": chosen.pk} if chosen else {}


@reviewer_required
@require_http_methods(["GET", "POST"])
def event_new(request: HttpRequest) -> HttpResponse:
    """A new event; `?from=<id>` starts from a copy of another event (duplicate)."""
    cycles = _cycles_for()
    original = None
    source = request.GET.get("from", "")
    if source.isascii() and source.isdigit() and len(source) <= 18:
        original = Event.objects.filter(pk=int(source)).first()
    initial = {"discount_kind": "default", "fulfilment_mode": Event.FulfilmentMode.FIFO}
    if original is not None:
        initial = EventForm.initial_from(original)
        if not cycles.filter(pk=original.cycle_id).exists():
            initial.pop("cycle")
    initial.update(_week_initial(request, cycles))
    form = EventForm(request.POST or None, cycles=cycles, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            event = planning.create_event(form.details(), actor=request.user, copied_from=original)
        except planning.EventRuleError as error:
            form.add_rule_errors(error.errors)
        else:
            messages.success(request, f"{event.title} is ready. Now fill its ticket pool.")
            return redirect("tickets:pool", event.pk)
    return render(
        request,
        "events/staff/event_form.html",
        {"form": form, "event": None, "original": original},
        status=400 if form.errors else 200,
    )


@reviewer_required
@require_http_methods(["GET", "POST"])
def event_edit(request: HttpRequest, event_id: int) -> HttpResponse:
    event = get_object_or_404(Event.objects.select_related("cycle"), pk=event_id)
    form = EventForm(
        request.POST or None, cycles=_cycles_for(event), initial=EventForm.initial_from(event)
    )
    price_warning = None
    if request.method == "POST" and form.is_valid():
        try:
            event, changes = planning.update_event(
                event.pk,
                form.details(),
                actor=request.user,
                confirm_price_change=form.cleaned_data["confirm_price_change"],
            )
        except planning.EventRuleError as error:
            form.add_rule_errors(error.errors)
        except planning.PriceChangeNeedsConfirmation as warning:
            price_warning = warning.message
            data = request.POST.copy()
            data["confirm_price_change"] = "True"
            form = EventForm(data, cycles=_cycles_for(event))
            form.is_valid()
        else:
            if changes:
                names = ", ".join(planning.LABELS[name].lower() for name in changes)
                messages.success(request, f"Saved {event.title}: {names} changed.")
            else:
                messages.info(request, "Nothing changed.")
            return redirect("staff:event", event.pk)
    return render(
        request,
        "events/staff/event_form.html",
        {"form": form, "event": event, "price_warning": price_warning},
        status=400 if form.errors else 200,
    )


@reviewer_required
@require_http_methods(["GET", "POST"])
def event_delete(request: HttpRequest, event_id: int) -> HttpResponse:
    event = get_object_or_404(Event.objects.select_related("cycle"), pk=event_id)
    if request.method == "POST":
        try:
            title = planning.delete_event(event.pk, actor=request.user)
        except planning.EventRuleError as error:
            messages.error(request, error.message)
            return redirect("staff:event", event.pk)
        messages.success(request, f"{title} was deleted.")
        return redirect("staff:events")
    return render(request, "events/staff/event_delete.html", {"event": event})


@reviewer_required
@require_POST
def copy_week(request: HttpRequest, cycle_id: int) -> HttpResponse:
    cycle = get_object_or_404(PresaleCycle, pk=cycle_id)
    try:
        result = planning.copy_week(cycle.pk, actor=request.user)
    except planning.EventRuleError as error:
        messages.error(request, f"Nothing was copied. {error.message}")
        return redirect("staff:events")
    week = f"the week of {result.target.week_start:%-d %B}"
    copied, there = len(result.copied), len(result.already_there)
    if copied:
        text = f"Copied {copied} event{'s' if copied != 1 else ''} to {week}, with empty pools."
        if there:
            text += f" {there} {'were' if there != 1 else 'was'} there already."
        messages.success(request, text)
    elif there:
        messages.info(request, f"Nothing to copy: {week} already has these events.")
    else:
        messages.info(request, "This week has no events to copy.")
    return redirect(f"{reverse('staff:events')}#week-{result.target.week_start:%Y-%m-%d}")


@reviewer_required
def verify_ballot(request: HttpRequest, entry_id: int) -> HttpResponse:
    """Re-run a recorded ballot from its seed and candidates, and say whether it gives the same
    winners as were approved."""
    from preorders.decisions import draw_ballot

    entry = get_object_or_404(
        EventLogEntry.objects.select_related("event", "actor"),
        pk=entry_id,
        action="auto_fulfil",
        data__mode="ballot",
    )
    data = entry.data
    redrawn = draw_ballot(data["candidates"], data["places"], data["seed"])
    return render(
        request,
        "events/staff/verify_ballot.html",
        {
            "entry": entry,
            "data": data,
            "redrawn": redrawn,
            "matches": redrawn == data["approved"],
        },
    )
