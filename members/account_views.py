"""The member's account page and its actions. Thin: the rules are in members.account,
members.leaving and members.data_export."""

import json

from django.contrib import messages
from django.contrib.auth import logout, update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from members import account, leaving
from members.account_forms import DetailsForm, LeaveForm
from members.data_export import export_member_data
from members.forms import FirstRoundPasswordChangeForm
from payments import gateway
from payments.cards import member_cards


def _password_form(member, data=None) -> FirstRoundPasswordChangeForm:
    form = FirstRoundPasswordChangeForm(member, data)
    # Django focuses this field; on a long page that would scroll a phone past everything else.
    form.fields["old_password"].widget.attrs.pop("autofocus", None)
    return form


def _page(request: HttpRequest, *, details=None, password=None, status=200) -> HttpResponse:
    member = request.user
    try:
        cards, cards_error = member_cards(member), None
    except gateway.GatewayError as error:
        cards, cards_error = [], error.user_message
    return render(
        request,
        "members/account.html",
        {
            "details_form": details
            or DetailsForm(initial={"full_name": member.full_name, "email": member.email}),
            "password_form": password or _password_form(member),
            "cards": cards,
            "cards_error": cards_error,
        },
        status=status,
    )


@never_cache
@login_required
@require_GET
def account_page(request: HttpRequest) -> HttpResponse:
    return _page(request)


@login_required
@require_POST
def details(request: HttpRequest) -> HttpResponse:
    form = DetailsForm(request.POST)
    if not form.is_valid():
        return _page(request, details=form, status=400)
    try:
        sent_to = account.update_details(
            request.user,
            full_name=form.cleaned_data["full_name"],
            email=form.cleaned_data["email"],
        )
    except account.AccountError as problem:
        form.add_error(None, problem.message)
        return _page(request, details=form, status=400)
    if sent_to:
        messages.info(
            request,
            f"We've sent a link to {sent_to}. Your email changes when you follow it "
            "(within 3 days).",
        )
    messages.success(request, "Your details are saved.")
    return redirect("members:account")


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def confirm_email(request: HttpRequest, token: str) -> HttpResponse:
    # A GET only shows the button: mail scanners follow links, people press buttons.
    try:
        new_email = account.email_change_in(request.user, token)
        if request.method == "POST":
            account.confirm_email_change(request.user, token)
            messages.success(request, f"Your email is now {new_email}.")
            return redirect("members:account")
    except account.AccountError as problem:
        return render(request, "members/confirm_email.html", {"error": problem.message}, status=400)
    return render(request, "members/confirm_email.html", {"new_email": new_email})


@sensitive_post_parameters()
@login_required
@require_POST
def password(request: HttpRequest) -> HttpResponse:
    form = _password_form(request.user, request.POST)
    if not form.is_valid():
        return _page(request, password=form, status=400)
    form.save()
    update_session_auth_hash(request, form.user)
    messages.success(request, "Your password is changed. Your other sessions are signed out.")
    return redirect("members:account")


@login_required
@require_POST
def sign_out_others(request: HttpRequest) -> HttpResponse:
    account.sign_out_other_sessions(request.user)
    update_session_auth_hash(request, request.user)
    messages.success(request, "You are signed out everywhere else.")
    return redirect("members:account")


@login_required
@require_POST
def default_card(request: HttpRequest) -> HttpResponse:
    try:
        account.set_default_card(request.user, request.POST.get("card"))
    except account.AccountError as problem:
        messages.error(request, problem.message)
        return redirect("members:account")
    messages.success(request, "Your default card is changed.")
    return redirect("members:account")


@login_required
@require_http_methods(["GET", "POST"])
def remove_card(request: HttpRequest) -> HttpResponse:
    payment_method_id = request.POST.get("card") or request.GET.get("card")
    try:
        if request.method == "POST":
            label = account.remove_card(request.user, payment_method_id)
            messages.success(request, f"Your {label} is removed.")
            return redirect("members:account")
        card = account.own_card(request.user, payment_method_id)
    except account.AccountError as problem:
        messages.error(request, problem.message)
        return redirect("members:account")
    refusal = account.card_removal_refusal(request.user, card.payment_method_id)
    return render(request, "members/remove_card.html", {"card": card, "refusal": refusal})


@never_cache
@login_required
@require_GET
def data_export(request: HttpRequest) -> HttpResponse:
    data = export_member_data(request.user)
    response = HttpResponse(
        json.dumps(data, indent=2, ensure_ascii=False), content_type="application/json"
    )
    filename = f"harrys-club-my-data-{timezone.localdate():%Y-%m-%d}.json"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@sensitive_post_parameters("password")
@login_required
@require_http_methods(["GET", "POST"])
def leave(request: HttpRequest) -> HttpResponse:
    form = LeaveForm(request.POST if request.method == "POST" else None, member=request.user)
    refusal = leaving.leave_refusal(request.user)
    if request.method == "POST" and form.is_valid() and not refusal:
        try:
            leaving.leave_club(request.user)
        except leaving.LeaveRefused as problem:
            refusal = problem.message
        else:
            logout(request)
            return render(request, "members/left.html")
    status = 400 if request.method == "POST" else 200
    return render(request, "members/leave.html", {"form": form, "refusal": refusal}, status=status)
