import argparse

from django.core.management.base import BaseCommand

from recovery.sweep import sweep_care, sweep_recovery


def positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


class Command(BaseCommand):
    help = "Run the recovery and care sweeps now: open the cases that are due; print the counts."

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=positive, default=1000)

    def handle(self, *args, batch_size, **options):
        recovery = sweep_recovery(batch_size=batch_size)
        care = sweep_care(batch_size=batch_size)
        self.stdout.write(
            f"opened {recovery.opened} recovery cases and {care.opened} care cases; "
            f"reopened {recovery.reopened}, escalated {recovery.deviations} on another bad "
            f"experience, resolved {recovery.resolved + care.resolved} by follow-ups or visits"
        )
