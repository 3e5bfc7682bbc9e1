import datetime as dt

from django.core.management.base import BaseCommand, CommandError

from events import london
from events.models import PresaleCycle
from events.pricing import format_pence
from payments import charging, run_execution


class Command(BaseCommand):
    help = (
        "Charge every approved pre-order of a cycle off-session (what beat runs at 19:00 on "
        "Tuesday). --dry-run only shows who would be charged."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--week",
            help="the cycle, by the Monday its window opened (YYYY-MM-DD); "
            "default: the latest cycle whose window has closed",
        )
        parser.add_argument("--dry-run", action="store_true", help="show, charge nothing")
        parser.add_argument(
            "--now",
            action="store_true",
            help="start before the cycle's charge time (the window must have closed)",
        )

    def handle(self, *args, week=None, dry_run=False, now=False, **options):
        cycle = self._cycle(week)
        preview = charging.preview(cycle.pk)
        self.stdout.write(f"{cycle}: charge due {london.when(cycle.charge_at)}")
        for item in preview.events:
            covered = "covered" if item.covered else f"SHORT by {-item.left}"
            self.stdout.write(
                f"  {item.event.title}: {item.approved} to charge, "
                f"{format_pence(item.total_pence)}, pool {covered}"
            )
        self.stdout.write(
            f"  Total: {preview.approved} pre-orders, {format_pence(preview.total_pence)}; "
            f"{preview.pending} still pending (will not be charged)"
        )
        if dry_run:
            self.stdout.write("Dry run: nothing was charged.")
            return
        try:
            run = run_execution.run_charges(cycle.pk, trigger="command", early=now)
        except charging.ChargeRunError as error:
            raise CommandError(error.message) from error
        result = charging.report(cycle.pk)
        self.stdout.write(
            self.style.SUCCESS(
                f"Run {run.pk} done: {result.charged} charged, {result.paid} paid, "
                f"{result.failed} failed, {result.in_flight} awaiting Stripe, "
                f"{format_pence(result.total_taken_pence)} taken."
            )
        )

    def _cycle(self, week: str | None) -> PresaleCycle:
        if week:
            try:
                monday = dt.date.fromisoformat(week)
            except ValueError:
                raise CommandError("--week takes a date like 2026-11-23.") from None
            cycle = PresaleCycle.objects.filter(week_start=monday).first()
            if cycle is None:
                raise CommandError(f"There is no cycle for the week of {monday}.")
            return cycle
        from django.utils import timezone

        now = timezone.now()
        closed = [
            c for c in PresaleCycle.objects.order_by("-week_start")[:3] if c.window_ends_at <= now
        ]
        if not closed:
            raise CommandError("No cycle has closed yet.")
        return closed[0]
