from django.contrib import admin

from config.admin_support import SupportAdmin
from operations.models import Heartbeat


@admin.register(Heartbeat)
class HeartbeatAdmin(SupportAdmin):
    list_display = ("name", "beat_at")
    search_fields = ("name",)
