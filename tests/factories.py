"""Factories keep related objects in one organization.

`CustomerFactory.create(...)` is typed as the Customer it returns; `CustomerFactory(...)` does
the same at run time but mypy sees a CustomerFactory.
"""

import factory
from django.utils import timezone

from accounts.models import Location, Organization, User
from cxcore.models import Customer, Episode, Identifier


class OrganizationFactory(factory.django.DjangoModelFactory[Organization]):
    class Meta:
        model = Organization

    name = factory.Sequence(lambda n: f"Cafe {n}")
    slug = factory.Sequence(lambda n: f"cafe-{n}")
    country = "GB"
    time_zone = "Europe/London"
    # No random holdout unless a test asks for one (tests/recovery/test_holdouts.py): a
    # held-out care case is never prompted or queued, so care tests would depend on ids.
    care_holdout_share = 0


class LocationFactory(factory.django.DjangoModelFactory[Location]):
    class Meta:
        model = Location

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Branch {n}")
    slug = factory.Sequence(lambda n: f"branch-{n}")
    time_zone = "Europe/London"


class UserFactory(factory.django.DjangoModelFactory[User]):
    class Meta:
        model = User

    email = factory.Sequence(lambda n: f"person{n}@example.com")
    # Hashed before the one INSERT (with the tests' fast hasher, see conftest).
    password = factory.django.Password("pw-for-tests-1")


class CustomerFactory(factory.django.DjangoModelFactory[Customer]):
    class Meta:
        model = Customer

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Customer {n}")


class IdentifierFactory(factory.django.DjangoModelFactory[Identifier]):
    class Meta:
        model = Identifier

    customer = factory.SubFactory(CustomerFactory)
    organization = factory.SelfAttribute("customer.organization")
    kind = "phone"
    value = factory.Sequence(lambda n: f"+447400{200000 + n:06d}")


class EpisodeFactory(factory.django.DjangoModelFactory[Episode]):
    """Writes the row directly: for tests that need raw episodes (e.g. drift). Normal tests
    use `record_episode`, which keeps the narrative state."""

    class Meta:
        model = Episode

    customer = factory.SubFactory(CustomerFactory)
    organization = factory.SelfAttribute("customer.organization")
    kind = "visit"
    occurred_at = factory.LazyFunction(timezone.now)
