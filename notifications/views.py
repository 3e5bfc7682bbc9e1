from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from config.listing import status_filtered_page
from members.permissions import manager_required
from notifications.models import OutboundEmail, OutboxMessage


@manager_required
def outbox(request: HttpRequest) -> HttpResponse:
    page = Paginator(OutboxMessage.objects.all(), 50).get_page(request.GET.get("page"))
    return render(request, "notifications/outbox.html", {"page": page})


@manager_required
def outbox_message(request: HttpRequest, message_id: int) -> HttpResponse:
    message = get_object_or_404(OutboxMessage, pk=message_id)
    return render(request, "notifications/outbox_message.html", {"message": message})


@manager_required
def email_log(request: HttpRequest) -> HttpResponse:
    emails = OutboundEmail.objects.select_related("preorder").order_by("-created_at", "-id")
    context = status_filtered_page(request, emails, OutboundEmail.Status)
    return render(request, "notifications/email_log.html", context)
