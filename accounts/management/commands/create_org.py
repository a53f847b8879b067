from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.models import User
from accounts.services import create_organization
from accounts.validators import validate_strict_email


class Command(BaseCommand):
    help = "Create an organization with its locations; prints the new organization's slug."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--location", action="append", default=[], dest="locations")
        parser.add_argument("--owner-email")
        parser.add_argument("--owner-password", help="Set a password for a new owner.")
        parser.add_argument("--country", default="GB", help="ISO country for phone numbers.")
        parser.add_argument("--time-zone", default="UTC")

    def handle(self, *args, name, locations, owner_email, owner_password, country, time_zone, **o):
        try:
            # One transaction: a refused organization leaves no owner account behind.
            with transaction.atomic():
                owner = None
                if owner_email:
                    validate_strict_email(owner_email)
                    owner = User.objects.filter(email__iexact=owner_email).first()
                    if owner is None:
                        owner = User.objects.create_user(owner_email, owner_password)
                org = create_organization(
                    name=name,
                    location_names=locations,
                    country=country.upper(),
                    time_zone=time_zone,
                    owner=owner,
                )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        if owner is not None and not owner.has_usable_password():
            self.stderr.write(
                f"{owner.email} has no password yet: python manage.py changepassword {owner.email}"
            )
        self.stdout.write(org.slug)
