"""The demo lives six months of the past, so the queue and insights are real on the first run."""

from datetime import timedelta
from io import StringIO

from django.core.management import call_command
from django.db.models import Count
from django.utils import timezone

from accounts.models import Organization
from accounts.tenancy import Tenant
from cxcore.models import Customer, Episode
from cxcore.rules import NarrativeState
from cxcore.services import narrative_from_episodes
from recovery.insights import summary
from recovery.models import RecoveryCase


def run(*args):
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue().strip()


def test_seed_demo_loads_the_stories_once_with_consistent_narratives(db, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    assert "loaded" in run("seed_demo", "--customers", "60")
    episodes = Episode.objects.count()
    assert "already" in run("seed_demo")
    assert Episode.objects.count() == episodes
    dan = Customer.objects.get(name="Daniel Reyes")
    assert dan.last_experience == -2 and dan.usual_order == "Almond-milk latte"
    assert dan.identifiers.filter(value="+447400900555").exists()
    valet = Episode.objects.get(kind="incident")
    assert valet.touchpoints == [{"code": "parking_valet", "third_party": True}]
    assert "API key" in (tmp_path / "demo-credentials.txt").read_text()
    for customer in Customer.objects.all():
        assert NarrativeState.of(customer) == narrative_from_episodes(customer.pk)

    # The stories are open cases on the queue from the first minute.
    for name, kind in (("Daniel Reyes", "recovery"), ("Margaret Chen", "recovery"),
                       ("Priya Nair", "care")):  # fmt: skip
        assert RecoveryCase.objects.get(customer__name=name).kind == kind
        assert RecoveryCase.objects.get(customer__name=name).status == "open"
    # The past: resolved and dismissed cases with measured outcomes in both cohorts.
    statuses = dict(
        RecoveryCase.objects.filter(kind="recovery")
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    assert statuses.get("resolved", 0) > 0 and statuses.get("dismissed", 0) > 0
    # ... spread over the last six months, not bunched into the last few weeks.
    closed = RecoveryCase.objects.filter(kind="recovery").exclude(status="open")
    opened = sorted(closed.values_list("opened_at", flat=True))
    assert opened[0] < timezone.now() - timedelta(days=120)
    assert opened[-1] > timezone.now() - timedelta(days=30)
    measured = set(
        RecoveryCase.objects.exclude(outcome="").values_list("outcome", "outcome_followed_up")
    )
    assert {("recovered", True), ("lost", True)} <= measured
    assert any(followed is False for _, followed in measured)

    # Insights shows a real recovery rate and lift on the first run.
    org = Organization.objects.get(slug="corner-cup")
    owner = org.memberships.get(role="owner")
    tenant = Tenant(organization=org, membership=owner, user=owner.user)
    today = timezone.localdate()
    figures = summary(tenant=tenant, start=today - timedelta(days=200), end=today)
    assert figures.recovery_rate.value is not None
    assert figures.return_rate_not_followed_up.value is not None
    assert figures.lift is not None
