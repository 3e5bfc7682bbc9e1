import datetime as dt

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from events.models import Event
from events.selectors import current_cycle, events_of_cycle, open_cycle
from payments.cards import usable_cards
from payments.gateway import GatewayError
from payments.services import start_card_setup
from preorders import selectors, services
from preorders.forms import EditPreorderForm, PlacePreorderForm
from preorders.states import MEMBER_EDITABLE_STATUSES, Status
from tickets.delivery import calendar_entry

_SESSION_SETUP_INTENT = "card_setup_intent_id"
# How long after its charge run last week's pre-order stays at the top of the dashboard.
RECENT_OUTCOME = dt.timedelta(days=6)


def _card_setup_context(request: HttpRequest) -> dict:
    """A SetupIntent for the card form; its id is remembered in the session for reuse."""
    handle = start_card_setup(request.user, request.session.get(_SESSION_SETUP_INTENT))
    request.session[_SESSION_SETUP_INTENT] = handle.id
    return {
        "client_secret": handle.client_secret,
        "stripe_publishable_key": settings.STRIPE_PUBLISHABLE_KEY,
        "stripe_js_url": settings.STRIPE_JS_URL,
    }


def _card_page(
    request: HttpRequest,
    template: str,
    context: dict,
    error: str | None,
    *,
    new_card: bool,
    new_card_when_none_saved: bool = True,
):
    """A page where the member picks a card: their saved cards, or (asked for, or none saved)
    the card form, which needs a SetupIntent. 400 when it shows an error, 503 when Stripe is
    unreachable. A saved card needs no SetupIntent, so none is made for it."""
    cards = usable_cards(request.user)
    new_card = new_card or (new_card_when_none_saved and not cards)
    card_context: dict = {"cards": cards, "new_card": new_card}
    if card_context["new_card"]:
        try:
            card_context |= _card_setup_context(request)
        except GatewayError as problem:
            return render(
                request,
                "preorders/payments_unavailable.html",
                {"error": problem.user_message},
                status=503,
            )
    return render(
        request,
        template,
        {**context, "error": error, **card_context},
        status=400 if error else 200,
    )


def _wants_new_card(request: HttpRequest) -> bool:
    if request.method == "POST":
        return bool(request.POST.get("setup_intent_id")) or not request.POST.get(
            "payment_method_id"
        )
    return request.GET.get("card") == "new"


def _form_error(form) -> str:
    return " ".join(error for errors in form.errors.values() for error in errors)


def _can_change(preorder) -> bool:
    return preorder.status in MEMBER_EDITABLE_STATUSES and preorder.cycle.is_open_at(timezone.now())


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    cycle = current_cycle()
    preorder = selectors.live_preorder(request.user, cycle)
    previous = selectors.previous_live_preorder(request.user, cycle)
    if previous is not None and previous.cycle.charge_at < timezone.now() - RECENT_OUTCOME:
        previous = None  # long settled: it is in the history below
    history = [p for p in selectors.member_history(request.user) if p not in (preorder, previous)]
    # This week's cancelled pre-orders are this week's, not "earlier" ones.
    cancelled_this_week = [p for p in history if p.cycle_id == cycle.pk]
    history = [p for p in history if p.cycle_id != cycle.pk]
    return render(
        request,
        "preorders/dashboard.html",
        {
            "cycle": cycle,
            "window_open": cycle.is_open,
            "events": events_of_cycle(cycle),
            "preorder": preorder,
            "previous": previous,
            "can_change": preorder is not None and _can_change(preorder),
            "history": history,
            "cancelled_this_week": cancelled_this_week,
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def place(request: HttpRequest, event_id: int) -> HttpResponse:
    cycle = open_cycle()
    event = get_object_or_404(Event.objects.select_related("cycle"), pk=event_id)
    if cycle is None or event.cycle_id != cycle.pk:
        messages.error(request, "That event is not open for pre-orders.")
        return redirect("preorders:dashboard")
    existing = selectors.live_preorder(request.user, cycle)
    if existing is not None:
        messages.info(request, "You already have a pre-order this week. You can edit it here.")
        return redirect("preorders:detail", existing.pk)
    form = PlacePreorderForm(request.POST if request.method == "POST" else None)
    error = None
    if request.method == "POST":
        if form.is_valid():
            try:
                preorder = services.place_preorder(
                    request.user,
                    event.pk,
                    form.cleaned_data["setup_intent_id"] or None,
                    payment_method_id=form.cleaned_data["payment_method_id"] or None,
                )
            except services.PreorderError as problem:
                error = problem.message
            else:
                if form.cleaned_data["setup_intent_id"]:
                    request.session.pop(_SESSION_SETUP_INTENT, None)
                return redirect("preorders:detail", preorder.pk)
        else:
            error = _form_error(form)
    return _card_page(
        request,
        "preorders/place.html",
        {"event": event, "cycle": cycle, "form": form},
        error,
        new_card=_wants_new_card(request),
    )


@login_required
def detail(request: HttpRequest, preorder_id: int) -> HttpResponse:
    preorder = selectors.member_preorder(request.user, preorder_id)
    if preorder is None:
        raise Http404("No such pre-order.")
    return render(
        request,
        "preorders/detail.html",
        {"preorder": preorder, "can_change": _can_change(preorder)},
    )


@login_required
@require_http_methods(["GET", "POST"])
def edit(request: HttpRequest, preorder_id: int) -> HttpResponse:
    preorder = selectors.member_preorder(request.user, preorder_id)
    if preorder is None:
        raise Http404("No such pre-order.")
    if not _can_change(preorder):
        messages.error(request, "This pre-order can no longer be changed.")
        return redirect("preorders:detail", preorder.pk)
    events = list(events_of_cycle(preorder.cycle))
    form = EditPreorderForm(
        request.POST if request.method == "POST" else None,
        events=events,
        initial={"event": preorder.event_id},
    )
    error = None
    if request.method == "POST":
        if form.is_valid():
            chosen = form.cleaned_data["payment_method_id"]
            try:
                services.edit_preorder(
                    request.user,
                    preorder.pk,
                    event_id=form.cleaned_data["event"],
                    setup_intent_id=form.cleaned_data["setup_intent_id"] or None,
                    # The card it already has needs no new check.
                    payment_method_id=chosen if chosen != preorder.payment_method_id else None,
                )
            except services.PreorderError as problem:
                error = problem.message
            else:
                if form.cleaned_data["setup_intent_id"]:
                    request.session.pop(_SESSION_SETUP_INTENT, None)
                messages.success(request, "Your pre-order has been updated.")
                return redirect("preorders:detail", preorder.pk)
        else:
            error = _form_error(form) or "Please choose one of this week's events."
    new_card = (
        bool(request.POST.get("setup_intent_id"))
        if request.method == "POST"
        else request.GET.get("card") == "new"
    )
    return _card_page(
        request,
        "preorders/edit.html",
        {"preorder": preorder, "events": events, "form": form},
        error,
        new_card=new_card,
        new_card_when_none_saved=False,
    )


@login_required
@require_http_methods(["GET", "POST"])
def cancel(request: HttpRequest, preorder_id: int) -> HttpResponse:
    preorder = selectors.member_preorder(request.user, preorder_id)
    if preorder is None:
        raise Http404("No such pre-order.")
    if request.method == "POST":
        try:
            services.cancel_preorder(request.user, preorder.pk)
        except services.PreorderError as problem:
            messages.error(request, problem.message)
            return redirect("preorders:detail", preorder.pk)
        messages.success(request, "Your pre-order is cancelled. Your card will not be charged.")
        return redirect("preorders:dashboard")
    if not _can_change(preorder):
        messages.error(request, "This pre-order can no longer be cancelled.")
        return redirect("preorders:detail", preorder.pk)
    return render(request, "preorders/cancel.html", {"preorder": preorder})


@login_required
def calendar(request: HttpRequest, preorder_id: int) -> HttpResponse:
    """The ticket's calendar entry (the same as the email's), for its owner only."""
    preorder = selectors.member_preorder(request.user, preorder_id)
    ticket = getattr(preorder, "ticket", None) if preorder is not None else None
    if ticket is None or preorder.status not in (Status.PAID, Status.TICKET_SENT):
        raise Http404("No ticket.")
    response = HttpResponse(calendar_entry(preorder, ticket), content_type="text/calendar")
    response["Content-Disposition"] = 'attachment; filename="event.ics"'
    return response
