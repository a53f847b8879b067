from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from cxcore.models import Episode
from recovery.models import CaseEvent, RecoveryCase
from recovery.services import create_default_playbooks
from recovery.sweep import sweep_recovery
from tests.factories import CustomerFactory, IdentifierFactory
from tests.recovery.conftest import log

SIDEBAR = "/api/v1/sidebar/"


@pytest.fixture
def dan_with_case(org, main_st):
    """The forgotten-order regular: complaint on a known day at Main St, case open."""
    create_default_playbooks(organization=org)
    dan = CustomerFactory.create(organization=org, name="Daniel Reyes", notes="Prefers Dan")
    IdentifierFactory(customer=dan, kind="phone", value="+447400900555")
    now = timezone.now()
    for days in (30, 20, 10):
        log(org, dan, now - timedelta(days=days), kind="order", location=main_st,
            items=[{"name": "Almond-milk latte", "quantity": 1, "price": "3.60"}])  # fmt: skip
    complaint = log(
        org, dan, now - timedelta(days=9), kind="complaint", location=main_st, experience=-2,
        summary="Forgot my salad and latte",
        touchpoints=[{"code": "order_accuracy", "third_party": False}],
    )  # fmt: skip
    sweep_recovery(now=now)
    return dan, complaint, RecoveryCase.objects.get(customer=dan)


def test_the_sidebar_shows_the_card_the_prompt_and_the_narrative(till, dan_with_case):
    _, complaint, case = dan_with_case
    data = till.get(SIDEBAR, {"phone": "07400 900555"}).json()
    assert data["customer"]["name"] == "Daniel Reyes"
    assert data["customer"]["usual_order"] == "Almond-milk latte"
    assert data["customer"]["visit_count"] == 3 and data["customer"]["notes"] == "Prefers Dan"
    (prompt,) = data["prompts"]
    assert prompt["case"] == case.pk and prompt["severity"] == 3
    local = complaint.occurred_at.astimezone(ZoneInfo("Europe/London"))
    assert prompt["what_happened"].startswith(
        f"Complaint at Main St on {local:%a} {local.day} {local:%b}"
    )
    assert prompt["ago"] == "1\xa0week ago"
    assert [a["text"] for a in prompt["actions"]][1] == "Comp their usual Almond-milk latte"
    assert data["episodes"][0]["id"] == complaint.pk


def test_an_unknown_customer_is_a_normal_answer(till, org, main_st):
    data = till.get(SIDEBAR, {"phone": "07400 111222"})
    assert data.status_code == 200
    assert data.json() == {"customer": None, "prompts": [], "episodes": []}


def test_bad_sidebar_input_names_the_field(till, main_st):
    assert till.get(SIDEBAR).json()["errors"][0]["code"] == "required"
    bad = till.get(SIDEBAR, {"phone": "12"}).json()
    assert bad["errors"][0]["field"] == "phone"


def test_another_organizations_customer_is_404(outsider_api, dan_with_case):
    dan, _, _ = dan_with_case
    assert outsider_api.get(SIDEBAR, {"customer": dan.pk}).status_code == 404
    assert outsider_api.get(SIDEBAR, {"phone": "+44 7400 900555"}).json()["customer"] is None


def test_a_learned_identifier_finds_the_same_narrative(till, org, dan_with_case):
    dan, _, _ = dan_with_case
    till.post(
        "/api/v1/episodes/",
        {"customer": {"phone": "07400 900555", "card": "LOYAL-7"}, "kind": "visit"},
        format="json",
    )
    data = till.get(SIDEBAR, {"card": "LOYAL-7"}).json()
    assert data["customer"]["id"] == dan.pk and len(data["prompts"]) == 1


def test_several_episodes_on_one_day_come_newest_first(till, org, main_st, dan_with_case):
    dan, _, _ = dan_with_case
    morning = timezone.now().replace(hour=8, minute=0) - timedelta(days=1)
    ids = [
        log(org, dan, morning + timedelta(hours=h), kind="order", location=main_st).pk
        for h in (0, 3, 6)
    ]
    data = till.get(SIDEBAR, {"customer": dan.pk}).json()
    assert [e["id"] for e in data["episodes"][:3]] == ids[::-1]


def test_the_sidebar_costs_the_same_queries_for_any_history(
    till, org, main_st, dan_with_case, django_assert_max_num_queries
):
    dan, _, _ = dan_with_case
    till.get(SIDEBAR, {"customer": dan.pk})  # the showing is recorded once; now count
    with django_assert_max_num_queries(12) as short:
        till.get(SIDEBAR, {"customer": dan.pk})
    for day in range(60):
        log(org, dan, timezone.now() - timedelta(days=60 - day, hours=1), kind="visit")
    with django_assert_max_num_queries(len(short.captured_queries)):
        data = till.get(SIDEBAR, {"customer": dan.pk}).json()
    assert len(data["episodes"]) == 20


def test_showings_are_recorded_once_per_visit_not_per_poll(till, dan_with_case):
    _, _, case = dan_with_case
    for _ in range(5):
        till.get(SIDEBAR, {"phone": "07400 900555"})
    (shown,) = CaseEvent.objects.filter(case=case, type="shown")
    assert shown.location is not None and shown.actor_api_key is not None
    assert shown.location.slug == "main-st" and shown.actor_api_key.name == "Main St till"


def test_a_check_in_logs_a_visit_and_answers_with_the_sidebar(till, dan_with_case):
    dan, _, case = dan_with_case
    body = {"customer": {"phone": "07400 900555"}, "external_id": "till-1-0042"}
    first = till.post("/api/v1/visits/", body, format="json")
    again = till.post("/api/v1/visits/", body, format="json")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["prompts"][0]["case"] == case.pk
    assert Episode.objects.filter(customer=dan, kind="visit", source="pos").count() == 1


def test_not_now_keeps_the_case_open_and_says_so_in_the_history(till, dan_with_case):
    _, _, case = dan_with_case
    response = till.post(f"/api/v1/cases/{case.pk}/not-now/")
    assert response.status_code == 200 and response.json()["status"] == "open"
    assert "not_now" in [h["type"] for h in response.json()["history"]]


def test_a_merged_in_identifier_finds_the_merged_narrative(api, till, org, main_st, dan_with_case):
    dan, _, case = dan_with_case
    twin = CustomerFactory.create(organization=org, name="", notes="Loyalty card holder")
    IdentifierFactory(customer=twin, kind="card", value="CARD-99")
    visit = log(org, twin, timezone.now() - timedelta(days=2), kind="visit", location=main_st)
    response = (
        api.post(  # merging is for an organization-wide key (tests/recovery/test_merge_rights.py)
            f"/api/v1/customers/{dan.pk}/merge/", {"duplicate": twin.pk}, format="json"
        )
    )
    assert response.status_code == 200, response.json()
    assert response.json()["visit_count"] == 4
    data = till.get(SIDEBAR, {"card": "CARD-99"}).json()
    assert data["customer"]["id"] == dan.pk
    assert "Loyalty card holder" in data["customer"]["notes"]
    assert data["prompts"][0]["case"] == case.pk
    assert visit.pk in [e["id"] for e in data["episodes"]]


def test_merging_two_open_cases_keeps_one_and_dismisses_the_other(org, main_st, dan_with_case):
    from recovery.services import merge_customers

    dan, _, case = dan_with_case
    twin = CustomerFactory.create(organization=org)
    log(org, twin, timezone.now() - timedelta(days=1), kind="complaint", experience=-1)
    sweep_recovery(now=timezone.now())
    other = RecoveryCase.objects.get(customer=twin)
    merge_customers(into=dan, duplicate=twin)
    other.refresh_from_db()
    assert other.status == "dismissed" and other.customer_id == dan.pk
    assert RecoveryCase.objects.filter(customer=dan, status="open").get() == case


def test_merging_across_organizations_is_404(till, dan_with_case, other_org):
    dan, _, _ = dan_with_case
    stranger = CustomerFactory.create(organization=other_org)
    response = till.post(
        f"/api/v1/customers/{dan.pk}/merge/", {"duplicate": stranger.pk}, format="json"
    )
    assert response.status_code == 404 and response.json()["errors"][0]["field"] == "duplicate"


def test_showings_without_a_location_also_count_once(api, dan_with_case):
    _, _, case = dan_with_case
    for _ in range(3):
        api.get(SIDEBAR, {"phone": "07400 900555"})  # an organization-wide key, no location
    assert CaseEvent.objects.filter(case=case, type="shown").count() == 1


def test_a_customer_with_no_open_case_skips_the_case_queries(till, org, main_st, dan_with_case):
    dan, _, _ = dan_with_case
    till.get(SIDEBAR, {"customer": dan.pk})
    with CaptureQueriesContext(connection) as with_case:
        till.get(SIDEBAR, {"customer": dan.pk})
    newcomer = CustomerFactory.create(organization=org, name="New Face")
    log(org, newcomer, timezone.now() - timedelta(hours=1), kind="visit", location=main_st)
    with CaptureQueriesContext(connection) as without:
        data = till.get(SIDEBAR, {"customer": newcomer.pk}).json()
    assert data["prompts"] == [] and data["customer"]["name"] == "New Face"
    case_tables = [q for q in without.captured_queries if 'FROM "recovery_' in q["sql"]]
    assert case_tables == []
    assert len(without.captured_queries) <= len(with_case.captured_queries) - 3


def test_every_prompt_leads_with_its_headline(till, dan_with_case):
    (prompt,) = till.get(SIDEBAR, {"phone": "07400 900555"}).json()["prompts"]
    assert prompt["headline"] == "Daniel — forgot my salad and latte · 9 days ago"
    assert prompt["second_time"] is False and prompt["actions_taken"] == []


@pytest.fixture
def harbour_till(org, harbour):
    from accounts.services import create_api_key
    from tests.conftest import key_client

    return key_client(create_api_key(organization=org, name="Harbour till", location=harbour)[1])


def test_a_case_opened_at_one_location_is_prompted_at_every_other(harbour_till, dan_with_case):
    """Location limits narrow browsing, never the customer in front of the till."""
    _, _, case = dan_with_case
    assert case.location.slug == "main-st"
    (prompt,) = harbour_till.get(
        SIDEBAR, {"phone": "07400 900555", "location": "harbour-rd"}
    ).json()["prompts"]
    assert prompt["case"] == case.pk and prompt["where"] == "Main St"
    shown = CaseEvent.objects.get(case=case, type="shown")
    assert shown.location is not None and shown.location.slug == "harbour-rd"


def test_a_reopened_case_says_second_time_and_offers_the_new_deviations_actions(
    org, main_st, till, dan_with_case
):
    from recovery.services import resolve_case

    dan, _, case = dan_with_case
    first_actions = list(case.actions.all())
    resolve_case(case=case, action_ids=[first_actions[0].pk], note="Comped the latte")
    later = timezone.now() + timedelta(minutes=5)
    log(org, dan, later, kind="complaint", experience=-1, location=main_st,
        summary="Waited 40 minutes for a flat white",
        touchpoints=[{"code": "wait", "third_party": False}])  # fmt: skip
    assert sweep_recovery(now=later + timedelta(minutes=1)).reopened == 1

    (prompt,) = till.get(SIDEBAR, {"phone": "07400 900555"}).json()["prompts"]
    assert prompt["second_time"] is True
    assert prompt["headline"].startswith("Daniel — waited 40 minutes for a flat white")
    # The new deviation's playbook (a long wait), not the old script; what was done is history.
    assert prompt["actions"][0]["text"].startswith("Apologise to Daniel for the wait")
    assert [a["text"] for a in prompt["actions_taken"]] == [first_actions[0].text]
    assert first_actions[1].pk not in {a["id"] for a in prompt["actions"]}


# --- what the card says happened last -------------------------------------------------------


def test_the_card_says_a_recovery_came_last_until_a_later_experience_overtakes_it():
    from cxcore.models import Customer
    from recovery.sidebar import last_time

    now = timezone.now()
    complaint = Episode(pk=1, kind="complaint", summary="Forgot my latte", experience=-2)
    recovery = Episode(pk=2, kind="recovery", summary="Comped his latte")
    wronged = Customer(
        last_experience=-2, last_experience_at=now - timedelta(days=9),
        last_experience_episode_id=1,
    )  # fmt: skip
    said = last_time(wronged, [complaint], now)
    assert said is not None
    assert (said.follow_up_kind, said.experience, said.text) == ("", -2, "Forgot my latte")
    assert said.ago == "9 days ago"

    put_right = Customer(
        last_experience=-2, last_experience_at=now - timedelta(days=9),
        last_experience_episode_id=1, last_follow_up_at=now - timedelta(minutes=1),
    )  # fmt: skip
    said = last_time(put_right, [recovery, complaint], now)
    assert said is not None
    assert (said.label, said.text, said.ago) == ("put right", "Comped his latte", "just now")

    came_back_happy = Customer(
        last_experience=1, last_experience_at=now, last_follow_up_at=now - timedelta(days=1)
    )
    happy = last_time(came_back_happy, [], now)
    assert happy is not None and happy.experience == 1
    assert last_time(Customer(), [], now) is None


@pytest.mark.parametrize(
    ("item", "line"),
    [
        (
            {"name": "Almond-milk latte", "quantity": 1, "price": "3.60"},
            "Almond-milk latte ×1 £3.60",
        ),
        ({"name": "Flat white", "quantity": 2, "price": "3.40"}, "Flat white ×2 £6.80"),
        ({"name": "Salad", "quantity": 1}, "Salad ×1"),
        ({"name": "Odd", "price": "n/a"}, "Odd ×1"),
        # A payment's spend, nameless (imported history, the Square connector).
        ({"name": "", "quantity": 1, "price": "3.60"}, "Spent £3.60"),
        ({"name": "", "quantity": 1}, "Item ×1"),
    ],
)
def test_order_lines_spell_out_name_quantity_and_price(item, line):
    from recovery.sidebar import order_line

    assert order_line(item, currency="£") == line


# --- the till's scope ---------------------------------------------------------------------


def test_the_till_may_act_on_every_prompt_of_its_organization_and_browse_its_own_cases(
    org, main_st, harbour, dan_with_case, other_org
):
    from accounts.tenancy import Tenant
    from recovery.selectors import cases_for
    from recovery.sidebar import till_cases

    _, _, case = dan_with_case  # opened at Main St
    at_harbour = Tenant(organization=org, location_ids=frozenset({harbour.pk}))
    assert case not in cases_for(at_harbour)
    assert case in till_cases(at_harbour)
    RecoveryCase.objects.filter(pk=case.pk).update(show_at_visit=False)
    assert case not in till_cases(at_harbour)
    at_main_st = Tenant(organization=org, location_ids=frozenset({main_st.pk}))
    assert case in till_cases(at_main_st)  # its own location's cases, shown at visits or not
    assert case not in till_cases(Tenant(organization=other_org))


def test_a_check_in_at_another_location_answers_with_the_prompt(harbour_till, dan_with_case):
    _, _, case = dan_with_case  # opened at Main St
    response = harbour_till.post(
        "/api/v1/visits/", {"customer": {"phone": "07400 900555"}}, format="json"
    )
    assert response.status_code == 201
    (prompt,) = response.json()["prompts"]
    assert prompt["case"] == case.pk and prompt["headline"].startswith("Daniel — ")
    visit = Episode.objects.get(pk=response.json()["episodes"][0]["id"])
    assert visit.location is not None
    assert visit.kind == "visit" and visit.location.slug == "harbour-rd"
