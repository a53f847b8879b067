"""GET /api/v1/partners/, /partners/{id}/incidents/ and /partners/scorecard/: owners,
managers and API keys; staff 403; another organization's partner 404; bad input a 400
naming the parameter; a key limited to a location lists the incidents there."""

from datetime import timedelta

import pytest
from rest_framework.test import APIClient

from partners.services import create_partner
from tests.factories import CustomerFactory
from tests.partners.conftest import T0, bad_valet, open_beside_case


def session(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def incidents(org, main_st, harbour, valet):
    """Three at Main St (oldest first) and one at Harbour Rd."""
    found = []
    for i, location in enumerate([main_st, main_st, main_st, harbour]):
        person = CustomerFactory.create(organization=org, name=f"Guest {i}")
        at = T0 + timedelta(days=i)
        _, (incident,) = open_beside_case(
            bad_valet(org, person, at, location), at + timedelta(hours=3)
        )
        found.append(incident)
    return found


def test_the_partner_list(api, owner, manager, valet, courier):
    for client in (api, session(owner), session(manager)):
        response = client.get("/api/v1/partners/")
        assert response.status_code == 200
        names = [p["name"] for p in response.json()["results"]]
        assert names == ["QuickBite Delivery", "Swift Valet Co"]
    first = api.get("/api/v1/partners/").json()["results"][1]
    assert first["touchpoints"] == ["parking_valet"]
    assert first["contact_phone"] == "+442079460018" and first["is_active"] is True


def test_staff_are_refused_before_any_lookup(staff, valet, incidents):
    client = session(staff)
    for url in ("/api/v1/partners/", f"/api/v1/partners/{valet.pk}/incidents/",
                "/api/v1/partners/999999/incidents/", "/api/v1/partners/scorecard/"):  # fmt: skip
        response = client.get(url)
        assert response.status_code == 403, url
        assert response.json()["error"] == "permission_denied"


def test_incidents_page_newest_first_and_filter_by_status(api, valet, incidents, owner):
    from partners.services import fix_incident

    fix_incident(incident=incidents[0], by=owner)
    response = api.get(f"/api/v1/partners/{valet.pk}/incidents/?page_size=2")
    assert response.status_code == 200
    body = response.json()
    assert [i["id"] for i in body["results"]] == [incidents[3].pk, incidents[2].pk]
    assert body["results"][0]["location"] == "harbour-rd"
    assert body["results"][0]["recovery_case"] is not None
    following = api.get(body["next"]).json()
    assert [i["id"] for i in following["results"]] == [incidents[1].pk, incidents[0].pk]
    assert following["next"] is None
    fixed = api.get(f"/api/v1/partners/{valet.pk}/incidents/?status=fixed").json()
    assert [i["id"] for i in fixed["results"]] == [incidents[0].pk]
    assert fixed["results"][0]["status"] == "fixed"


def test_a_key_limited_to_main_st_lists_the_incidents_there(till, valet, incidents):
    body = till.get(f"/api/v1/partners/{valet.pk}/incidents/").json()
    assert [i["id"] for i in body["results"]] == [i.pk for i in incidents[2::-1]]


@pytest.mark.parametrize(
    ("query", "field"),
    [("status=lost", "status"), ("page_size=0", "page_size"), ("cursor=nope", "cursor")],
)
def test_bad_incident_parameters_are_400s_naming_them(api, valet, query, field):
    response = api.get(f"/api/v1/partners/{valet.pk}/incidents/?{query}")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == field


def test_another_organizations_partner_is_404(outsider_api, api, valet, other_org):
    theirs = create_partner(
        organization=other_org, fields={"name": "Theirs", "touchpoints": ["wait"]}
    )
    assert api.get(f"/api/v1/partners/{theirs.pk}/incidents/").status_code == 404
    response = outsider_api.get(f"/api/v1/partners/{valet.pk}/incidents/")
    assert response.status_code == 404 and response.json()["error"] == "not_found"
    names = [p["name"] for p in outsider_api.get("/api/v1/partners/").json()["results"]]
    assert names == ["Theirs"]


def test_the_scorecard_over_the_api(api, valet, incidents):
    response = api.get("/api/v1/partners/scorecard/?month=2026-10")
    assert response.status_code == 200
    body = response.json()
    assert body["month"] == "2026-10" and body["outcome_window_days"] == 30
    (row,) = [p for p in body["partners"] if p["name"] == "Swift Valet Co"]
    assert row["failures"] == 4 and row["involved_visits"] == 0
    assert row["failures_per_100_visits"] is None
    assert row["affected_customers"] == 4


@pytest.mark.parametrize("month", ["2026-13", "26-10", "2026-1", "x" * 8])
def test_a_bad_scorecard_month_is_a_400_naming_it(api, month):
    response = api.get(f"/api/v1/partners/scorecard/?month={month}")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "month"


def test_the_incident_list_keeps_to_a_constant_number_of_queries(
    api, valet, incidents, django_assert_max_num_queries
):
    with django_assert_max_num_queries(8):
        assert api.get(f"/api/v1/partners/{valet.pk}/incidents/").status_code == 200
