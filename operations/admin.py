from django.contrib import admin

from config.admin_support import SupportAdmin
from operations.models import Heartbeat, MissedRunAlert


@admin.register(Heartbeat)
class HeartbeatAdmin(SupportAdmin):
    list_display = ("name", "beat_at")
    search_fields = ("name",)


@admin.register(MissedRunAlert)
class MissedRunAlertAdmin(SupportAdmin):
    list_display = ("cycle", "raised_at", "beat_age_seconds")
    list_select_related = ("cycle",)
    date_hierarchy = "raised_at"
