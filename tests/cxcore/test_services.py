from datetime import UTC, datetime, timedelta

import pytest

from accounts.errors import InvalidInput, NotFoundError
from cxcore.models import Customer, Episode, ExperienceCorrection, Identifier
from cxcore.rules import NarrativeState
from cxcore.services import (
    EpisodeInput,
    correct_experience,
    narrative_from_episodes,
    rebuild_narrative,
    rebuild_narratives,
    record_episode,
)
from tests.factories import CustomerFactory, EpisodeFactory

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def log(org, now=NOW, **fields):
    fields.setdefault("identifiers", {"phone": "07400 123456"})
    fields.setdefault("occurred_at", now - timedelta(minutes=5))
    return record_episode(organization=org, data=EpisodeInput(**fields), now=now)


def test_unknown_identifiers_create_one_customer_with_normalised_identifiers(org):
    result = log(org, kind="visit", identifiers={"phone": "07400 123456", "email": "Dan@X.com"})
    customer = result.episode.customer
    assert result.created
    assert set(customer.identifiers.values_list("kind", "value")) == {
        ("phone", "+447400123456"),
        ("email", "dan@x.com"),
    }


def test_the_same_person_in_any_format_is_the_same_customer(org):
    first = log(org, kind="visit", identifiers={"phone": "07400 123456"})
    second = log(org, kind="visit", identifiers={"phone": "+44 7400-123456"})
    third = log(org, kind="visit", identifiers={"phone": "0044 7400 123456", "email": "d@x.com"})
    assert first.episode.customer_id == second.episode.customer_id == third.episode.customer_id
    assert Customer.objects.count() == 1
    # the email seen the third time is learned
    assert Identifier.objects.filter(kind="email", value="d@x.com").count() == 1
    assert Customer.objects.get().visit_count == 3


def test_conflicting_identifiers_pick_the_most_specific_and_move_nothing(org):
    by_phone = log(org, kind="visit", identifiers={"phone": "07400 111111"}).episode.customer
    by_card = log(org, kind="visit", identifiers={"card": "C-9"}).episode.customer
    result = log(org, kind="visit", identifiers={"phone": "07400 111111", "card": "C-9"})
    assert result.episode.customer_id == by_card.pk
    assert Identifier.objects.get(kind="phone").customer_id == by_phone.pk


def test_a_name_fills_an_unnamed_customer_but_never_overwrites(org):
    log(org, kind="visit", identifiers={"card": "C-1"})
    log(org, kind="visit", identifiers={"card": "C-1"}, name="Dan")
    log(org, kind="visit", identifiers={"card": "C-1"}, name="Someone Else")
    assert Customer.objects.get().name == "Dan"


def test_episode_write_keeps_the_narrative_state_current(org, main_st):
    t = NOW - timedelta(days=10)
    log(org, kind="order", occurred_at=t, location=main_st, items=[{"name": "Oat latte"}])
    log(org, kind="order", occurred_at=t + timedelta(days=1), items=[{"name": "Oat latte"}])
    log(org, kind="complaint", occurred_at=t + timedelta(days=2), summary="Cold", experience=-2)
    log(org, kind="recovery", occurred_at=t + timedelta(days=3), summary="Called, apologised")
    customer = Customer.objects.get()
    assert customer.first_seen_at == t
    assert customer.last_visit_at == t + timedelta(days=1)
    assert customer.visit_count == 2
    assert customer.episode_count == 4
    assert customer.last_experience == -2
    assert customer.last_negative_at == t + timedelta(days=2)
    assert customer.last_follow_up_at == t + timedelta(days=3)
    assert customer.usual_order == "Oat latte"
    assert NarrativeState.of(customer) == narrative_from_episodes(customer.pk)


def test_a_back_dated_episode_does_not_replace_a_later_experience(org):
    log(org, kind="feedback", occurred_at=NOW - timedelta(days=1), experience=-2)
    log(org, kind="compliment", occurred_at=NOW - timedelta(days=5), experience=2)
    customer = Customer.objects.get()
    assert customer.last_experience == -2
    assert customer.first_seen_at == NOW - timedelta(days=5)


def test_experience_comes_from_rating_then_text(org):
    rated = log(org, kind="feedback", rating={"scale": "score10", "value": 2}, summary="great!")
    inferred = log(org, kind="feedback", summary="Rude staff and cold food, awful.")
    plain = log(org, kind="visit")
    assert (rated.episode.experience, rated.episode.experience_source) == (-2, "rating")
    assert rated.episode.rating_value == 2
    assert inferred.episode.experience < 0
    assert inferred.episode.experience_source == "inferred"
    assert (plain.episode.experience, plain.episode.experience_source) == (None, "")


def test_a_repeated_external_id_returns_the_first_episode(org):
    first = log(org, kind="order", source="pos", external_id="T-1")
    again = log(org, kind="order", source="pos", external_id="T-1", summary="different")
    assert first.created and not again.created
    assert again.episode.pk == first.episode.pk
    assert Episode.objects.count() == 1
    assert Customer.objects.get().episode_count == 1


def test_the_same_external_id_from_another_source_is_another_episode(org):
    log(org, kind="order", source="pos", external_id="T-1")
    log(org, kind="order", source="import", external_id="T-1")
    assert Episode.objects.count() == 2


def test_future_and_ancient_times_are_refused(org):
    with pytest.raises(InvalidInput) as future:
        log(org, kind="visit", occurred_at=NOW + timedelta(hours=1))
    with pytest.raises(InvalidInput) as ancient:
        log(org, kind="visit", occurred_at=datetime(1999, 12, 31, tzinfo=UTC))
    assert future.value.field == ancient.value.field == "occurred_at"
    assert Customer.objects.count() == 0


def test_a_customer_id_from_another_org_is_not_found(org, other_org):
    stranger = CustomerFactory.create(organization=other_org)
    with pytest.raises(NotFoundError) as exc:
        record_episode(
            organization=org, data=EpisodeInput(kind="visit", customer_id=stranger.pk), now=NOW
        )
    assert exc.value.field == "customer.id"
    assert Episode.objects.count() == 0


def test_correcting_an_experience_is_recorded_and_rebuilds_the_state(org, owner):
    bad = log(org, kind="feedback", summary="Terrible, awful, never again").episode
    last_experience = Customer.objects.get().last_experience
    assert last_experience is not None and last_experience < 0
    correct_experience(episode=bad, experience=1, reason="Sarcasm: he loved it", by_user=owner)
    bad.refresh_from_db()
    assert (bad.experience, bad.experience_source) == (1, "corrected")
    correction = ExperienceCorrection.objects.get()
    assert correction.previous_source == "inferred"
    assert correction.corrected_by == owner
    customer = Customer.objects.get()
    assert customer.last_experience == 1
    assert customer.last_negative_at is None


def test_rebuild_repairs_drift_and_reports_it(org):
    log(org, kind="visit")
    customer = Customer.objects.get()
    # An episode written behind the service's back: the state has drifted.
    EpisodeFactory(customer=customer, kind="complaint", experience=-2, occurred_at=NOW)
    assert rebuild_narrative(customer_id=customer.pk) is True
    customer.refresh_from_db()
    assert (customer.last_experience, customer.episode_count) == (-2, 2)
    assert rebuild_narrative(customer_id=customer.pk) is False
    assert rebuild_narratives(organization=org) == (1, 0)
