from django.contrib import admin

from config.admin_support import ReadOnlyInline, SupportAdmin
from notifications.models import OutboundEmail, OutboundEmailAttachment, OutboxMessage


class AttachmentInline(ReadOnlyInline):
    model = OutboundEmailAttachment
    fields = ("filename", "mimetype", "content_id")
    show_change_link = False


@admin.register(OutboundEmail)
class OutboundEmailAdmin(SupportAdmin):
    list_display = (
        "created_at",
        "to_email",
        "template",
        "subject",
        "status",
        "attempts",
        "sent_at",
    )
    list_filter = ("status", "template")
    search_fields = ("to_email", "subject", "provider_message_id", "error")
    date_hierarchy = "created_at"
    exclude = ("body_html",)
    inlines = [AttachmentInline]


@admin.register(OutboundEmailAttachment)
class OutboundEmailAttachmentAdmin(SupportAdmin):
    list_display = ("filename", "mimetype", "email")
    search_fields = ("filename", "email__to_email")
    list_select_related = ("email",)
    exclude = ("content",)


@admin.register(OutboxMessage)
class OutboxMessageAdmin(SupportAdmin):
    list_display = ("created_at", "to", "subject", "attachment_names")
    search_fields = ("to", "subject", "message_id")
    date_hierarchy = "created_at"
    exclude = ("body_html",)
