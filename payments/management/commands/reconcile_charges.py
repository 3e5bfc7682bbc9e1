import datetime as dt

from django.core.management.base import BaseCommand

from payments import charging


class Command(BaseCommand):
    help = (
        "Settle charges stuck without an answer by asking Stripe (lost webhooks, crashed runs), "
        "and refund paid pre-orders that could not get a ticket."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than",
            type=int,
            default=None,
            help="seconds an attempt must have waited (default: CHARGE_STALE_AFTER_SECONDS)",
        )

    def handle(self, *args, older_than=None, **options):
        counts = charging.reconcile(
            older_than=None if older_than is None else dt.timedelta(seconds=older_than)
        )
        self.stdout.write(", ".join(f"{key}: {value}" for key, value in counts.items()))
