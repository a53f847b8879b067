"""The reason map: the pure rule, and owners editing it over the API and on the settings page."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from accounts.errors import InvalidInput
from connectors.models import ReasonMap
from connectors.reasons import (
    DEFAULT_REASON_MAP,
    ReasonEntry,
    entries_as_lines,
    entries_from_lines,
    map_reason,
    validate_entries,
)
from tests.conftest import key_client

REASONS = "/api/v1/connectors/reasons/"
PAGE = "/settings/connections/reasons/"


@pytest.mark.parametrize(
    ("reason", "touchpoint", "experience"),
    [
        ("Forgotten", "order_accuracy", -2),
        ("order NEVER rung in", "order_accuracy", -2),
        ("not made", "order_accuracy", -2),
        ("wrong item", "order_accuracy", -1),
        ("soup was cold", "food_and_drink", -1),
        ("quality", "food_and_drink", -1),
        ("Remade, milk split", "food_and_drink", -1),
        ("long wait", "wait", -1),
        ("", "other", -1),
        ("coldness", "other", -1),  # whole words only: "cold" is not in "coldness"
    ],
)
def test_the_defaults_map_each_reason_the_issue_lists(reason, touchpoint, experience):
    mapped = map_reason(reason, DEFAULT_REASON_MAP)
    assert (mapped.touchpoint, mapped.experience) == (touchpoint, experience)


def test_the_longest_matching_phrase_wins():
    entries = [ReasonEntry("made", "staff"), ReasonEntry("not made", "order_accuracy", True)]
    assert map_reason("latte not made", entries).touchpoint == "order_accuracy"


def test_the_same_words_twice_is_one_entry_and_the_later_wins():
    entries = validate_entries(
        [
            {"phrase": "Cold!", "touchpoint": "wait"},
            {"phrase": "slow", "touchpoint": "wait"},
            {"phrase": "cold", "touchpoint": "food_and_drink"},
        ]
    )
    assert entries == [ReasonEntry("slow", "wait"), ReasonEntry("cold", "food_and_drink")]
    # No letter or digit: it could never match, so it is left out.
    assert validate_entries([{"phrase": p, "touchpoint": "wait"} for p in ("'!", "  ")]) == []


def test_the_text_form_reads_back_what_it_writes():
    assert entries_from_lines(entries_as_lines(DEFAULT_REASON_MAP)) == list(DEFAULT_REASON_MAP)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (
            [
                {"phrase": "cold", "touchpoint": "food_and_drink"},
                {"phrase": "x", "touchpoint": "soup"},
            ],
            "entries[1].touchpoint",
        ),
        ([{"phrase": "x" * 61, "touchpoint": "wait"}], "entries[0].phrase"),
        ([{"phrase": "", "touchpoint": "wait"}], "entries[0].phrase"),
        ([{"phrase": "a\x00", "touchpoint": "wait"}], "entries[0].phrase"),
        ([{"phrase": "a", "touchpoint": "wait", "never_came": "true"}], "entries[0].never_came"),
        ([{"phrase": "a", "touchpoint": "wait", "never_came": "yes"}], "entries[0].never_came"),
        ("cold = wait", "entries"),
    ],
)
def test_a_bad_entry_is_named(raw, field):
    with pytest.raises(InvalidInput) as caught:
        validate_entries(raw)
    assert caught.value.field == field


def test_everyone_reads_the_map_and_it_starts_with_the_defaults(api, staff):
    client = APIClient()
    client.force_login(staff)
    body = client.get(REASONS).json()
    assert body["entries"][1] == {
        "phrase": "never rung in",
        "touchpoint": "order_accuracy",
        "never_came": True,
    }
    assert api.get(REASONS).json() == body


def test_owners_replace_the_map_and_a_bad_entry_changes_nothing(owner, till_key, manager):
    client = APIClient()
    client.force_login(owner)
    good = {"entries": [{"phrase": "Valet", "touchpoint": "parking_valet"}]}
    assert client.put(REASONS, good, format="json").status_code == 200
    assert client.get(REASONS).json()["entries"] == [
        {"phrase": "valet", "touchpoint": "parking_valet", "never_came": False}
    ]
    bad = {"entries": [{"phrase": "cold", "touchpoint": "food_and_drink"}, {"phrase": "x"}]}
    response = client.put(REASONS, bad, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "entries[1].touchpoint"
    assert ReasonMap.objects.get().entries[0]["phrase"] == "valet"
    assert key_client(till_key).put(REASONS, good, format="json").status_code == 403
    as_manager = APIClient()
    as_manager.force_login(manager)
    assert as_manager.put(REASONS, good, format="json").status_code == 403


def test_the_settings_page_edits_the_map_and_shows_the_square_url(owner, main_st):
    client = Client()
    client.force_login(owner)
    page = client.get("/settings/connections/")
    assert page.status_code == 200 and "never rung in = order_accuracy !" in page.content.decode()
    saved = client.post(PAGE, {"entries": "slow = wait\nnever came = order_accuracy !"})
    assert saved.status_code == 302
    assert ReasonMap.objects.get().entries[1] == {
        "phrase": "never came",
        "touchpoint": "order_accuracy",
        "never_came": True,
    }
    refused = client.post(PAGE, {"entries": "slow = soup"})
    assert refused.status_code == 400 and "entries[0].touchpoint" in refused.content.decode()
    connected = client.post(
        "/settings/connections/", {"signature_key": "k", "locations": "L1 = main-st"}
    )
    assert connected.status_code == 302
    shown = client.get("/settings/connections/").content.decode()
    assert "/api/v1/connectors/square/" in shown and "L1 = main-st" in shown
    assert 'value="k"' not in shown  # the key is never rendered back
