"""The partner pages: the list, the form (owners), a partner's incidents and answering them,
the scorecard and its CSV. Bad input is a 4xx naming the field; staff get the 403 page."""

from datetime import timedelta

import pytest
from django.test import Client

from partners.models import Partner, PartnerIncident
from tests.factories import CustomerFactory
from tests.partners.conftest import T0, bad_valet, open_beside_case


def page_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def incident(org, main_st, valet):
    margaret = CustomerFactory.create(organization=org, name="Margaret Lyon")
    _, (opened,) = open_beside_case(bad_valet(org, margaret, T0, main_st), T0 + timedelta(hours=3))
    return opened


def test_the_nav_and_the_list_show_partners_to_owners_and_managers(owner, manager, incident):
    for user in (owner, manager):
        body = page_client(user).get("/partners/").content.decode()
        assert 'href="/partners/"' in body and "Swift Valet Co" in body
        assert "1 open incident" in body and "Parking / valet" in body
    assert "Add a partner" in page_client(owner).get("/partners/").content.decode()
    assert "Add a partner" not in page_client(manager).get("/partners/").content.decode()


def test_staff_get_the_403_page_and_no_nav_link(staff, incident):
    client = page_client(staff)
    for url in ("/partners/", f"/partners/{incident.partner_id}/", "/partners/scorecard/",
                "/partners/scorecard.csv", "/partners/new/"):  # fmt: skip
        response = client.get(url)
        assert response.status_code == 403, url
        assert "This page is for owners" in response.content.decode()
    assert 'href="/partners/"' not in client.get("/pos/").content.decode()


def test_an_owner_adds_a_partner(owner, org):
    response = page_client(owner).post(
        "/partners/new/",
        {"name": "QuickBite Delivery", "touchpoints": ["delivery"], "is_active": "on",
         "contact_email": "Ops@QuickBite.example"},
    )  # fmt: skip
    partner = Partner.objects.get(organization=org)
    assert response.status_code == 302 and response["Location"] == f"/partners/{partner.pk}/"
    assert partner.touchpoints == ["delivery"] and partner.contact_email == "ops@quickbite.example"


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"name": "Other valet", "touchpoints": ["parking_valet"], "is_active": "on"},
         "touchpoints", "Parking / valet is run by Swift Valet Co already"),
        ({"name": "X", "touchpoints": ["teleport"]}, "touchpoints", "not one of the available"),
        ({"name": "X"}, "touchpoints", "Tick the touchpoints this partner runs."),
        ({"name": "", "touchpoints": ["wait"]}, "name", "This field is required."),
        ({"name": "X", "touchpoints": ["wait"], "contact_phone": "12"}, "contact_phone",
         "not a valid phone number"),
        ({"name": "swift valet co", "touchpoints": ["wait"]}, "name", "a partner of that name"),
    ],
)  # fmt: skip
def test_bad_partner_input_is_a_400_on_its_field(owner, valet, body, field, message):
    response = page_client(owner).post("/partners/new/", body)
    assert response.status_code == 400
    content = response.content.decode()
    assert f'id="id_{field}_error"' in content and message in content
    assert Partner.objects.count() == 1


def test_an_owner_edits_a_partner_and_managers_may_not(owner, manager, valet):
    url = f"/partners/{valet.pk}/edit/"
    assert page_client(manager).get(url).status_code == 403
    assert 'value="Swift Valet Co"' in page_client(owner).get(url).content.decode()
    response = page_client(owner).post(
        url, {"name": "Swift Valet", "touchpoints": ["parking_valet", "arrival"]}
    )
    assert response.status_code == 302
    valet.refresh_from_db()
    assert valet.name == "Swift Valet" and valet.touchpoints == ["arrival", "parking_valet"]
    assert not valet.is_active  # the box was not ticked


def test_the_partner_page_lists_incidents_and_records_the_answer(manager, incident):
    client = page_client(manager)
    url = f"/partners/{incident.partner_id}/"
    body = client.get(url).content.decode()
    assert "Margaret Lyon" in body and "Valet kept me waiting 45 min" in body
    assert f"recovery case #{incident.recovery_case_id}" in body

    action = f"/partners/incidents/{incident.pk}/"
    response = client.post(action, {"action": "answer", "answer": "Driver off sick"})
    assert response.status_code == 302
    incident.refresh_from_db()
    assert incident.status == "answered" and incident.answered_by == manager
    assert "Driver off sick" in client.get(url).content.decode()

    assert client.post(action, {"action": "fixed", "answer": ""}).status_code == 302
    incident.refresh_from_db()
    assert incident.status == "fixed" and incident.closed_at is not None
    response = client.post(action, {"action": "disputed", "answer": "Not us"})
    assert response.status_code == 409
    assert "The incident is fixed already." in response.content.decode()


def test_an_answer_without_words_is_a_400_on_the_field(manager, incident):
    client = page_client(manager)
    response = client.post(f"/partners/incidents/{incident.pk}/", {"action": "answer"})
    assert response.status_code == 400
    content = response.content.decode()
    assert f'id="answer-{incident.pk}-error"' in content
    assert "Say what the partner answered." in content
    response = client.post(f"/partners/incidents/{incident.pk}/", {"action": "explode"})
    assert response.status_code == 400
    incident.refresh_from_db()
    assert incident.status == "open"


def test_a_manager_limited_to_another_location_does_not_see_the_incident(
    org, manager, harbour, valet
):
    """The manager works Main St; an incident at Harbour Rd is not on their page."""
    person = CustomerFactory.create(organization=org, name="Hana Harbour")
    _, (elsewhere,) = open_beside_case(bad_valet(org, person, T0, harbour), T0 + timedelta(hours=3))
    client = page_client(manager)
    assert "Hana Harbour" not in client.get(f"/partners/{valet.pk}/").content.decode()
    response = client.post(f"/partners/incidents/{elsewhere.pk}/", {"action": "fixed"})
    assert response.status_code == 404
    assert PartnerIncident.objects.get(pk=elsewhere.pk).status == "open"


def test_another_organizations_partner_and_incident_are_404(outsider, incident):
    client = page_client(outsider)
    assert client.get(f"/partners/{incident.partner_id}/").status_code == 404
    assert client.get(f"/partners/{incident.partner_id}/edit/").status_code == 404
    response = client.post(f"/partners/incidents/{incident.pk}/", {"action": "fixed"})
    assert response.status_code == 404
    assert "Swift Valet" not in client.get("/partners/").content.decode()


def test_the_scorecard_page_and_csv(owner, incident):
    client = page_client(owner)
    body = client.get("/partners/scorecard/?month=2026-10").content.decode()
    assert "October 2026" in body and "Swift Valet Co" in body
    response = client.get("/partners/scorecard.csv?month=2026-10")
    assert response.status_code == 200 and response["Content-Type"] == "text/csv"
    lines = response.content.decode().splitlines()
    assert lines[0].startswith("partner,touchpoints,month,involved_visits,failures")
    assert lines[1].startswith("Swift Valet Co,parking_valet,2026-10,0,1,,0,,1,")


@pytest.mark.parametrize("month", ["2026-13", "Nov", "0001-01", "2026-1"])
def test_a_bad_month_is_a_400_naming_it(owner, month):
    client = page_client(owner)
    response = client.get(f"/partners/scorecard/?month={month}")
    assert response.status_code == 400
    assert "Month: A month as YYYY-MM" in response.content.decode()
    response = client.get(f"/partners/scorecard.csv?month={month}")
    assert response.status_code == 400 and response.content.startswith(b"month: ")


def test_csv_cells_a_spreadsheet_would_run_are_made_safe(owner, org):
    Partner.objects.create(organization=org, name="=HYPERLINK(1)", touchpoints=["wait"],
                           created_at=T0)  # fmt: skip
    lines = page_client(owner).get("/partners/scorecard.csv").content.decode().splitlines()
    assert lines[1].startswith("'=HYPERLINK(1),wait,")


def test_the_partner_page_reads_in_a_constant_number_of_queries(
    org, manager, valet, incident, django_assert_max_num_queries
):
    client = page_client(manager)
    client.get(f"/partners/{valet.pk}/")  # the session and the tenant, warm
    for i in range(5):
        person = CustomerFactory.create(organization=org, name=f"Guest {i}")
        open_beside_case(
            bad_valet(org, person, T0 + timedelta(days=i)), T0 + timedelta(days=i, hours=3)
        )
    with django_assert_max_num_queries(12):
        response = client.get(f"/partners/{valet.pk}/")
    assert response.content.decode().count('class="card" id="incident-') == 6


def test_insights_show_the_last_full_months_scorecard(owner, manager, incident):
    for user in (owner, manager):
        body = page_client(user).get("/insights/").content.decode()
        table = body[body.index('id="insights-scorecard"') :]
        assert "Swift Valet Co" in table[: table.index("</table>")]
        assert "Partner scorecard, " in body and "/partners/scorecard.csv?month=" in body


def test_insights_show_no_scorecard_without_partners(owner, org):
    body = page_client(owner).get("/insights/").content.decode()
    assert 'id="insights-scorecard"' not in body
