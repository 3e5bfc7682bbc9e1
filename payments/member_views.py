"""The member's on-session page for a payment their bank wants them to confirm."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from payments import authentication
from preorders.models import PreOrder
from preorders.states import Status


@never_cache  # the page carries the PaymentIntent's client secret
@login_required
@require_http_methods(["GET", "POST"])
def confirm_payment(request: HttpRequest, preorder_id: int) -> HttpResponse:
    """GET: the page where Stripe.js confirms the payment (the bank's challenge). POST: the
    browser is done; the server asks Stripe what happened and settles."""
    if not PreOrder.objects.filter(pk=preorder_id, member=request.user).exists():
        raise Http404("No such pre-order.")
    if request.method == "POST":
        try:
            preorder = authentication.check_after_browser(request.user, preorder_id)
        except authentication.AuthenticationError as problem:
            messages.error(request, problem.message)
            return redirect("preorders:detail", preorder_id)
        if preorder.status in (Status.PAID, Status.TICKET_SENT):
            messages.success(request, "Payment confirmed. Your ticket is on its way.")
            return redirect("preorders:detail", preorder.pk)
        messages.error(
            request,
            "Your bank did not confirm the payment. You can try again until the time shown below.",
        )
        return redirect("payments:confirm_payment", preorder.pk)
    try:
        page = authentication.confirm_page(request.user, preorder_id)
    except authentication.AlreadyConfirmed as done:
        messages.success(request, done.message)
        return redirect("preorders:detail", preorder_id)
    except authentication.AuthenticationError as problem:
        return render(
            request,
            "payments/confirm_payment.html",
            {"problem": problem.message, "preorder_id": preorder_id},
        )
    return render(
        request,
        "payments/confirm_payment.html",
        {
            "page": page,
            "preorder": page.preorder,
            "stripe_publishable_key": settings.STRIPE_PUBLISHABLE_KEY,
            "stripe_js_url": settings.STRIPE_JS_URL,
        },
    )
