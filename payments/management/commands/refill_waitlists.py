from django.core.management.base import BaseCommand

from payments import refill


class Command(BaseCommand):
    help = (
        "Offer freed places to the waitlists (events that refill automatically), charge those "
        "promoted, and tell everyone on a closed waitlist they were not allocated (what beat "
        "runs every minute). Safe to run again after a crash."
    )

    def handle(self, *args, **options):
        result = refill.refill_due()
        self.stdout.write(
            f"Promoted {result['promoted']}; told {result['not_allocated']} not allocated."
        )
