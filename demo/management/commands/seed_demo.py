from django.core.management.base import BaseCommand

from demo.services import seed_demo


class Command(BaseCommand):
    help = "Create demo staff, members, an open invitation and this week's presale events."

    def handle(self, *args, **options) -> None:
        logins = seed_demo()
        self.stdout.write(f"  Staff:   {logins.staff[0]} / {logins.staff[1]} (manager)")
        for email, password, role in logins.other_staff:
            self.stdout.write(f"  Staff:   {email} / {password} ({role.lower()})")
        for email, password in logins.members:
            self.stdout.write(f"  Member:  {email} / {password}")
        self.stdout.write(f"  Invite:  {logins.invitation_url}")
        self.stdout.write("  Test card: 4242 4242 4242 4242, any future expiry, any CVC")
