"""Staff pages for an event's ticket pool. Thin: the rules are in tickets.services."""

from urllib.parse import urlencode

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe

from events.models import Event, EventLogEntry
from members.permissions import reviewer_required
from tickets import services
from tickets.forms import GenerateTicketsForm, TicketImportForm
from tickets.models import Ticket
from tickets.selectors import pool_summary

TICKETS_PER_PAGE = 100
POOL_ACTIONS = ("pool_import", "pool_generate", "pool_replace", "ticket_void")
STATE_FILTERS = {
    "available": {"preorder__isnull": True, "voided_at__isnull": True},
    "assigned": {"preorder__isnull": False},
    "void": {"voided_at__isnull": False},
}


def _list_query(request: HttpRequest) -> dict[str, str]:
    """The table's filter and page, kept across a void so staff stay where they were."""
    query = {}
    if request.GET.get("state") in STATE_FILTERS:
        query["state"] = request.GET["state"]
    if request.GET.get("page", "").isdigit():
        query["page"] = request.GET["page"]
    return query


def _pool_url(event_id: int, query: dict[str, str] | None = None) -> str:
    url = reverse("tickets:pool", args=[event_id])
    return f"{url}?{urlencode(query)}" if query else url


def _render_pool(
    request: HttpRequest,
    event: Event,
    *,
    import_form: TicketImportForm | None = None,
    generate_form: GenerateTicketsForm | None = None,
    report: services.ImportReport | None = None,
    error: str = "",
    status: int = 200,
) -> HttpResponse:
    query = _list_query(request)
    state = query.get("state", "")
    tickets = Ticket.objects.filter(event=event, **STATE_FILTERS.get(state, {})).select_related(
        "preorder__member"
    )
    page = Paginator(tickets, TICKETS_PER_PAGE).get_page(query.get("page"))
    summary = pool_summary(event.pk)
    states = [
        ("", "All", summary.supply + summary.void),
        ("available", "Available", summary.unassigned),
        ("assigned", "Assigned", summary.assigned),
        ("void", "Void", summary.void),
    ]
    context = {
        "event": event,
        "summary": summary,
        "overbooked": -summary.left if summary.left < 0 else 0,
        "page": page,
        "state": state,
        "states": [
            {
                "value": v,
                "label": label,
                "count": n,
                "url": _pool_url(event.pk, {"state": v} if v else None),
            }
            for v, label, n in states
        ],
        "list_query": urlencode(query),
        "page_url": _pool_url(event.pk, {"state": state} if state else None),
        "import_form": import_form or TicketImportForm(),
        "generate_form": generate_form or GenerateTicketsForm(),
        "report": report,
        "error": error,
        "log": EventLogEntry.objects.filter(event=event, action__in=POOL_ACTIONS).select_related(
            "actor"
        )[:10],
    }
    return render(request, "tickets/pool.html", context, status=status)


@reviewer_required
@require_safe
def pool(request: HttpRequest, event_id: int) -> HttpResponse:
    event = get_object_or_404(Event.objects.select_related("cycle"), pk=event_id)
    return _render_pool(request, event)


@reviewer_required
@require_POST
def pool_import(request: HttpRequest, event_id: int) -> HttpResponse:
    event = get_object_or_404(Event.objects.select_related("cycle"), pk=event_id)
    form = TicketImportForm(request.POST, request.FILES)
    if not form.is_valid():
        return _render_pool(request, event, import_form=form, status=400)
    try:
        report = services.import_ticket_codes(event.pk, form.text, actor=request.user)
    except services.PoolError as error:
        return _render_pool(request, event, import_form=form, error=error.message, status=400)
    if not report.ok:
        return _render_pool(request, event, import_form=form, report=report, status=400)
    n = report.imported
    messages.success(
        request, f"Imported {n:,} code{'' if n == 1 else 's'} into the pool of {event.title}."
    )
    return redirect(_pool_url(event.pk))


@reviewer_required
@require_POST
def pool_generate(request: HttpRequest, event_id: int) -> HttpResponse:
    event = get_object_or_404(Event.objects.select_related("cycle"), pk=event_id)
    form = GenerateTicketsForm(request.POST)
    if not form.is_valid():
        return _render_pool(request, event, generate_form=form, status=400)
    try:
        count = services.generate_tickets(event.pk, form.cleaned_data["count"], actor=request.user)
    except services.PoolError as error:
        form.add_error(None, error.message)
        return _render_pool(request, event, generate_form=form, status=400)
    messages.success(
        request, f"Generated {count:,} new code{'' if count == 1 else 's'} for {event.title}."
    )
    return redirect(_pool_url(event.pk))


@reviewer_required
@require_POST
def ticket_void(request: HttpRequest, ticket_id: int) -> HttpResponse:
    ticket = get_object_or_404(Ticket.objects.select_related("event__cycle"), pk=ticket_id)
    try:
        services.void_ticket(ticket.pk, actor=request.user)
    except services.PoolError as error:
        return _render_pool(request, ticket.event, error=error.message, status=400)
    messages.success(request, f"Ticket {ticket.code} is void: it will not be given to anyone.")
    return redirect(_pool_url(ticket.event_id, _list_query(request)))
