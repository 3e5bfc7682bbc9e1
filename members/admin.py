from django.contrib import admin
from django.contrib.auth.models import Group

from config.admin_support import SupportAdmin, stripe_link
from members.models import Invitation, Member, MemberLogEntry
from members.roles import Role


@admin.register(Member)
class MemberAdmin(SupportAdmin):
    list_display = (
        "email",
        "full_name",
        "role",
        "is_active",
        "date_joined",
        "last_login",
        "customer",
    )
    list_filter = ("is_active", "is_staff", "groups")
    search_fields = ("email", "full_name", "stripe_customer_id")
    date_hierarchy = "date_joined"
    exclude = ("password", "user_permissions")

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("groups")

    @admin.display(description="staff role")
    def role(self, member: Member) -> str:
        # From the prefetched groups, highest role first (members.roles.role_of, without a query).
        names = {group.name for group in member.groups.all()}
        if member.is_superuser:
            return "Superuser"
        return next((r.value for r in (Role.MANAGER, Role.REVIEWER, Role.DOOR) if r in names), "—")

    @admin.display(description="Stripe customer")
    def customer(self, member: Member) -> str:
        return stripe_link(member.stripe_customer_id)


@admin.register(Invitation)
class InvitationAdmin(SupportAdmin):
    list_display = ("email", "invited_by", "created_at", "expires_at", "accepted_at", "revoked_at")
    list_filter = (
        ("accepted_at", admin.EmptyFieldListFilter),
        ("revoked_at", admin.EmptyFieldListFilter),
    )
    search_fields = ("email", "invited_by__email")
    list_select_related = ("invited_by",)
    date_hierarchy = "created_at"
    exclude = ("token_hash",)


@admin.register(MemberLogEntry)
class MemberLogEntryAdmin(SupportAdmin):
    list_display = ("created_at", "member", "action", "actor", "detail")
    list_filter = ("action",)
    search_fields = ("member__email", "member__full_name", "detail")
    list_select_related = ("member", "actor")
    date_hierarchy = "created_at"


# Django's own Group admin would let a superuser change a role's permissions behind
# members/roles.py (put right only at the next migrate): the roles are looked at here and
# given on the member's staff page (members.roles.set_role).
admin.site.unregister(Group)


@admin.register(Group)
class RoleGroupAdmin(SupportAdmin):
    list_display = ("name", "permission_names")
    search_fields = ("name",)

    @admin.display(description="Permissions")
    def permission_names(self, group: Group) -> str:
        return ", ".join(sorted(group.permissions.values_list("name", flat=True))) or "—"
