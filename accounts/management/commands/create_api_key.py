from django.core.management.base import BaseCommand, CommandError

from accounts.models import Location, Organization
from accounts.services import create_api_key


class Command(BaseCommand):
    help = "Create an API key; prints only the key (shown this once) on stdout."

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="Organization slug.")
        parser.add_argument("--location", help="Limit the key to this location slug.")
        parser.add_argument("--name", required=True, help="A label, e.g. 'Till 1'.")

    def handle(self, *args, org, location, name, **options):
        organization = Organization.objects.filter(slug=org).first()
        if organization is None:
            raise CommandError(f"No organization with slug {org!r}.")
        loc = None
        if location:
            loc = Location.objects.filter(organization=organization, slug=location).first()
            if loc is None:
                raise CommandError(f"No location {location!r} in {org!r}.")
        try:
            _, raw_key = create_api_key(organization=organization, location=loc, name=name)
        except ValueError as exc:  # e.g. an archived location
            raise CommandError(str(exc)) from exc
        self.stdout.write(raw_key)
