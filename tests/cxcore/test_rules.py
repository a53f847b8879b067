from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from accounts.errors import InvalidInput
from cxcore.rules import (
    CaseMarks,
    DuePolicy,
    NarrativeState,
    care_due_at,
    experience_from_rating,
    experience_from_score,
    fold_narrative,
    identifiers_in_search,
    infer_experience,
    normalize_identifier,
    recovery_due_at,
    spend_of,
    usual_gap,
    usual_order_from,
)


@pytest.mark.parametrize(
    ("raw", "country", "expected"),
    [
        ("07400 123456", "GB", "+447400123456"),
        ("+44 (0)7400-123456", "GB", "+447400123456"),
        ("0044 7400 123456", "GB", "+447400123456"),
        ("(415) 555-2671", "US", "+14155552671"),
        ("+44 7400 123456", "US", "+447400123456"),  # an explicit prefix beats the country
    ],
)
def test_phone_numbers_normalise_to_e164_with_the_org_country(raw, country, expected):
    assert normalize_identifier("phone", raw, country=country) == expected


@pytest.mark.parametrize("raw", ["12", "not a phone", "07700 900123", "+44 1"])
def test_invalid_phone_numbers_are_refused_naming_the_field(raw):
    with pytest.raises(InvalidInput) as exc:
        normalize_identifier("phone", raw, country="GB")
    assert exc.value.field == "phone"
    assert exc.value.code == "invalid_phone"


def test_email_is_case_insensitive_and_cards_are_exact():
    assert normalize_identifier("email", " Dan.Reyes@Example.COM ", country="GB") == (
        "dan.reyes@example.com"
    )
    assert normalize_identifier("card", " AbC-12 ", country="GB") == "AbC-12"
    with pytest.raises(InvalidInput):
        normalize_identifier("email", "dan at example", country="GB")


@pytest.mark.parametrize(("stars", "exp"), [(1, -2), (2, -1), (3, 0), (4, 1), (5, 2)])
def test_five_star_ratings_map_one_step_per_star(stars, exp):
    assert experience_from_rating("stars5", stars) == exp


@pytest.mark.parametrize(
    ("score", "exp"), [(0, -2), (3, -2), (4, -1), (6, -1), (7, 0), (8, 0), (9, 1), (10, 2)]
)
def test_ten_point_scores_follow_promoter_bands(score, exp):
    assert experience_from_rating("score10", score) == exp


@pytest.mark.parametrize(("scale", "value"), [("stars5", 0), ("stars5", 6), ("score10", 11)])
def test_ratings_outside_their_scale_are_refused(scale, value):
    with pytest.raises(InvalidInput) as exc:
        experience_from_rating(scale, value)
    assert exc.value.field == "rating.value"


def test_sentiment_bands_are_symmetric():
    assert [experience_from_score(x) for x in (-0.9, -0.4, 0.0, 0.4, 0.9)] == [-2, -1, 0, 1, 2]


def test_angry_feedback_is_inferred_negative():
    text = "The cashier forgot my salad and latte. I left hungry and angry."
    inferred = infer_experience("feedback", text)
    assert inferred is not None and inferred < 0


def test_praise_is_inferred_positive():
    assert infer_experience("feedback", "Absolutely amazing brunch, best in town!") == 2


def test_complaints_are_never_inferred_better_than_negative():
    assert infer_experience("complaint", "") == -1
    mixed = infer_experience("complaint", "Thanks, lovely staff, but the order was wrong")
    assert mixed is not None and mixed <= -1
    assert infer_experience("compliment", "") == 1


def test_plain_visit_text_infers_nothing():
    assert infer_experience("visit", "Quick coffee") is None
    assert infer_experience("note", "Allergic to nuts, hates waiting") is None
    assert infer_experience("visit", "") is None


def test_usual_order_is_the_most_frequent_recent_item():
    orders = [[{"name": "Oat latte"}], [{"name": "Flat white"}], [{"name": "oat latte"}]]
    assert usual_order_from(orders) == "Oat latte"
    assert usual_order_from([[{"name": "Tea"}]]) == ""  # once is not usual
    # a tie goes to the most recent
    assert (
        usual_order_from([[{"name": "A"}], [{"name": "B"}], [{"name": "B"}], [{"name": "A"}]])
        == "A"
    )


T0 = datetime(2026, 5, 1, 12, tzinfo=UTC)


def test_fold_takes_last_experience_by_time_not_arrival():
    rows: list[tuple[int, str, datetime, int | None, list[dict]]] = [
        (1, "feedback", T0 + timedelta(days=2), -2, []),
        (2, "visit", T0 + timedelta(days=3), None, []),
        (3, "compliment", T0, 2, []),  # back-dated, arrived last
    ]
    state = fold_narrative(rows, [])
    assert state.last_experience == -2
    assert state.last_experience_at == T0 + timedelta(days=2)
    assert state.last_negative_at == T0 + timedelta(days=2)
    assert state.visit_count == 1
    assert state.first_seen_at == T0
    assert state.episode_count == 3


def test_equal_times_go_to_the_later_recorded_episode():
    state = NarrativeState()
    state.apply(episode_id=5, kind="feedback", occurred_at=T0, experience=-1)
    state.apply(episode_id=4, kind="feedback", occurred_at=T0, experience=2)
    assert state.last_experience == -1
    assert state.last_experience_episode_id == 5


# --- due times -------------------------------------------------------------------------------

POLICY = DuePolicy(grace=timedelta(hours=2), care_min_visits=5, care_gap_factor=3.0)


def negative_state(**overrides):
    state = NarrativeState(
        last_experience=-2, last_experience_at=T0, last_negative_at=T0, visit_count=3
    )
    for name, value in overrides.items():
        setattr(state, name, value)
    return state


def test_an_unfollowed_negative_is_due_after_the_grace_period():
    assert recovery_due_at(negative_state(), CaseMarks(), POLICY) == T0 + timedelta(hours=2)


def test_a_follow_up_or_a_better_last_experience_clears_the_recovery_due_time():
    followed = negative_state(last_follow_up_at=T0 + timedelta(minutes=5))
    better = negative_state(last_experience=1, last_experience_at=T0 + timedelta(days=1))
    assert recovery_due_at(followed, CaseMarks(), POLICY) is None
    assert recovery_due_at(better, CaseMarks(), POLICY) is None


def test_an_open_case_holds_the_due_time_until_something_new_happens():
    covered = CaseMarks(recovery_case_open=True, recovery_handled_until=T0)
    assert recovery_due_at(negative_state(), covered, POLICY) is None
    later = negative_state(last_negative_at=T0 + timedelta(days=1))
    # a newer negative while the case is open: double deviation, at once
    assert recovery_due_at(later, covered, POLICY) == T0 + timedelta(days=1)
    followed = negative_state(last_follow_up_at=T0 + timedelta(hours=5))
    # a follow-up after the case opened: the sweep resolves it, at once
    assert recovery_due_at(followed, covered, POLICY) == T0 + timedelta(hours=5)


def test_a_closed_case_leaves_its_negatives_handled():
    dismissed = CaseMarks(recovery_handled_until=T0)
    assert recovery_due_at(negative_state(), dismissed, POLICY) is None
    newer = negative_state(last_negative_at=T0 + timedelta(days=2))
    assert recovery_due_at(newer, dismissed, POLICY) == T0 + timedelta(days=2, hours=2)


def test_care_is_not_due_again_until_the_regular_has_visited_since_the_last_care_case():
    state = NarrativeState(visit_count=6, first_visit_at=T0, last_visit_at=T0 + timedelta(35))
    assert care_due_at(state, CaseMarks(care_handled_until=T0 + timedelta(35)), POLICY) is None
    assert care_due_at(state, CaseMarks(care_handled_until=T0 + timedelta(20)), POLICY)


def test_a_negative_soon_after_a_resolved_recovery_is_due_at_once():
    marks = CaseMarks(recovery_resolved_at=T0 - timedelta(days=3))
    assert recovery_due_at(negative_state(), marks, POLICY) == T0
    long_ago = CaseMarks(recovery_resolved_at=T0 - timedelta(days=90))
    assert recovery_due_at(negative_state(), long_ago, POLICY) == T0 + timedelta(hours=2)


def test_the_rhythm_is_the_mean_gap_between_visits():
    state = NarrativeState(visit_count=5, first_visit_at=T0, last_visit_at=T0 + timedelta(days=28))
    assert usual_gap(state) == timedelta(days=7)
    assert usual_gap(NarrativeState(visit_count=1, first_visit_at=T0, last_visit_at=T0)) is None


def test_a_regular_is_care_due_after_k_times_their_gap_and_at_least_the_minimum():
    weekly = NarrativeState(visit_count=5, first_visit_at=T0, last_visit_at=T0 + timedelta(days=28))
    assert care_due_at(weekly, CaseMarks(), POLICY) == T0 + timedelta(days=28 + 21)
    often = NarrativeState(visit_count=5, first_visit_at=T0, last_visit_at=T0 + timedelta(days=8))
    assert care_due_at(often, CaseMarks(), POLICY) == T0 + timedelta(days=8 + 14)
    one_sitting = NarrativeState(visit_count=5, first_visit_at=T0, last_visit_at=T0)
    assert care_due_at(one_sitting, CaseMarks(), POLICY) is None  # not a regular


def test_care_is_never_due_for_occasional_customers_or_with_a_care_case_open():
    occasional = NarrativeState(visit_count=4, first_visit_at=T0, last_visit_at=T0 + timedelta(30))
    regular = NarrativeState(visit_count=9, first_visit_at=T0, last_visit_at=T0 + timedelta(30))
    assert care_due_at(occasional, CaseMarks(), POLICY) is None
    open_since = CaseMarks(care_case_open=True, care_handled_until=T0 + timedelta(30))
    assert care_due_at(regular, open_since, POLICY) is None
    back = NarrativeState(visit_count=10, first_visit_at=T0, last_visit_at=T0 + timedelta(50))
    assert care_due_at(back, open_since, POLICY) == T0 + timedelta(50)  # resolves at once


def test_spend_counts_priced_items_by_quantity():
    items: list[dict[str, object]] = [
        {"name": "Latte", "quantity": 2, "price": "3.40"},
        {"name": "Water"},
    ]
    assert spend_of(items) == Decimal("6.80")


# --- the search box ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "identifiers", "ending", "words"),
    [
        # a whole phone number, in any format, is an exact identifier
        ("07400 900555", {"phone": "07400 900555"}, "", ()),
        ("+44 (0)7400-900555", {"phone": "+44 (0)7400-900555"}, "", ()),
        # the last 4 or more digits: how staff ask at a busy till ("what are the last four?")
        ("0555", {"card": "0555"}, "0555", ()),
        ("900 555", {"card": "900 555"}, "900555", ()),
        ("400-900-555", {"card": "400-900-555"}, "400900555", ()),
        # fewer than 4 digits is too little to go on
        ("555", {"card": "555"}, "", ()),
        # an email exactly, whatever the case
        ("Dan.Reyes@Example.com", {"email": "Dan.Reyes@Example.com"}, "", ()),
        # a card with letters in it, and a single word that may be a card or a name
        ("LOYAL-7", {"card": "LOYAL-7"}, "", ("LOYAL-7",)),
        ("Reyes", {"card": "Reyes"}, "", ("Reyes",)),
        # names in either order, commas and extra spaces ignored
        ("Reyes Daniel", {}, "", ("Reyes", "Daniel")),
        ("  reyes,  daniel ", {}, "", ("reyes", "daniel")),
        ("Daniel Reyes", {}, "", ("Daniel", "Reyes")),
    ],
)
def test_the_search_box_reads_phones_endings_emails_cards_and_names(
    text, identifiers, ending, words
):
    terms = identifiers_in_search(text, country="GB")
    assert terms.identifiers == identifiers
    assert terms.phone_ending == ending
    assert terms.name_words == words


def test_a_search_is_bounded_however_much_is_typed():
    terms = identifiers_in_search(" ".join(["word"] * 50), country="GB")
    assert len(terms.name_words) <= 5
    assert identifiers_in_search("1" * 40, country="GB").phone_ending == ""  # no phone is 40 long


def test_an_empty_search_asks_for_nothing():
    terms = identifiers_in_search("   ", country="GB")
    assert (terms.identifiers, terms.phone_ending, terms.name_words) == ({}, "", ())


def test_touchpoint_labels_read_codes_and_episode_touchpoints_alike():
    from cxcore.vocabulary import touchpoint_label

    assert touchpoint_label("parking_valet") == "Parking / valet"
    assert touchpoint_label({"code": "wait", "third_party": False}) == "Wait"
    assert touchpoint_label("something_new") == "something_new"
    assert touchpoint_label(None) == "None"
