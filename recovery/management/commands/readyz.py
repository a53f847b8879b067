"""`manage.py readyz`: the /readyz report on the command line; exits 1 when failing (for a
container health check where no web server runs, such as beat's)."""

import json

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from recovery.health import readiness


class Command(BaseCommand):
    help = "Report the database, the broker, the sweeps' last runs and overdue customers."

    def handle(self, *args, **options):
        report = readiness(now=timezone.now())
        self.stdout.write(json.dumps(report.as_json(), indent=2))
        if not report.ok:
            raise CommandError("not ready")
