from django.core.management.base import BaseCommand

from webhooks.delivery import deliver_due


class Command(BaseCommand):
    help = "Send every webhook delivery due now, then exit (the beat does this every few seconds)."

    def handle(self, *args, **options) -> None:
        run = deliver_due()
        self.stdout.write(f"sent {run.sent}: {run.delivered} delivered, {run.failed} failed")
