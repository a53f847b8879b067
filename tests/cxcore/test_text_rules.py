"""Emails, names and free text that could spoof are refused (cxcore/text_rules.py), each a 400
naming its field, on the API and the pages, and nothing is stored."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.errors import InvalidInput
from cxcore.models import Customer, Episode, Identifier
from cxcore.services import EpisodeInput, record_episode
from cxcore.text_rules import check_free_text, check_name, normalize_email
from tests.cxcore.test_tenancy import page_client

RLO, LRI, LRM = "\u202e", "\u2066", "\u200e"

GOOD_EMAILS = [
    ("Ana@Example.com", "ana@example.com"),
    ("  ana.b+cafe@example.co.uk ", "ana.b+cafe@example.co.uk"),
    ("zoe@exämple.de", "zoe@exämple.de"),
]
BAD_EMAILS = [
    ("ana@@example.com", "exactly one @"),
    ("ana@b@example.com", "exactly one @"),
    ('"ana@b"@example.com', "exactly one @"),
    ("ana.example.com", "exactly one @"),
    (f"ana@exa{RLO}elpm.com", "U+202E"),
    (f"ana{LRM}@example.com", "U+200E"),
    (f"ana@example.com{LRI}", "U+2066"),
    ("ana\x00@example.com", "U+0000"),
    ("ana\n@example.com", "U+000A"),
    ("ana@example", "is not an email address"),
    ("ana@localhost", "is not an email address"),
    ("ana smith@example.com", "is not an email address"),
    ("@example.com", "is not an email address"),
]


@pytest.mark.parametrize(("raw", "stored"), GOOD_EMAILS)
def test_an_email_is_stored_lower_case(raw, stored):
    assert normalize_email(raw) == stored


@pytest.mark.parametrize(("raw", "why"), BAD_EMAILS)
def test_an_email_that_could_spoof_or_is_not_one_is_refused(raw, why):
    with pytest.raises(InvalidInput) as caught:
        normalize_email(raw, field="customer.email")
    assert caught.value.field == "customer.email"
    assert caught.value.code == "invalid_email"
    assert why in caught.value.message, caught.value.message
    assert RLO not in caught.value.message  # the message shows the control, escaped


@pytest.mark.parametrize("name", ["Zoë", "محمد", "José María", "O'Brien-Smith", "李小龙"])
def test_names_in_any_script_are_fine(name):
    check_name(name, field="name")


@pytest.mark.parametrize(
    "name", [f"Ana{RLO}", f"{LRI}Ana", f"Ana{LRM}", "Ana\nBell", "Ana\tBell", "Ana\x1b[31m"]
)
def test_a_name_with_a_control_or_direction_character_is_refused(name):
    with pytest.raises(InvalidInput, match="Must not hold") as caught:
        check_name(name, field="customer.name")
    assert caught.value.field == "customer.name"
    assert caught.value.code == "invalid_characters"


def test_free_text_keeps_lines_tabs_and_direction_marks_but_not_overrides():
    check_free_text("Line one\n\tLine two\r\nשלום" + LRM + " (table 4)", field="summary")
    for bad in (f"paid {RLO}01$", f"{LRI}x", "bell\x07", "\x00"):
        with pytest.raises(InvalidInput, match="Must not hold"):
            check_free_text(bad, field="summary")


# --- over the API and on the pages -----------------------------------------------------------


def post(client, url, body):
    return client.post(url, data=json.dumps(body), content_type="application/json")


def rows() -> tuple:
    return (
        list(Customer.objects.order_by("pk").values()),
        list(Episode.objects.order_by("pk").values()),
        list(Identifier.objects.order_by("pk").values()),
    )


@pytest.fixture
def ana(org, main_st):
    return record_episode(
        organization=org,
        data=EpisodeInput(kind="visit", identifiers={"email": "ana@example.com"}, name="Ana"),
    ).episode.customer


BAD_EPISODES = [
    ({"customer": {"email": f"ana@exa{RLO}mple.com"}}, "customer.email"),
    ({"customer": {"email": '"a@b"@example.com'}}, "customer.email"),
    ({"customer": {"phone": "07400 111333", "name": f"Ana{RLO}"}}, "customer.name"),
    ({"customer": {"phone": "07400 111333"}, "summary": f"paid {RLO}01$"}, "summary"),
    (
        {
            "customer": {"phone": "07400 111333"},
            "items": [{"name": "Latte"}, {"name": f"Oat {LRI}milk"}],
        },
        "items[1].name",
    ),
]


@pytest.mark.parametrize(("body", "field"), BAD_EPISODES)
def test_an_episode_that_could_spoof_is_a_400_naming_the_field(api, ana, body, field):
    before = rows()
    body = {"kind": "visit", **body}
    response = post(api, "/api/v1/episodes/", body)
    assert response.status_code == 400, response.content[:300]
    assert response.json()["errors"][0]["field"] == field
    bulk = post(api, "/api/v1/episodes/bulk/", {"episodes": [body]}).json()["results"][0]
    assert bulk["status"] == "error" and bulk["errors"][0]["field"] == field
    assert rows() == before


def test_looking_up_a_spoofing_email_is_a_400_on_the_api(api, ana):
    for url in (
        f"/api/v1/customers/?email=ana@exa{RLO}mple.com",
        f"/api/v1/sidebar/?email=ana@exa{RLO}mple.com",
    ):
        response = api.get(url)
        assert response.status_code == 400, (url, response.content[:300])
        assert response.json()["errors"][0]["field"] == "email"


@pytest.mark.parametrize(("field", "value"), [("name", f"Ana{RLO}"), ("notes", f"{LRI}VIP")])
def test_editing_a_customer_with_a_spoofing_name_or_notes_is_a_400(api, ana, field, value):
    before = rows()
    response = api.patch(
        f"/api/v1/customers/{ana.pk}/",
        data=json.dumps({field: value}),
        content_type="application/json",
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == field
    assert rows() == before


def test_the_pages_say_so_on_the_field(owner, staff, ana):
    before = rows()
    notes = page_client(owner).post(f"/customers/{ana.pk}/notes/", {"notes": f"{RLO}VIP"})
    assert notes.status_code == 400
    assert "Must not hold a text direction override (U+202E)." in notes.content.decode()
    search = page_client(owner).get(f"/customers/?q=ana@exa{RLO}mple.com")
    assert search.status_code == 200
    assert "is not an email address" in search.content.decode()
    till = page_client(staff).get(f"/pos/lookup/?q=ana@exa{RLO}mple.com")
    assert "is not an email address" in till.content.decode()
    log = page_client(staff).post(
        f"/pos/customers/{ana.pk}/log/", {"kind": "note", "summary": f"{RLO}hello"}
    )
    assert log.status_code < 500
    assert "Must not hold a text direction override" in log.content.decode()
    assert rows() == before


def test_reasons_and_notes_of_corrections_and_cases_are_free_text_too(api, owner, ana):
    """The correction's reason, a resolution's note and a dismissal's reason."""
    from recovery.models import RecoveryCase
    from recovery.sweep import sweep_recovery

    episode = record_episode(
        organization=ana.organization,
        data=EpisodeInput(
            kind="complaint",
            customer_id=ana.pk,
            experience=-2,
            occurred_at=timezone.now() - timedelta(days=1),
        ),
    ).episode
    sweep_recovery(now=timezone.now())
    case = RecoveryCase.objects.get(customer=ana)
    before = rows()
    response = post(api, f"/api/v1/episodes/{episode.pk}/experience/", {"experience": 1,
                    "reason": f"{RLO}fine"})  # fmt: skip
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == "reason"
    response = post(api, f"/api/v1/cases/{case.pk}/resolve/", {"note": f"{LRI}comped"})
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == "note"
    response = post(api, f"/api/v1/cases/{case.pk}/dismiss/", {"reason": "dup\x07"})
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == "reason"
    page = page_client(owner).post(
        f"/customers/{ana.pk}/experience/",
        {"episode": episode.pk, "experience": "1", "reason": f"{RLO}fine"},
    )
    assert page.status_code == 400
    assert "Must not hold a text direction override (U+202E)." in page.content.decode()
    case_page = page_client(owner).post(
        f"/recovery/cases/{case.pk}/", {"action": "dismiss", "reason": f"{RLO}dup"}
    )
    assert case_page.status_code == 400
    assert "Must not hold a text direction override" in case_page.content.decode()
    assert rows() == before
    case.refresh_from_db()
    assert case.status == "open"


def test_the_queues_bulk_dismiss_says_why_a_reason_is_refused(owner, ana):
    from recovery.models import RecoveryCase
    from recovery.sweep import sweep_recovery

    record_episode(
        organization=ana.organization,
        data=EpisodeInput(
            kind="complaint",
            customer_id=ana.pk,
            experience=-2,
            occurred_at=timezone.now() - timedelta(days=1),
        ),
    )
    sweep_recovery(now=timezone.now())
    case = RecoveryCase.objects.get(customer=ana)
    response = page_client(owner).post(
        "/recovery/bulk/",
        {"cases": case.pk, "action": "dismiss", "reason": f"{RLO}dup"},
        follow=True,
    )
    assert "Must not hold a text direction override (U+202E)." in response.content.decode()
    case.refresh_from_db()
    assert case.status == "open"
