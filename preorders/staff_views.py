"""Staff pages: the events of each cycle with demand against supply, and per event the list of
pre-orders with decisions, bulk decisions and auto-fulfil. Views stay thin: the rules are in
preorders.decisions, the reads in the selectors."""

import csv
import datetime as dt
from urllib.parse import urlencode

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from events import london
from events.models import Event, EventLogEntry, PresaleCycle
from events.selectors import cycles_taking_events, planning_cycles
from events.services import CycleError, close_window_early
from members.permissions import reviewer_required
from preorders import decisions, selectors, waitlist
from preorders.models import PreOrder
from preorders.staff_forms import AutoFulfilForm, DecisionForm, PreorderFilterForm
from preorders.states import Status
from tickets import delivery
from tickets.selectors import pool_summaries, pool_summary

PAGE_SIZE = 50


def cycle_phase(cycle: PresaleCycle, now=None) -> str:
    now = now or timezone.now()
    if now < cycle.opens_at:
        return f"Prepared ahead: pre-orders open {london.when(cycle.opens_at)}"
    if now < cycle.window_ends_at:
        return f"Pre-orders open until {london.when(cycle.last_open_moment)}"
    if not cycle.decisions_locked:
        return f"In review: charge run due {london.when(cycle.charge_at)}"
    return f"Charge run started {london.when(cycle.charge_run_started_at)}"


def _badge(cycle: PresaleCycle, now) -> str:
    """What the week is doing now, in a word or two (a week closed early is in review while
    the next one is still to open: "this week" would name the wrong one)."""
    if cycle.is_open_at(now):
        return "open now"
    if cycle.in_review_at(now):
        return "in review"
    return ""


@reviewer_required
def events(request: HttpRequest) -> HttpResponse:
    """Every cycle's events, newest week first, starting with the weeks staff prepare ahead."""
    now = timezone.now()
    ahead = planning_cycles(now)
    taking = set(cycles_taking_events(now).values_list("pk", flat=True))
    # A week in review comes first (staff decide there before Tuesday's run), then the week
    # open or opening next, then the weeks being prepared, then earlier weeks, newest first.
    current = ahead[0]
    later = PresaleCycle.objects.filter(
        week_start__gt=current.week_start, week_start__lte=ahead[-1].week_start
    ).order_by("week_start")
    earlier = list(
        PresaleCycle.objects.filter(week_start__lt=current.week_start).order_by("-week_start")
    )
    in_review = [cycle for cycle in earlier[:1] if cycle.in_review_at(now)]
    ordered = [*in_review, current, *later, *earlier[len(in_review) :]]
    cycles = Paginator(ordered, 5).get_page(request.GET.get("page"))
    cycle_ids = [cycle.pk for cycle in cycles]
    event_list = list(Event.objects.filter(cycle_id__in=cycle_ids).order_by("starts_at", "id"))
    ids = [event.pk for event in event_list]
    counts = selectors.status_counts(ids)
    pools = pool_summaries(ids, counts)
    by_cycle: dict[int, list[dict]] = {pk: [] for pk in cycle_ids}
    for event in event_list:
        c = counts[event.pk]
        by_cycle[event.cycle_id].append(
            {
                "event": event,
                "pool": pools[event.pk],
                "counts": c,
                "paid": c.get(Status.PAID, 0) + c.get(Status.TICKET_SENT, 0),
            }
        )
    week_logs: dict[int, list[EventLogEntry]] = {pk: [] for pk in cycle_ids}
    for entry in EventLogEntry.objects.filter(
        cycle_id__in=cycle_ids, event__isnull=True
    ).select_related("actor")[:200]:
        week_logs[entry.cycle_id].append(entry)
    next_week = {cycle.pk: cycle.week_start + dt.timedelta(weeks=1) for cycle in cycles}
    copy_targets = {
        cycle.pk: cycle.week_start for cycle in PresaleCycle.objects.filter(pk__in=taking)
    }
    return render(
        request,
        "preorders/staff/events.html",
        {
            "cycles": cycles,
            "rows": [
                {
                    "cycle": cycle,
                    "phase": cycle_phase(cycle, now),
                    "is_open": cycle.is_open_at(now),
                    "events": by_cycle[cycle.pk],
                    "takes_events": cycle.pk in taking,
                    # Copy to the next week while that week can still take events.
                    "copy_to": next_week[cycle.pk]
                    if next_week[cycle.pk] in copy_targets.values() and by_cycle[cycle.pk]
                    else None,
                    "badge": _badge(cycle, now),
                    "week_log": week_logs[cycle.pk],
                }
                for cycle in cycles
            ],
            "statuses": Status,
        },
    )


def _event_context(request: HttpRequest, event: Event) -> dict:
    filter_form = PreorderFilterForm(request.GET or None)
    filters = filter_form.filters()
    counts = selectors.status_counts([event.pk])[event.pk]
    page = selectors.staff_preorder_page(
        event.pk, **filters, page=request.GET.get("page"), per_page=PAGE_SIZE, counts=counts
    )
    params = request.GET.copy()
    params.pop("page", None)
    return {
        "event": event,
        "cycle": event.cycle,
        "phase": cycle_phase(event.cycle),
        "in_review": event.cycle.in_review_at(timezone.now()),
        "pool": pool_summary(event.pk, counts),
        "counts": counts,
        "filter_form": filter_form,
        "filters": filters,
        "filter_query": params.urlencode(),
        "page": page,
        "matching_count": page.paginator.count,
        "auto_form": AutoFulfilForm(initial={"mode": event.fulfilment_mode}),
        "log": selectors.event_audit_log(event.pk, limit=30),
        "statuses": Status,
        # The counts already say when there is no waitlist, or no ticket email to have failed
        # (only paid pre-orders get one): most of the week, neither needs a query.
        "failed_ticket_emails": delivery.failed_ticket_email_count(event.pk)
        if counts.get(Status.PAID) or counts.get(Status.TICKET_SENT)
        else 0,
        "waitlist": waitlist.waiting_in_order(event.pk) if counts.get(Status.WAITLISTED) else [],
        "waitlist_closes_at": waitlist.closes_at(event),
        "refill_modes": Event.RefillMode.choices,
    }


@reviewer_required
def event_detail(request: HttpRequest, event_id: int) -> HttpResponse:
    event = get_object_or_404(Event.objects.select_related("cycle"), pk=event_id)
    return render(request, "preorders/staff/event.html", _event_context(request, event))


def _selected_ids(event: Event, form: DecisionForm, request: HttpRequest) -> list[int]:
    if form.cleaned_data.get("all_matching"):
        filters = PreorderFilterForm(request.POST).filters()
        return list(
            selectors.staff_event_preorders(event.pk, **filters).values_list("pk", flat=True)
        )
    return form.cleaned_data["ids"]


def _back_to_event(event: Event, request: HttpRequest) -> str:
    """The event page with the filter the staff member was using."""
    filters = PreorderFilterForm(request.POST)
    defaults = {"sort": "oldest"}
    kept = {
        name: value
        for name in filters.fields
        if (value := request.POST.get(name)) and value != defaults.get(name)
    }
    url = reverse("staff:event", args=[event.pk])
    return f"{url}?{urlencode(kept)}" if kept else url


@reviewer_required
@require_POST
def decide(request: HttpRequest, event_id: int) -> HttpResponse:
    """Approve or deny the selected pre-orders (or all that match the filter), after a
    confirmation that says how many and whether supply suffices."""
    event = get_object_or_404(Event.objects.select_related("cycle"), pk=event_id)
    form = DecisionForm(request.POST)
    back = _back_to_event(event, request)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect(back)
    action = form.cleaned_data["action"]
    note = form.cleaned_data["note"]
    ids = _selected_ids(event, form, request)
    if not form.cleaned_data["confirmed"]:
        counts = dict(
            PreOrder.objects.filter(event=event, pk__in=ids)
            .values_list("status")
            .annotate(n=Count("id"))
        )
        pool = pool_summary(event.pk)
        to_approve = counts.get(Status.PENDING, 0) + counts.get(Status.DENIED, 0)
        return render(
            request,
            "preorders/staff/confirm_decision.html",
            {
                "event": event,
                "action": action,
                "ids": ids,
                "counts": {Status(status).label: n for status, n in counts.items()},
                "total": sum(counts.values()),
                "pool": pool,
                "to_approve": to_approve,
                "will_approve": min(to_approve, max(pool.left, 0)),
                "to_deny": sum(n for status, n in counts.items() if status in decisions.DECIDABLE)
                - counts.get(Status.DENIED, 0),
                "note": note,
                "back": back,
                "all_matching": form.cleaned_data.get("all_matching"),
                "filters": PreorderFilterForm(request.POST).filters(),
            },
        )
    try:
        if action == "approve":
            result = decisions.approve(event.pk, ids, actor=request.user, note=note)
        else:
            result = decisions.deny(event.pk, ids, actor=request.user, note=note)
        _report(request, result, "approved" if action == "approve" else "denied")
    except decisions.DecisionError as error:
        messages.error(request, error.message)
    return redirect(back)


def _report(request: HttpRequest, result: decisions.DecisionResult, verb: str) -> None:
    """One message per outcome: green only for what was done, red for what was refused."""
    if result.changed:
        messages.success(request, result.summary(verb, refusals=False))
    elif not result.no_supply:
        messages.info(request, result.summary(verb, refusals=False))
    if result.no_supply:
        n = len(result.no_supply)
        messages.error(
            request,
            f"{n} pre-order{'s' if n != 1 else ''} not approved: the pool has no places left. "
            "Add tickets to the pool, or deny others first.",
        )


@reviewer_required
@require_POST
def auto_fulfil(request: HttpRequest, event_id: int) -> HttpResponse:
    event = get_object_or_404(Event.objects.select_related("cycle"), pk=event_id)
    form = AutoFulfilForm(request.POST)
    back = reverse("staff:event", args=[event.pk])
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect(back)
    mode, seed = form.cleaned_data["mode"], form.cleaned_data["seed"]
    if not form.cleaned_data["confirmed"]:
        pending = PreOrder.objects.filter(event=event, status=Status.PENDING).count()
        return render(
            request,
            "preorders/staff/confirm_auto_fulfil.html",
            {
                "event": event,
                "mode": mode,
                "mode_label": Event.FulfilmentMode(mode).label,
                "seed": seed,
                "pending": pending,
                "pool": pool_summary(event.pk),
            },
        )
    try:
        result = decisions.auto_fulfil(event.pk, actor=request.user, mode=mode, seed=seed)
    except decisions.DecisionError as error:
        messages.error(request, error.message)
        return redirect(back)
    if mode != event.fulfilment_mode:
        Event.objects.filter(pk=event.pk).update(fulfilment_mode=mode)
    text = f"Auto-fulfil approved {len(result.changed)}; {len(result.no_supply)} still pending."
    if result.seed is not None:
        text += f" Ballot seed: {result.seed}."
    messages.success(request, text)
    return redirect(back)


@reviewer_required
def export_csv(request: HttpRequest, event_id: int) -> StreamingHttpResponse:
    event = get_object_or_404(Event, pk=event_id)
    filters = PreorderFilterForm(request.GET or None).filters()
    rows = selectors.staff_event_preorders(event.pk, **filters).iterator(chunk_size=2000)

    class Echo:
        def write(self, value: str) -> str:
            return value

    writer = csv.writer(Echo())
    header = [
        "preorder_id", "member_name", "member_email", "placed_at_london", "status",
        "payment", "amount_pence", "card_brand", "card_last4",
    ]  # fmt: skip

    def lines():
        yield writer.writerow(header)
        for preorder in rows:
            yield writer.writerow(
                [
                    preorder.pk,
                    _csv_safe(preorder.member.full_name),
                    _csv_safe(preorder.member.email),
                    london.to_london(preorder.created_at).strftime("%Y-%m-%d %H:%M:%S"),
                    preorder.status,
                    preorder.payment_label,
                    preorder.amount_pence,
                    preorder.card_brand,
                    preorder.card_last4,
                ]
            )

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = (
        f'attachment; filename="event-{event.pk}-preorders-{stamp}.csv"'
    )
    return response


def _csv_safe(value: str) -> str:
    """Stop a spreadsheet from running a member-chosen name as a formula."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


@reviewer_required
@require_POST
def close_early(request: HttpRequest, cycle_id: int) -> HttpResponse:
    cycle = get_object_or_404(PresaleCycle, pk=cycle_id)
    try:
        close_window_early(cycle.pk, actor=request.user)
    except CycleError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, "Pre-orders are closed. The review can start now.")
    return redirect("staff:events")


@reviewer_required
@require_POST
def resend_failed_tickets(request: HttpRequest, event_id: int) -> HttpResponse:
    event = get_object_or_404(Event, pk=event_id)
    count = delivery.resend_failed_ticket_emails(event.pk, actor=request.user)
    messages.success(request, f"Resending {count} ticket email{'s' if count != 1 else ''}.")
    return redirect("staff:event", event.pk)
