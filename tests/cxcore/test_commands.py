from io import StringIO

from django.core.management import call_command

from cxcore.models import Customer
from tests.factories import EpisodeFactory


def run(*args):
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue().strip()


def test_rebuild_narratives_repairs_drift_and_says_how_much(org):
    customers = [EpisodeFactory.create(customer__organization=org).customer for _ in range(3)]
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
