from django.core.management.base import BaseCommand

from recovery.sweep import sweep_recovery


class Command(BaseCommand):
    help = "Run the recovery sweep now: open the cases that are due; prints what it did."

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=1000)

    def handle(self, *args, batch_size, **options):
        result = sweep_recovery(batch_size=batch_size)
        self.stdout.write(
            f"opened {result.opened} cases, reopened {result.reopened}, escalated "
            f"{result.deviations} on another bad experience, resolved {result.resolved} "
            f"by follow-ups ({result.looked_at} customers due)"
        )
