"""The Django admin is for support work: looking things up. Every model is registered, read-only
for everyone (superusers too): an admin save would bypass the services, so it would bypass the
state transitions, the audit logs and the rules the database cannot check. Staff change things
on the staff pages (/staff/…), which go through the services."""

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html

from events.pricing import format_pence
from members.roles import PERM_REVIEW
from payments.dashboard_links import dashboard_url


class SupportAdmin(admin.ModelAdmin):
    """Read-only: list columns, search and filters to find a row, and its detail page. Reviewers
    and managers may look (they hold no per-model permissions: a role is our own permission)."""

    list_per_page = 50
    show_full_result_count = False  # no second COUNT(*) over big tables

    def _may_look(self, request: HttpRequest) -> bool:
        user = request.user
        return user.is_active and user.is_staff and user.has_perm(PERM_REVIEW)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._may_look(request)

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return self._may_look(request)

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return request.user.is_active and request.user.has_perm(PERM_REVIEW)


def money(pence: int | None) -> str:
    return "—" if pence is None else format_pence(pence)


def stripe_link(stripe_id: str | None) -> str:
    url = dashboard_url(stripe_id)
    if url is None:
        return stripe_id or "—"
    return format_html(
        '<a href="{}" target="_blank" rel="noopener noreferrer">{}</a>', url, stripe_id
    )
