from django.core.management.base import BaseCommand, CommandError

from accounts.models import Organization
from cxcore.retention import clear_old_text


class Command(BaseCommand):
    help = (
        "Clear free text older than each organization's text_retention_days (episode "
        "summaries, correction reasons, values of customer edits, case texts), in chunks."
    )

    def add_arguments(self, parser):
        parser.add_argument("--org", help="Only this organization (slug).")
        parser.add_argument("--batch-size", type=int, default=None, help="Rows per transaction.")

    def handle(self, *args, org, batch_size, **options):
        organization = None
        if org:
            organization = Organization.objects.filter(slug=org).first()
            if organization is None:
                raise CommandError(f"No organization with slug {org!r}.")
            if organization.text_retention_days is None:
                raise CommandError(f"{org!r} keeps its text: text_retention_days is not set.")
        if batch_size is not None and batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        cleared = clear_old_text(organization=organization, batch_size=batch_size)
        summary = ", ".join(f"{kind} {count}" for kind, count in sorted(cleared.items()))
        self.stdout.write(f"cleared: {summary or 'nothing'}")
