from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from cxcore.models import Episode
from recovery.models import Playbook, RecoveryCase
from recovery.services import create_default_playbooks
from recovery.sweep import sweep_recovery
from tests.factories import CustomerFactory
from tests.recovery.conftest import log

CASES = "/api/v1/cases/"


def session(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def open_case(org, *, location=None, experience=-1, hours_ago=30, touchpoints=()):
    customer = CustomerFactory.create(organization=org, name="Ada Lovelace")
    at = timezone.now() - timedelta(hours=hours_ago)
    log(
        org, customer, at, kind="complaint", experience=experience, location=location,
        touchpoints=[{"code": t, "third_party": False} for t in touchpoints],
    )  # fmt: skip
    sweep_recovery(now=at + timedelta(hours=3))
    return RecoveryCase.objects.get(customer=customer)


@pytest.fixture
def cases(org, main_st, harbour):
    create_default_playbooks(organization=org)
    return {
        "old_medium": open_case(org, location=main_st, hours_ago=50),
        "new_medium": open_case(org, location=main_st, hours_ago=20),
        "high": open_case(org, location=harbour, experience=-2, hours_ago=10),
        "nowhere": open_case(org, hours_ago=5),
    }


def test_cases_come_most_severe_then_oldest_first_page_by_page(api, cases):
    page = api.get(CASES, {"page_size": 2}).json()
    seen = [c["id"] for c in page["results"]]
    while page["next"]:
        page = api.get(page["next"]).json()
        seen += [c["id"] for c in page["results"]]
    expected = ["high", "old_medium", "new_medium", "nowhere"]
    assert seen == [cases[name].pk for name in expected]


def test_cases_filter_by_status_severity_location_and_overdue(api, cases):
    def ids(**params):
        return {c["id"] for c in api.get(CASES, params).json()["results"]}

    assert ids(severity=3) == {cases["high"].pk}
    assert ids(location="harbour-rd") == {cases["high"].pk}
    assert ids(status="resolved") == set()
    # opened 47 h and 17 h ago with a 4 h acknowledgement SLA: all but the newest are overdue
    assert cases["nowhere"].pk not in ids(overdue="true")
    assert ids(overdue="false") == {cases["nowhere"].pk}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"severity": "9"}, "severity"),
        ({"status": "nope"}, "status"),
        ({"location": "nowhere"}, "location"),
        ({"overdue": "maybe"}, "overdue"),
        ({"cursor": "garbage"}, "cursor"),
        ({"assignee": "x"}, "assignee"),
    ],
)
def test_bad_case_filters_name_the_field(api, cases, params, field):
    response = api.get(CASES, params)
    assert response.status_code in (400, 404)
    assert response.json()["errors"][0]["field"] == field


def test_the_case_shows_its_triggers_actions_and_history(api, cases):
    data = api.get(f"{CASES}{cases['high'].pk}/").json()
    assert [t["kind"] for t in data["triggers"]] == ["complaint"]
    assert data["playbook"] == "Very negative: the owner calls"
    assert all(isinstance(a["id"], int) and a["text"] for a in data["actions"])
    assert [h["type"] for h in data["history"]] == ["opened"]


def test_a_later_good_visit_is_shown_on_the_open_case(api, org, cases):
    case = cases["new_medium"]
    visit = log(
        org, case.customer, timezone.now() - timedelta(minutes=5), kind="visit", experience=2
    )
    data = api.get(f"{CASES}{case.pk}/").json()
    assert data["status"] == "open"
    assert [e["id"] for e in data["since_opened"]] == [visit.pk]


def test_resolving_through_the_api_logs_the_recovery_episode(api, cases):
    case = cases["old_medium"]
    action = case.actions.first()
    response = api.post(
        f"{CASES}{case.pk}/resolve/", {"note": "Called her", "actions": [action.pk]}, format="json"
    )
    assert response.status_code == 200, response.json()
    data = response.json()
    assert data["status"] == "resolved"
    episode = Episode.objects.get(pk=data["resolution_episode"])
    assert episode.kind == "recovery" and episode.customer_id == case.customer_id
    assert "Called her" in episode.summary
    timeline = api.get(f"/api/v1/customers/{case.customer_id}/timeline/").json()["results"]
    assert timeline[0]["id"] == episode.pk
    again = api.post(f"{CASES}{case.pk}/resolve/", {}, format="json")
    assert again.status_code == 409
    assert Episode.objects.filter(kind="recovery").count() == 1


def test_dismissing_needs_a_reason(api, cases):
    url = f"{CASES}{cases['nowhere'].pk}/dismiss/"
    assert api.post(url, {}, format="json").json()["errors"][0]["field"] == "reason"
    assert api.post(url, {"reason": "Duplicate of a phone call"}, format="json").status_code == 200
    assert RecoveryCase.objects.get(pk=cases["nowhere"].pk).status == "dismissed"


def test_acknowledge_and_assign(api, cases, manager, outsider):
    case = cases["high"]
    assert api.post(f"{CASES}{case.pk}/acknowledge/").json()["acknowledged_at"]
    assigned = api.post(f"{CASES}{case.pk}/assign/", {"assignee": manager.pk}, format="json")
    assert assigned.json()["assignee"] == manager.email
    stranger = api.post(f"{CASES}{case.pk}/assign/", {"assignee": outsider.pk}, format="json")
    assert stranger.status_code == 404
    assert stranger.json()["errors"][0]["field"] == "assignee"


def test_other_organizations_cases_are_404_everywhere(outsider_api, outsider, cases):
    case = cases["high"]
    for client in (outsider_api, session(outsider)):
        assert client.get(CASES).json()["results"] == []
        assert client.get(f"{CASES}{case.pk}/").status_code == 404
        for action in ("acknowledge", "resolve", "dismiss", "assign"):
            response = client.post(
                f"{CASES}{case.pk}/{action}/", {"reason": "x", "assignee": None}, format="json"
            )
            assert response.status_code == 404, action
    case.refresh_from_db()
    assert case.is_open and case.acknowledged_at is None


def test_a_location_key_sees_its_location_and_unplaced_cases_only(till, cases):
    ids = {c["id"] for c in till.get(CASES).json()["results"]}
    assert ids == {cases[n].pk for n in ("old_medium", "new_medium", "nowhere")}
    assert till.get(f"{CASES}{cases['high'].pk}/").status_code == 404


def test_everyone_reads_playbooks_but_only_managers_change_them(api, staff, manager, cases):
    assert len(api.get("/api/v1/playbooks/").json()) == 7
    new = {"name": "Payment trouble", "match_touchpoints": ["payment"], "actions": ["Refund"]}
    assert session(staff).post("/api/v1/playbooks/", new, format="json").status_code == 403
    assert api.post("/api/v1/playbooks/", new, format="json").status_code == 403
    created = session(manager).post("/api/v1/playbooks/", new, format="json")
    assert created.status_code == 201 and created.json()["position"] == 8
    patched = session(manager).patch(
        f"/api/v1/playbooks/{created.json()['id']}/", {"is_active": False}, format="json"
    )
    assert patched.json()["is_active"] is False


def test_reordering_playbooks_needs_every_id_once(manager, org, cases):
    client = session(manager)
    ids = list(Playbook.objects.for_org(org).order_by("position").values_list("pk", flat=True))
    bad = client.post("/api/v1/playbooks/order/", {"order": ids[:-1]}, format="json")
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "order"
    good = client.post("/api/v1/playbooks/order/", {"order": ids[::-1]}, format="json")
    assert [p["id"] for p in good.json()] == ids[::-1]
    assert Playbook.objects.get(pk=ids[-1]).position == 1


def test_bad_playbook_input_names_the_field(manager, cases):
    client = session(manager)
    for body, field in [
        ({"name": "x", "match_touchpoints": ["teleport"]}, "match_touchpoints[0]"),
        ({"name": "x", "ack_sla": "-1 00:00:00"}, "ack_sla"),
        ({"name": "x", "match_max_experience": 5}, "match_max_experience"),
        ({"name": "x", "actions": ["a" * 301]}, "actions[0]"),
    ]:
        response = client.post("/api/v1/playbooks/", body, format="json")
        assert response.status_code == 400, body
        assert response.json()["errors"][0]["field"] == field


def test_queue_rows_are_the_documents_the_declared_fields_describe(api, cases, owner):
    """The list builds its rows by hand for speed; they must equal DRF's generic output for
    cases with every optional part empty and filled."""
    from rest_framework import serializers

    from recovery.api.serializers import CaseSerializer
    from recovery.services import Actor, acknowledge_case, assign_case, resolve_case

    actor = Actor(user=owner)
    assign_case(case=cases["high"], assignee=owner, actor=actor)
    acknowledge_case(case=cases["high"], actor=actor)
    resolve_case(case=cases["old_medium"], note="called", actor=actor)
    rows = {c["id"]: c for c in api.get(CASES, {"status": "open"}).json()["results"]}
    rows |= {c["id"]: c for c in api.get(CASES, {"status": "resolved"}).json()["results"]}
    generic = serializers.ModelSerializer.to_representation
    for case in RecoveryCase.objects.filter(pk__in=[c.pk for c in cases.values()]):
        expected = generic(CaseSerializer(), case)
        assert rows[case.pk] == expected
        assert list(rows[case.pk]) == list(expected)
    assert rows[cases["high"].pk]["assignee"] == owner.email
    assert rows[cases["old_medium"].pk]["resolved_at"] is not None


# --- acting on a prompt from a till at another location (DESIGN.md invariant 4) ---------------


def test_a_key_limited_to_one_location_sees_and_resolves_a_prompt_opened_at_another(
    till, cases, harbour, main_st
):
    """The Main St till key meets the customer whose case was opened at Harbour Rd: the
    sidebar shows it, the till resolves it, and the recovery is logged where it happened."""
    case = cases["high"]
    assert case.location == harbour
    sidebar = till.get("/api/v1/sidebar/", {"customer": case.customer_id}).json()
    (prompt,) = sidebar["prompts"]
    assert prompt["case"] == case.pk and prompt["where"] == "Harbour Rd"

    action = prompt["actions"][0]
    response = till.post(f"{CASES}{case.pk}/resolve/", {"actions": [action["id"]]}, format="json")
    assert response.status_code == 200, response.json()
    data = response.json()
    assert data["id"] == case.pk and data["status"] == "resolved"
    episode = Episode.objects.get(pk=data["resolution_episode"])
    assert episode.kind == "recovery" and episode.location == main_st
    assert episode.summary == action["text"]
    # Browsing stays location-limited: the case is still not in the key's list or detail.
    assert till.get(f"{CASES}{case.pk}/").status_code == 404
    assert case.pk not in {c["id"] for c in till.get(CASES).json()["results"]}
    # A second resolve from a second till is a conflict, not a 404 nor a second episode.
    again = till.post(f"{CASES}{case.pk}/resolve/", {"note": "me too"}, format="json")
    assert again.status_code == 409
    assert Episode.objects.filter(customer=case.customer, kind="recovery").count() == 1


def test_a_location_key_acknowledges_and_defers_a_prompt_from_another_location(till, cases):
    case = cases["high"]
    acknowledged = till.post(f"{CASES}{case.pk}/acknowledge/")
    assert acknowledged.status_code == 200 and acknowledged.json()["acknowledged_at"]
    deferred = till.post(f"{CASES}{case.pk}/not-now/")
    assert deferred.status_code == 200 and deferred.json()["status"] == "open"
    assert [h["type"] for h in deferred.json()["history"]][-2:] == ["acknowledged", "not_now"]


def test_a_location_key_may_not_work_another_locations_case_beyond_the_prompt(till, cases):
    """Assigning and dismissing are the owner's queue, which stays location-limited; a case
    not shown at the till is not the till's to act on."""
    case = cases["high"]
    for action, body in (("dismiss", {"reason": "x"}), ("assign", {"assignee": None})):
        assert till.post(f"{CASES}{case.pk}/{action}/", body, format="json").status_code == 404
    RecoveryCase.objects.filter(pk=case.pk).update(show_at_visit=False)
    for action in ("acknowledge", "not-now", "resolve"):
        assert till.post(f"{CASES}{case.pk}/{action}/", {}, format="json").status_code == 404
    case.refresh_from_db()
    assert case.is_open and case.acknowledged_at is None


def test_another_organizations_till_cannot_act_on_a_prompt(outsider_api, cases):
    case = cases["high"]
    for action in ("acknowledge", "not-now", "resolve"):
        response = outsider_api.post(f"{CASES}{case.pk}/{action}/", {}, format="json")
        assert response.status_code == 404, action
    assert outsider_api.get("/api/v1/sidebar/", {"customer": case.customer_id}).status_code == 404
    case.refresh_from_db()
    assert case.is_open and case.last_acted_at is None
    assert not Episode.objects.filter(customer=case.customer, kind="recovery").exists()


def test_an_empty_resolve_through_the_api_is_still_accepted_and_says_followed_up(api, cases):
    """The till asks what was done; the API stays compatible: a POS or a script that closes a
    case followed up elsewhere (a call logged on its own) sends no body, as it always could."""
    case = cases["old_medium"]
    response = api.post(f"{CASES}{case.pk}/resolve/", {}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "resolved"
    episode = Episode.objects.get(pk=response.json()["resolution_episode"])
    assert episode.summary == "Followed up."


def test_the_schema_says_what_an_action_answers_and_what_an_empty_resolve_does(api):
    schema = api.get("/api/v1/schema/", {"format": "json"}).json()
    resolve = schema["paths"]["/api/v1/cases/{id}/resolve/"]["post"]
    assert "another location" in resolve["description"]
    body = schema["components"]["schemas"]["ResolveInputRequest"]
    assert "Followed up." in body["description"]
