from django.core.management.base import BaseCommand, CommandError

from accounts.models import Organization
from cxcore.services import rebuild_narratives


class Command(BaseCommand):
    help = "Recompute every customer's narrative state from their episodes and repair drift."

    def add_arguments(self, parser):
        parser.add_argument("--org", help="Only this organization (slug).")
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args, org, batch_size, **options):
        organization = None
        if org:
            organization = Organization.objects.filter(slug=org).first()
            if organization is None:
                raise CommandError(f"No organization with slug {org!r}.")
        checked, repaired = rebuild_narratives(organization=organization, batch_size=batch_size)
        self.stdout.write(f"checked {checked} customers, repaired {repaired}")
