from datetime import UTC, datetime, timedelta

from django.core import mail
from django.test import Client
from django.urls import reverse

from accounts.models import Membership
from recovery.digests import send_daily_digests
from recovery.sweep import sweep_recovery
from tests.factories import CustomerFactory
from tests.recovery.conftest import log

MORNING = datetime(2026, 11, 20, 7, 10, tzinfo=UTC)  # 07:10 in London (GMT in November)


def test_the_digest_goes_out_once_each_morning_to_those_who_asked(
    settings, org, main_st, harbour, owner, manager
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    for name, location in (("Ann", main_st), ("Bob", harbour)):
        customer = CustomerFactory(organization=org, name=name)
        log(org, customer, MORNING - timedelta(hours=20), kind="complaint", experience=-1,
            location=location)  # fmt: skip
    sweep_recovery(now=MORNING - timedelta(hours=15))
    Membership.objects.filter(user__in=[owner, manager]).update(daily_digest=True)

    assert send_daily_digests(now=MORNING - timedelta(hours=1)) == 0  # 06:10: too early
    assert send_daily_digests(now=MORNING) == 2
    assert send_daily_digests(now=MORNING + timedelta(hours=1)) == 0  # once a day
    by_person = {m.to[0]: m.body for m in mail.outbox}
    assert "2 negative experiences" in by_person[owner.email]
    assert "Ann" in by_person[owner.email] and "Bob" in by_person[owner.email]
    # the manager of Main St hears about Main St only
    assert "1 negative experience" in by_person[manager.email]
    assert "Bob" not in by_person[manager.email]
    assert "/recovery/" in by_person[manager.email]
    assert send_daily_digests(now=MORNING + timedelta(days=1)) == 2  # the next morning


def test_nobody_gets_a_digest_without_asking_and_staff_never(settings, org, owner, staff):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    Membership.objects.filter(user=staff).update(daily_digest=True)
    assert send_daily_digests(now=MORNING) == 0 and mail.outbox == []


def test_owners_opt_in_from_the_queue_page(owner):
    client = Client()
    client.force_login(owner)
    client.post(reverse("digest"), {"daily_digest": "on"})
    assert Membership.objects.get(user=owner).daily_digest
    client.post(reverse("digest"), {})
    assert not Membership.objects.get(user=owner).daily_digest
