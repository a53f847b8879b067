"""Invariant 3: the maintained narrative state always equals the one recomputed from episodes,
whatever order episodes arrive in (late and back-dated ones too), whichever path wrote them
(one by one, in bulk) and after staff corrections."""

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cxcore.models import Customer, Episode, EpisodeKind
from cxcore.rules import CaseMarks, DuePolicy, NarrativeState, due_times
from cxcore.services import (
    EpisodeInput,
    correct_experience,
    narrative_from_episodes,
    record_episode,
    record_episodes_bulk,
)
from tests.factories import CustomerFactory

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
ITEMS = ["Oat latte", "Flat white", "Croissant"]

episode_specs = st.fixed_dictionaries(
    {
        "kind": st.sampled_from(EpisodeKind.values),
        # few distinct instants, so equal times (ties) are common
        "minutes_ago": st.integers(min_value=0, max_value=6).map(lambda n: n * 60),
        "experience": st.one_of(st.none(), st.integers(min_value=-2, max_value=2)),
        "items": st.lists(st.sampled_from(ITEMS), max_size=2),
    }
)
# A write is one episode, a bulk batch of several, or a correction of an earlier episode.
writes = st.lists(
    st.one_of(
        st.tuples(st.just("single"), episode_specs),
        st.tuples(st.just("bulk"), st.lists(episode_specs, min_size=1, max_size=4)),
        st.tuples(
            st.just("correct"),
            st.tuples(st.integers(min_value=0), st.one_of(st.none(), st.integers(-2, 2))),
        ),
    ),
    min_size=1,
    max_size=10,
)


def to_input(customer, spec):
    return EpisodeInput(
        kind=spec["kind"],
        customer_id=customer.pk,
        occurred_at=NOW - timedelta(minutes=spec["minutes_ago"]),
        experience=spec["experience"],
        items=[{"name": name, "quantity": 1, "price": "3.50"} for name in spec["items"]],
    )


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(sequence=writes)
def test_maintained_state_equals_recomputed_state_whatever_the_writes(org, sequence):
    customer = CustomerFactory.create(organization=org)
    written = 0
    for path, spec in sequence:
        if path == "single":
            record_episode(organization=org, data=to_input(customer, spec), now=NOW)
            written += 1
        elif path == "bulk":
            results = record_episodes_bulk(
                organization=org, items=[to_input(customer, s) for s in spec], now=NOW
            )
            assert [r.status for r in results] == ["created"] * len(spec)
            written += len(spec)
        elif written:
            position, experience = spec
            episodes = list(Episode.objects.filter(customer=customer).order_by("pk"))
            correct_experience(episode=episodes[position % len(episodes)], experience=experience)
    customer = Customer.objects.select_related("organization").get(pk=customer.pk)
    recomputed = narrative_from_episodes(customer.pk)
    assert NarrativeState.of(customer) == recomputed
    assert customer.episode_count == written
    # and the due times the sweeps rely on agree with the recomputed state
    marks = CaseMarks(**{name: getattr(customer, name) for name in CaseMarks.__dataclass_fields__})
    policy = DuePolicy.of(customer.organization)
    assert (customer.recovery_due_at, customer.care_due_at) == due_times(recomputed, marks, policy)
