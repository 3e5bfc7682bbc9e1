# Staff roles: three permissions of our own and the groups that hold them (members/roles.py).

from django.db import migrations

# The roles as they were when this migration was written; a later change to members/roles.py
# comes with its own migration.
ROLE_PERMISSIONS = {
    "Door": ("check_in_tickets",),
    "Reviewer": ("review_presale", "check_in_tickets"),
    "Manager": ("review_presale", "manage_presale", "check_in_tickets"),
}
PERMISSIONS = [
    ("review_presale", "Can prepare events and pools and decide pre-orders"),
    (
        "manage_presale",
        "Can run charges and refunds and manage members, invitations and staff roles",
    ),
    ("check_in_tickets", "Can check tickets in at the door"),
]


def create_role_groups(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    Member = apps.get_model("members", "Member")
    # Permissions are normally created after migrations (post_migrate); the groups need them now.
    content_type, _ = ContentType.objects.get_or_create(app_label="members", model="member")
    permissions = {
        codename: Permission.objects.get_or_create(
            content_type=content_type, codename=codename, defaults={"name": name}
        )[0]
        for codename, name in PERMISSIONS
    }
    for group_name, codenames in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=group_name)
        group.permissions.add(*(permissions[codename] for codename in codenames))
    # Staff of the first version (is_staff, no role) keep every staff page: they become managers.
    manager = Group.objects.get(name="Manager")
    for member in Member.objects.filter(is_staff=True, is_superuser=False):
        member.groups.add(manager)


class Migration(migrations.Migration):
    dependencies = [
        ("members", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.AlterModelOptions(name="member", options={"permissions": PERMISSIONS}),
        migrations.RunPython(create_role_groups, migrations.RunPython.noop, elidable=False),
    ]
