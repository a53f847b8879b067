"""Invariant 3: the maintained narrative state always equals the one recomputed from episodes,
whatever order the episodes arrive in (late and back-dated ones too)."""

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cxcore.models import Customer, EpisodeKind
from cxcore.rules import NarrativeState
from cxcore.services import EpisodeInput, narrative_from_episodes, record_episode
from tests.factories import CustomerFactory

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
ITEMS = ["Oat latte", "Flat white", "Croissant"]

episodes = st.lists(
    st.fixed_dictionaries(
        {
            "kind": st.sampled_from(EpisodeKind.values),
            # few distinct instants, so equal times (ties) are common
            "minutes_ago": st.integers(min_value=0, max_value=6).map(lambda n: n * 60),
            "experience": st.one_of(st.none(), st.integers(min_value=-2, max_value=2)),
            "items": st.lists(st.sampled_from(ITEMS), max_size=2),
        }
    ),
    min_size=1,
    max_size=12,
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(sequence=episodes)
def test_maintained_state_equals_recomputed_state_in_any_arrival_order(org, sequence):
    customer = CustomerFactory(organization=org)
    for spec in sequence:
        record_episode(
            organization=org,
            data=EpisodeInput(
                kind=spec["kind"],
                customer_id=customer.pk,
                occurred_at=NOW - timedelta(minutes=spec["minutes_ago"]),
                experience=spec["experience"],
                items=[{"name": name, "quantity": 1} for name in spec["items"]],
            ),
            now=NOW,
        )
    customer = Customer.objects.get(pk=customer.pk)
    assert NarrativeState.of(customer) == narrative_from_episodes(customer.pk)
    assert customer.episode_count == len(sequence)
