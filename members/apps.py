from django.apps import AppConfig
from django.db.models.signals import post_migrate


class MembersConfig(AppConfig):
    name = "members"
    verbose_name = "Members and invitations"

    def ready(self) -> None:
        from members.roles import sync_role_groups

        # After every migrate (and every test-database flush, which empties the groups but
        # recreates the permissions), the role groups hold exactly their permissions.
        post_migrate.connect(sync_role_groups, sender=self, dispatch_uid="members-role-groups")
