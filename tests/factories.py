"""Factories keep related objects in one organization."""

import factory
from django.utils import timezone

from accounts.models import Location, Membership, Organization, Role, User
from cxcore.models import Customer, Episode, Identifier


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization

    name = factory.Sequence(lambda n: f"Cafe {n}")
    slug = factory.Sequence(lambda n: f"cafe-{n}")
    country = "GB"
    time_zone = "Europe/London"


class LocationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Location

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Branch {n}")
    slug = factory.Sequence(lambda n: f"branch-{n}")
    time_zone = "Europe/London"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"person{n}@example.com")
    password = factory.PostGenerationMethodCall("set_password", "pw-for-tests-1")

    @factory.post_generation
    def save_password(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    organization = factory.SubFactory(OrganizationFactory)
    role = Role.STAFF


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Customer {n}")


class IdentifierFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Identifier

    customer = factory.SubFactory(CustomerFactory)
    organization = factory.SelfAttribute("customer.organization")
    kind = "phone"
    value = factory.Sequence(lambda n: f"+447400{200000 + n:06d}")


class EpisodeFactory(factory.django.DjangoModelFactory):
    """Writes the row directly: for tests that need raw episodes (e.g. drift). Normal tests
    use `record_episode`, which keeps the narrative state."""

    class Meta:
        model = Episode

    customer = factory.SubFactory(CustomerFactory)
    organization = factory.SelfAttribute("customer.organization")
    kind = "visit"
    occurred_at = factory.LazyFunction(timezone.now)
