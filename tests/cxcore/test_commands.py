from io import StringIO

from django.core.management import call_command

from cxcore.models import Customer, Episode
from cxcore.rules import NarrativeState
from cxcore.services import narrative_from_episodes
from tests.factories import EpisodeFactory


def run(*args):
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue().strip()


def test_seed_demo_loads_the_stories_once_with_consistent_narratives(db, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    assert "loaded" in run("seed_demo", "--customers", "40")
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


def test_rebuild_narratives_repairs_drift_and_says_how_much(org):
    customers = [EpisodeFactory(customer__organization=org).customer for _ in range(3)]
    assert all(c.episode_count == 0 for c in customers)  # written behind the service's back
    assert run("rebuild_narratives") == "checked 3 customers, repaired 3"
    assert run("rebuild_narratives", "--org", org.slug) == "checked 3 customers, repaired 0"
    assert Customer.objects.filter(episode_count=1).count() == 3


def test_reconcile_repairs_lost_due_times(org):
    from datetime import timedelta

    from django.utils import timezone

    from cxcore.services import EpisodeInput, record_episode

    at = timezone.now() - timedelta(hours=1)
    episode = record_episode(
        organization=org,
        data=EpisodeInput(
            kind="complaint", identifiers={"card": "C-7"}, experience=-2, occurred_at=at
        ),
    ).episode
    expected = at + org.recovery_grace_period
    Customer.objects.update(recovery_due_at=None)  # a due time lost behind the service's back
    assert run("rebuild_narratives") == "checked 1 customers, repaired 1"
    assert Customer.objects.get(pk=episode.customer_id).recovery_due_at == expected
    assert run("rebuild_narratives") == "checked 1 customers, repaired 0"
