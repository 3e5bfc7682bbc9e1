import logging

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render, resolve_url
from django.utils.cache import add_never_cache_headers
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters

from members import services, throttling
from members.forms import AcceptInvitationForm, InviteForm, SignInForm
from members.permissions import manager_required
from members.roles import home_for
from members.staff_views import invitation_list

logger = logging.getLogger(__name__)

THROTTLED_LOGIN = "Too many sign-in attempts. Please wait {wait} or reset your password."
THROTTLED_RESET = "Too many password-reset requests. Please wait {wait} and try again."


def _throttled(request, template: str, context: dict, refusal) -> HttpResponse:
    logger.warning("Refused a %s attempt from %s", refusal.scope, throttling.client_ip(request))
    response = render(request, template, context, status=429)
    response["Retry-After"] = str(refusal.retry_after)
    add_never_cache_headers(response)
    return response


class ThrottledLoginView(auth_views.LoginView):
    """Django's LoginView, refusing (429, without checking the password) once an email or an IP
    has failed LOGIN_THROTTLE_ATTEMPTS times in the current window."""

    authentication_form = SignInForm

    def post(self, request, *args, **kwargs):
        email = request.POST.get("username", "")
        refusal = throttling.login_refusal(request, email)
        if refusal is not None:
            form = self.get_form_class()(request, initial={"username": email[:254]})
            context = self.get_context_data(
                form=form, throttled=THROTTLED_LOGIN.format(wait=refusal.wait)
            )
            return _throttled(request, self.template_name, context, refusal)
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form):
        throttling.login_failed(self.request, form.data.get("username", ""))
        return super().form_invalid(form)

    def form_valid(self, form):
        throttling.login_succeeded(form.data.get("username", ""))
        return super().form_valid(form)

    def get_default_redirect_url(self):
        # Staff land on the staff events page, members on their dashboard (a `next` still wins).
        return resolve_url(home_for(self.request.user))


class ThrottledPasswordResetView(auth_views.PasswordResetView):
    """Django's PasswordResetView, sending at most LOGIN_THROTTLE_ATTEMPTS requests per IP and
    per address in the current window."""

    def post(self, request, *args, **kwargs):
        email = request.POST.get("email", "")
        refusal = throttling.reset_refusal(request, email)
        if refusal is not None:
            context = self.get_context_data(
                form=self.get_form_class()(initial={"email": email[:254]}),
                throttled=THROTTLED_RESET.format(wait=refusal.wait),
            )
            return _throttled(request, self.template_name, context, refusal)
        throttling.reset_requested(request, email)
        return super().post(request, *args, **kwargs)


@never_cache
@sensitive_post_parameters("password", "password_again")
def accept_invitation(request: HttpRequest, token: str) -> HttpResponse:
    if request.user.is_authenticated:
        messages.info(request, "You are already signed in.")
        return redirect("preorders:dashboard")
    try:
        invitation = services.usable_invitation(token)
    except services.InvitationError as error:
        status = 404 if error.reason == "invalid" else 410
        return render(request, "members/invitation_invalid.html", {"error": error}, status=status)
    form = AcceptInvitationForm(request.POST or None, email=invitation.email)
    if request.method == "POST" and form.is_valid():
        try:
            member = services.accept_invitation(
                token,
                full_name=form.cleaned_data["full_name"],
                password=form.cleaned_data["password"],
            )
        except services.InvitationError as error:
            return render(request, "members/invitation_invalid.html", {"error": error}, status=410)
        except ValidationError as error:
            if hasattr(error, "error_dict"):
                for field, problems in error.message_dict.items():
                    form.add_error(field if field in form.fields else None, problems)
            else:
                form.add_error("password", error.messages)
        else:
            login(request, member, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, f"Welcome to Harry's Club, {member.get_short_name()}!")
            return redirect("preorders:dashboard")
    return render(
        request, "members/accept_invitation.html", {"form": form, "invitation": invitation}
    )


@manager_required
def invitations(request: HttpRequest) -> HttpResponse:
    form = InviteForm(request.POST or None, request.FILES or None)
    report = None
    if request.method == "POST" and form.is_valid():
        emails = services.parse_pasted_emails(form.cleaned_data.get("emails", ""))
        emails += services.parse_csv_emails(form.cleaned_data.get("csv_file", ""))
        try:
            report = services.invite_members(emails, invited_by=request.user)
        except services.InvitationError as error:
            form.add_error(None, error.message)
        else:
            if report.invited:
                n = len(report.invited)
                messages.success(request, f"Invited {n} {'person' if n == 1 else 'people'}.")
            form = InviteForm()
    return render(
        request,
        "members/invitations.html",
        {"form": form, "report": report, **invitation_list(request)},
    )
