"""The web pages of the narrative, through Django's test client: login, search, customer page."""

import base64
import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import Role
from accounts.services import add_member, create_api_key
from cxcore.keyset import encode_cursor
from cxcore.models import Customer
from cxcore.services import EpisodeInput, record_episode
from tests.factories import LocationFactory, UserFactory

PASSWORD = "pw-for-tests-1"
LOGIN_URL = "/accounts/login/"


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def record(org, **fields):
    """One episode through the service, so the narrative state is kept."""
    return record_episode(organization=org, data=EpisodeInput(**fields)).episode


@pytest.fixture
def daniel(org, main_st):
    episode = record(
        org,
        kind="visit",
        identifiers={"phone": "+447400123456", "email": "Dan.Reyes@Example.com"},
        name="Daniel Reyes",
        location=main_st,
        occurred_at=datetime(2026, 1, 10, 12, 0, tzinfo=UTC),
    )
    return episode.customer


@pytest.fixture
def stranger(other_org, other_location):
    """A customer of another organization, with a name that matches searches for Daniel."""
    return record(
        other_org,
        kind="visit",
        identifiers={"phone": "+14155552671"},
        name="Daniel Rival",
        location=other_location,
        occurred_at=datetime(2026, 1, 10, 12, 0, tzinfo=UTC),
    ).customer


def narrative(body: str) -> str:
    """The narrative part of a customer page (the correction control above also names the
    episodes)."""
    return body.split("<h2>Narrative</h2>", 1)[-1]


def customer_link(customer) -> str:
    return f'href="{reverse("customer-page", args=[customer.pk])}"'


# --- login and logout -----------------------------------------------------------------------


@pytest.mark.django_db
def test_login_page_renders_an_email_and_password_form():
    response = Client().get(LOGIN_URL)
    assert response.status_code == 200
    body = response.content.decode()
    assert "<h1>Log in</h1>" in body
    assert 'type="email"' in body
    assert 'name="password"' in body
    assert "csrfmiddlewaretoken" in body


def test_logging_in_with_email_and_password_opens_the_customer_search(owner):
    client = Client(enforce_csrf_checks=True)
    page = client.get(LOGIN_URL)
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode())
    assert match is not None
    token = match[1]
    response = client.post(
        LOGIN_URL,
        {"username": owner.email, "password": PASSWORD, "csrfmiddlewaretoken": token},
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("customer-search")
    page = client.get(reverse("customer-search"))
    assert page.status_code == 200
    assert "Corner Cup" in page.content.decode()  # the tenant's name in the top bar


def test_the_login_email_is_case_insensitive(owner):
    """Emails are stored lower-case; a tablet keyboard that capitalises the first letter
    (Person0@example.com) must not lock staff out."""
    client = Client()
    response = client.post(LOGIN_URL, {"username": owner.email.capitalize(), "password": PASSWORD})
    assert response.status_code == 302
    assert client.get(reverse("customer-search")).status_code == 200


def test_a_wrong_password_is_refused_and_does_not_log_in(owner):
    client = Client()
    response = client.post(LOGIN_URL, {"username": owner.email, "password": "wrong-password"})
    assert response.status_code == 200
    assert "errorlist" in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert client.get(reverse("customer-search")).status_code == 302


def test_logout_is_a_post_and_ends_the_session(owner):
    client = Client()
    assert client.login(username=owner.email, password=PASSWORD)
    assert client.get(reverse("customer-search")).status_code == 200
    assert client.get(reverse("logout")).status_code == 405  # no logout by a stray link
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert response["Location"] == reverse("login")
    after = client.get(reverse("customer-search"))
    assert after.status_code == 302
    assert after["Location"].startswith(LOGIN_URL)


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/customers/", "/customers/1/", "/accounts/api-keys/", "/"])
def test_pages_require_login(path):
    response = Client().get(path, follow=True)
    final_url, status = response.redirect_chain[-1]
    assert status == 302
    assert final_url.startswith(LOGIN_URL)
    assert response.status_code == 200


@pytest.mark.django_db
def test_the_login_redirect_remembers_the_page():
    response = Client().get("/customers/")
    assert response.status_code == 302
    assert response["Location"] == f"{LOGIN_URL}?next=/customers/"


# --- search ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    ["07400 123456", "07400123456", "+44 7400 123456", "+447400123456", "0044 7400-123456"],
)
def test_search_finds_a_customer_by_phone_in_any_format(owner, daniel, query):
    response = logged_in(owner).get(reverse("customer-search"), {"q": query})
    assert response.status_code == 200
    body = response.content.decode()
    assert customer_link(daniel) in body
    assert "Daniel Reyes" in body
    assert "+44 7400 123456" in body


def test_search_by_an_unknown_phone_finds_nobody(owner, daniel):
    response = logged_in(owner).get(reverse("customer-search"), {"q": "07400 999999"})
    assert response.status_code == 200
    body = response.content.decode()
    assert customer_link(daniel) not in body
    assert "No customer matches" in body


@pytest.mark.parametrize("query", ["dan.reyes@example.com", "DAN.Reyes@EXAMPLE.com"])
def test_search_finds_a_customer_by_email_ignoring_case(owner, daniel, query):
    body = logged_in(owner).get(reverse("customer-search"), {"q": query}).content.decode()
    assert customer_link(daniel) in body


@pytest.mark.parametrize("query", ["Reyes", "reye", "DANIEL", "niel re"])
def test_search_finds_a_customer_by_a_name_fragment(owner, daniel, query):
    body = logged_in(owner).get(reverse("customer-search"), {"q": query}).content.decode()
    assert customer_link(daniel) in body


def test_search_never_shows_another_organizations_customers(owner, daniel, stranger):
    client = logged_in(owner)
    by_name = client.get(reverse("customer-search"), {"q": "Daniel"}).content.decode()
    assert customer_link(daniel) in by_name
    assert customer_link(stranger) not in by_name
    assert "Daniel Rival" not in by_name
    by_phone = client.get(reverse("customer-search"), {"q": "+1 415 555 2671"}).content.decode()
    assert customer_link(stranger) not in by_phone


def test_search_without_a_query_lists_recently_seen_customers(owner, daniel, stranger):
    body = logged_in(owner).get(reverse("customer-search")).content.decode()
    assert "Recently seen" in body
    assert customer_link(daniel) in body
    assert customer_link(stranger) not in body


def test_search_page_is_a_full_page_with_the_search_form(owner, daniel):
    body = logged_in(owner).get(reverse("customer-search"), {"q": "Reyes"}).content.decode()
    assert body.lstrip().startswith("<!doctype html>")
    assert 'id="results"' in body
    assert 'name="q"' in body


def test_an_htmx_search_returns_only_the_results_fragment(owner, daniel):
    response = logged_in(owner).get(
        reverse("customer-search"), {"q": "07400 123456"}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert customer_link(daniel) in body
    assert '<ul class="results">' in body
    for page_chrome in ("<html", "<head", "<body", 'class="topbar"', 'name="q"', 'id="results"'):
        assert page_chrome not in body


def test_search_with_odd_input_is_not_an_error(owner, daniel):
    client = logged_in(owner)
    for query in ["@", "+", "1234567", "x" * 500, "a\x00b", "'; drop table x; --"]:
        assert client.get(reverse("customer-search"), {"q": query}).status_code == 200


# --- the customer page ----------------------------------------------------------------------


@pytest.fixture
def new_york(org):
    return LocationFactory(
        organization=org, name="Fifth Avenue", slug="fifth-ave", time_zone="America/New_York"
    )


def test_the_customer_page_shows_the_narrative_newest_first(owner, org, daniel, main_st):
    record(
        org,
        kind="complaint",
        customer_id=daniel.pk,
        location=main_st,
        occurred_at=datetime(2026, 1, 11, 13, 0, tzinfo=UTC),
        summary="The cashier forgot to ring in my salad.",
        touchpoints=[{"code": "order_accuracy", "third_party": False}],
        experience=-2,
    )
    record(
        org,
        kind="compliment",
        customer_id=daniel.pk,
        location=main_st,
        occurred_at=datetime(2026, 1, 12, 9, 0, tzinfo=UTC),
        summary="Thanks for the free latte, all forgiven.",
        experience=2,
    )
    response = logged_in(owner).get(reverse("customer-page", args=[daniel.pk]))
    assert response.status_code == 200
    body = response.content.decode()
    assert "<h1>Daniel Reyes</h1>" in body
    assert "+44 7400 123456" in body and "dan.reyes@example.com" in body
    compliment = body.index("Thanks for the free latte")
    complaint = body.index("The cashier forgot")
    first_visit = body.index("kind-visit")
    assert compliment < complaint < first_visit
    assert "+2 delighted" in body
    assert "−2 very negative" in body
    assert "Order accuracy" in body
    assert "Main St" in body


def test_the_customer_page_marks_third_party_touchpoints(owner, org, daniel, main_st):
    record(
        org,
        kind="incident",
        customer_id=daniel.pk,
        location=main_st,
        occurred_at=datetime(2026, 1, 11, 21, 15, tzinfo=UTC),
        summary="Valet took 45 minutes to bring the car round.",
        touchpoints=[
            {"code": "parking_valet", "third_party": True},
            {"code": "staff", "third_party": False},
        ],
        experience=-1,
    )
    body = logged_in(owner).get(reverse("customer-page", args=[daniel.pk])).content.decode()
    assert '<span class="chip third-party">Parking / valet (partner)</span>' in body
    assert '<span class="chip">Staff</span>' in body
    assert "Staff (partner)" not in body
    assert "−1 negative" in body


def test_an_inferred_experience_is_marked_as_inferred(owner, org, daniel):
    episode = record(
        org,
        kind="feedback",
        customer_id=daniel.pk,
        occurred_at=datetime(2026, 1, 11, 13, 0, tzinfo=UTC),
        summary="Absolutely amazing brunch, best in town!",
    )
    assert episode.experience_source == "inferred"
    body = logged_in(owner).get(reverse("customer-page", args=[daniel.pk])).content.decode()
    assert 'title="Inferred from the text">inferred<' in body


def test_times_are_shown_in_the_locations_time_zone(owner, org, daniel, new_york):
    record(
        org,
        kind="order",
        customer_id=daniel.pk,
        location=new_york,
        occurred_at=datetime(2026, 1, 15, 17, 30, tzinfo=UTC),
        summary="Lunch on Fifth.",
    )
    body = narrative(
        logged_in(owner).get(reverse("customer-page", args=[daniel.pk])).content.decode()
    )
    assert "Fifth Avenue" in body
    item = body[max(0, body.index("Lunch on Fifth.") - 600) : body.index("Lunch on Fifth.")]
    assert "Thu 15 Jan 2026, 12:30" in item  # 17:30 UTC is 12:30 in New York (EST)
    assert 'datetime="2026-01-15T17:30:00+00:00"' in item  # the machine-readable instant
    shown = item.split("<time", 1)[1].split("</time>")[0].split(">", 1)[1]
    assert "17:30" not in shown


def test_times_without_a_location_are_shown_in_the_organizations_time_zone(owner, org, daniel):
    org.time_zone = "Asia/Tokyo"
    org.save(update_fields=["time_zone"])
    record(
        org,
        kind="note",
        customer_id=daniel.pk,
        occurred_at=datetime(2026, 1, 15, 17, 30, tzinfo=UTC),
        summary="Phoned about a lost umbrella.",
    )
    body = narrative(
        logged_in(owner).get(reverse("customer-page", args=[daniel.pk])).content.decode()
    )
    item = body[max(0, body.index("Phoned about a lost umbrella.") - 600) :]
    assert "Fri 16 Jan 2026, 02:30" in item  # 17:30 UTC is 02:30 the next day in Tokyo


def test_the_same_instant_shows_in_each_locations_own_time_zone(owner, org, daniel, new_york):
    london = LocationFactory(organization=org, name="Soho", slug="soho", time_zone="Europe/London")
    summer = datetime(2026, 7, 1, 17, 30, tzinfo=UTC)
    record(org, kind="visit", customer_id=daniel.pk, location=new_york, occurred_at=summer,
           summary="NY visit.")  # fmt: skip
    record(org, kind="visit", customer_id=daniel.pk, location=london,
           occurred_at=summer + timedelta(seconds=1), summary="London visit.")  # fmt: skip
    body = narrative(
        logged_in(owner).get(reverse("customer-page", args=[daniel.pk])).content.decode()
    )
    ny = body[: body.index("NY visit.")].rsplit("<time", 1)[1]
    ldn = body[: body.index("London visit.")].rsplit("<time", 1)[1]
    assert "Wed 1 Jul 2026, 13:30" in ny  # EDT, UTC-4
    assert "Wed 1 Jul 2026, 18:30" in ldn  # BST, UTC+1


def test_the_customer_page_shows_who_logged_each_episode(owner, org, daniel):
    api_key, _ = create_api_key(organization=org, name="Till 3")
    record_episode(
        organization=org,
        data=EpisodeInput(kind="order", customer_id=daniel.pk, summary="From the till."),
        author_api_key=api_key,
    )
    record_episode(
        organization=org,
        data=EpisodeInput(kind="note", customer_id=daniel.pk, summary="From the owner."),
        author_user=owner,
    )
    body = logged_in(owner).get(reverse("customer-page", args=[daniel.pk])).content.decode()
    assert "by Till 3" in body
    assert f"by {owner.email}" in body


def _many_episodes(org, customer, locations, count):
    start = datetime(2025, 6, 1, 8, 0, tzinfo=UTC)
    for n in range(count):
        record(
            org,
            kind=["visit", "order", "feedback"][n % 3],
            customer_id=customer.pk,
            location=locations[n % len(locations)],
            occurred_at=start + timedelta(days=n),
            summary=f"Episode number {n:03d}.",
            experience=[None, 1, -1, 2, 0][n % 5],
            touchpoints=[{"code": "wait", "third_party": n % 2 == 0}],
            items=[{"name": "Flat white", "quantity": 1}] if n % 3 == 1 else [],
        )


def _summaries(body: str) -> list[int]:
    return [int(n) for n in re.findall(r"Episode number (\d{3})\.", narrative(body))]


def _older_link(body: str) -> str | None:
    match = re.search(r'<a href="\?before=([^"]+)">Older episodes', body)
    return match[1] if match else None


def test_older_episodes_page_with_the_before_cursor(owner, org, main_st, harbour):
    customer = Customer.objects.create(organization=org, name="Regular Rita")
    _many_episodes(org, customer, [main_st, harbour], 60)
    client = logged_in(owner)
    url = reverse("customer-page", args=[customer.pk])
    first = client.get(url).content.decode()
    assert _summaries(first) == list(range(59, 9, -1))  # the newest 50, newest first
    cursor = _older_link(first)
    assert cursor
    second = client.get(url, {"before": cursor})
    assert second.status_code == 200
    body = second.content.decode()
    assert _summaries(body) == list(range(9, -1, -1))  # the remaining 10, no overlap, no gap
    assert _older_link(body) is None


def test_the_older_link_is_absent_when_everything_fits(owner, daniel):
    body = logged_in(owner).get(reverse("customer-page", args=[daniel.pk])).content.decode()
    assert "Older episodes" not in body


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "!!!",
        "é",
        "%00",
        "A",
        _b64(b"not json"),
        _b64(b"[]"),
        _b64(b'{"a": 1}'),
        _b64(json.dumps(["2026-01-01T00:00:00", 5]).encode()),  # naive
        _b64(json.dumps(["2026-01-01T00:00:00+00:00", "5"]).encode()),
        _b64(json.dumps(["2026-01-01T00:00:00+00:00", 0]).encode()),
        _b64(json.dumps(["2026-01-01T00:00:00+00:00", 2**70]).encode()),
        _b64(json.dumps([12345, 5]).encode()),
    ],
)
def test_a_garbage_cursor_is_a_404_not_a_500(owner, daniel, cursor):
    client = logged_in(owner)
    client.raise_request_exception = False
    response = client.get(reverse("customer-page", args=[daniel.pk]), {"before": cursor})
    assert response.status_code == 404


@pytest.mark.parametrize(
    "when", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "1970-01-01T00:00:00Z"]
)
def test_a_well_formed_cursor_at_the_edge_of_time_is_not_a_500(owner, daniel, when):
    client = logged_in(owner)
    client.raise_request_exception = False
    cursor = _b64(json.dumps([when, 5]).encode())
    response = client.get(reverse("customer-page", args=[daniel.pk]), {"before": cursor})
    assert response.status_code in (200, 404)


def test_a_cursor_from_the_api_encoding_pages_from_that_point(owner, org, daniel):
    later = record(
        org, kind="note", customer_id=daniel.pk, summary="Later note.",
        occurred_at=datetime(2026, 2, 1, tzinfo=UTC),
    )  # fmt: skip
    cursor = encode_cursor(later.occurred_at, later.pk)
    body = (
        logged_in(owner)
        .get(reverse("customer-page", args=[daniel.pk]), {"before": cursor})
        .content.decode()
    )
    assert "Later note." not in body
    assert "kind-visit" in body


def test_another_organizations_customer_page_is_a_404(owner, outsider, daniel, stranger):
    assert logged_in(owner).get(reverse("customer-page", args=[stranger.pk])).status_code == 404
    response = logged_in(outsider).get(reverse("customer-page", args=[daniel.pk]))
    assert response.status_code == 404
    assert "Daniel" not in response.content.decode()
    assert logged_in(outsider).get(reverse("customer-page", args=[stranger.pk])).status_code == 200


def test_a_missing_customer_is_a_404(owner):
    assert logged_in(owner).get(reverse("customer-page", args=[987654321])).status_code == 404


def test_a_user_without_a_membership_gets_404_everywhere(daniel):
    loner = UserFactory()
    client = logged_in(loner)
    assert client.get(reverse("customer-search")).status_code == 404
    assert client.get(reverse("customer-search"), {"q": "Daniel"}).status_code == 404
    response = client.get(reverse("customer-page", args=[daniel.pk]))
    assert response.status_code == 404
    assert "Daniel" not in response.content.decode()


def test_staff_limited_to_a_location_still_read_the_whole_narrative(staff, org, daniel, harbour):
    record(org, kind="visit", customer_id=daniel.pk, location=harbour, summary="At the harbour.")
    body = logged_in(staff).get(reverse("customer-page", args=[daniel.pk])).content.decode()
    assert "At the harbour." in body  # one narrative every location and shift can read


def test_a_member_of_two_organizations_sees_only_the_current_one(owner, other_org, stranger):
    add_member(organization=other_org, user=owner, role=Role.STAFF)
    client = logged_in(owner)
    # The first membership (Corner Cup) is the tenant: the rival's customer is not there.
    assert client.get(reverse("customer-page", args=[stranger.pk])).status_code == 404


def test_the_customer_page_has_a_fixed_query_budget(
    owner, org, main_st, harbour, django_assert_max_num_queries
):
    customer = record(
        org,
        kind="visit",
        identifiers={"phone": "07400 555001", "email": "bea@example.com", "card": "C-1"},
        name="Busy Bea",
        occurred_at=datetime(2025, 5, 1, tzinfo=UTC),
    ).customer
    _many_episodes(org, customer, [main_st, harbour, None], 60)
    api_key, _ = create_api_key(organization=org, name="Till 9")
    record_episode(
        organization=org,
        data=EpisodeInput(kind="order", customer_id=customer.pk, summary="Via key."),
        author_api_key=api_key,
    )
    record_episode(
        organization=org,
        data=EpisodeInput(kind="note", customer_id=customer.pk, summary="Via owner."),
        author_user=owner,
    )
    client = logged_in(owner)
    url = reverse("customer-page", args=[customer.pk])
    with django_assert_max_num_queries(12):
        response = client.get(url)
    assert response.status_code == 200
    assert len(re.findall(r'<li class="episode', response.content.decode())) == 50
    cursor = _older_link(response.content.decode())
    assert cursor is not None
    with django_assert_max_num_queries(12):
        older = client.get(url, {"before": cursor})
    assert len(re.findall(r'<li class="episode', older.content.decode())) == 13


def correct(client, episode, **fields):
    """Post the customer page's one correction control for `episode`."""
    url = reverse("customer-experience", args=[episode.customer_id])
    return client.post(url, {"episode": episode.pk, **fields}, HTTP_HX_REQUEST="true")


def correct_plainly(client, episode, **fields):
    url = reverse("customer-experience", args=[episode.customer_id])
    return client.post(url, {"episode": episode.pk, **fields})


def test_staff_correct_an_experience_in_place_and_it_is_recorded(staff, org, daniel):
    episode = record(org, kind="feedback", customer_id=daniel.pk, summary="Terrible, awful")
    response = correct(logged_in(staff), episode, experience="1", reason="He was joking")
    assert response.status_code == 200
    body = response.content.decode()
    # the episode is swapped in place, out of band (the control itself stays as it is)
    assert f'<li class="episode kind-feedback" id="episode-{episode.pk}" hx-swap-oob="true">' in (
        body
    )
    assert "+1 positive" in body and "corrected" in body
    # the card's last experience is updated in the same response, out of band
    assert '<dd id="last-experience" hx-swap-oob="true">' in body
    correction = episode.corrections.get()
    assert (correction.previous_source, correction.experience) == ("inferred", 1)
    assert correction.corrected_by == staff
    daniel.refresh_from_db()
    assert daniel.last_experience == 1


def test_an_experience_can_be_cleared_and_a_plain_post_redirects(owner, org, daniel):
    episode = record(org, kind="feedback", customer_id=daniel.pk, experience=-1)
    response = correct_plainly(logged_in(owner), episode, experience="")
    assert response.status_code == 302
    episode.refresh_from_db()
    assert episode.experience is None


def test_a_bad_experience_is_refused_and_changes_nothing(owner, org, daniel):
    episode = record(org, kind="feedback", customer_id=daniel.pk, experience=-1)
    response = correct(logged_in(owner), episode, experience="7")
    assert response.status_code == 400
    episode.refresh_from_db()
    assert episode.experience == -1 and not episode.corrections.exists()


def test_another_organizations_episode_cannot_be_corrected(outsider, org, daniel):
    episode = record(org, kind="feedback", customer_id=daniel.pk, experience=-1)
    response = correct(logged_in(outsider), episode, experience="2")
    assert response.status_code == 404
    episode.refresh_from_db()
    assert episode.experience == -1


# --- the customer page's tools: cases, notes, a call, one correction control ------------------


@pytest.fixture
def daniel_with_cases(org, main_st, harbour, daniel):
    """Daniel with a dismissed case at Harbour Rd and an open one at Main St."""
    from recovery.models import RecoveryCase
    from recovery.services import create_default_playbooks, dismiss_case
    from recovery.sweep import sweep_recovery

    create_default_playbooks(organization=org)
    now = datetime.now(UTC)
    record(org, kind="complaint", customer_id=daniel.pk, experience=-1, location=harbour,
           occurred_at=now - timedelta(days=30), summary="Valet lost the keys")  # fmt: skip
    sweep_recovery(now=now - timedelta(days=29))
    dismiss_case(case=RecoveryCase.objects.get(customer=daniel), reason="Spoke at the counter")
    record(org, kind="complaint", customer_id=daniel.pk, experience=-2, location=main_st,
           occurred_at=now - timedelta(days=2), summary="Cold latte")  # fmt: skip
    sweep_recovery(now=now - timedelta(days=1))
    return {c.status: c for c in RecoveryCase.objects.filter(customer=daniel)}


def cases_section(body: str) -> str:
    return body.split("<h2>Cases</h2>", 1)[1].split("<h2>", 1)[0]


def test_the_customer_page_lists_the_customers_cases(owner, daniel, daniel_with_cases):
    body = logged_in(owner).get(reverse("customer-page", args=[daniel.pk])).content.decode()
    cases = cases_section(body)
    for case in daniel_with_cases.values():
        assert f'href="{reverse("case-page", args=[case.pk])}"' in cases
    assert "Open" in cases and "Dismissed" in cases and "outcome not measured yet" in cases
    assert cases.index("at Main St") < cases.index("at Harbour Rd")  # newest first


def test_staff_see_the_cases_but_not_links_to_pages_they_may_not_open(
    staff, manager, daniel, daniel_with_cases
):
    harbour_case = daniel_with_cases["dismissed"]
    main_case = daniel_with_cases["open"]
    staff_view = cases_section(
        logged_in(staff).get(reverse("customer-page", args=[daniel.pk])).content.decode()
    )
    assert f"case #{harbour_case.pk}" in staff_view and f"case #{main_case.pk}" in staff_view
    assert "/recovery/cases/" not in staff_view
    # The manager works at Main St: its case is linked, Harbour Rd's is listed only.
    manager_view = cases_section(
        logged_in(manager).get(reverse("customer-page", args=[daniel.pk])).content.decode()
    )
    assert reverse("case-page", args=[main_case.pk]) in manager_view
    assert reverse("case-page", args=[harbour_case.pk]) not in manager_view


def test_staff_edit_the_customers_notes(staff, daniel):
    client = logged_in(staff)
    url = reverse("customer-notes", args=[daniel.pk])
    response = client.post(url, {"notes": "  Oat milk. Allergic to nuts.  "})
    assert response.status_code == 302 and response["Location"] == reverse(
        "customer-page", args=[daniel.pk]
    )
    daniel.refresh_from_db()
    assert daniel.notes == "Oat milk. Allergic to nuts."
    page = client.get(reverse("customer-page", args=[daniel.pk])).content.decode()
    assert "Oat milk. Allergic to nuts." in page and "Notes saved." in page


def test_notes_too_long_are_refused_on_the_field_and_change_nothing(staff, daniel):
    response = logged_in(staff).post(
        reverse("customer-notes", args=[daniel.pk]), {"notes": "x" * 2001}
    )
    assert response.status_code == 400
    body = response.content.decode()
    assert 'id="id_notes_error"' in body and 'aria-invalid="true"' in body
    daniel.refresh_from_db()
    assert daniel.notes == ""


def test_logging_a_call_records_an_outreach_episode(staff, org, main_st, daniel):
    response = logged_in(staff).post(
        reverse("customer-outreach", args=[daniel.pk]),
        {"channel": "call", "summary": "Apologised, offered a coffee on us"},
    )
    assert response.status_code == 302
    episode = daniel.episodes.order_by("-id").first()
    assert episode.kind == "outreach" and episode.source == "staff"
    assert episode.summary == "Phone call: Apologised, offered a coffee on us"
    assert episode.author_user == staff and episode.location == main_st
    daniel.refresh_from_db()
    assert daniel.last_follow_up_at == episode.occurred_at  # a follow-up in the narrative


def test_a_call_followed_up_closes_the_open_case_at_the_next_sweep(
    owner, daniel, daniel_with_cases
):
    from recovery.sweep import sweep_recovery

    case = daniel_with_cases["open"]
    logged_in(owner).post(
        reverse("customer-outreach", args=[daniel.pk]),
        {"channel": "email", "summary": "Sorry about the latte"},
    )
    sweep_recovery(now=datetime.now(UTC) + timedelta(minutes=1))
    case.refresh_from_db()
    assert case.status == "resolved"


def test_a_call_without_a_summary_is_refused_on_the_field(staff, daniel):
    before = daniel.episodes.count()
    response = logged_in(staff).post(
        reverse("customer-outreach", args=[daniel.pk]), {"channel": "call", "summary": " "}
    )
    assert response.status_code == 400
    body = response.content.decode()
    assert 'id="id_summary_error"' in body and "Say what was said" in body
    assert daniel.episodes.count() == before


def test_the_page_has_one_correction_control_not_one_per_episode(owner, org, main_st, daniel):
    for n in range(3):
        record(org, kind="feedback", customer_id=daniel.pk, summary=f"Meh {n}", experience=-1)
    body = logged_in(owner).get(reverse("customer-page", args=[daniel.pk])).content.decode()
    assert body.count(f'action="{reverse("customer-experience", args=[daniel.pk])}"') == 1
    assert "Correct the experience" not in body
    control = body.split('id="correct"')[1].split("</details>")[0]
    assert control.count("<option value=") == 4 + 6  # every episode shown, and the scale


def test_an_episode_of_another_customer_cannot_be_corrected_from_this_page(owner, org, daniel):
    other = record(org, kind="feedback", name="Other", summary="Fine", experience=1,
                   identifiers={"phone": "+447400999001"})  # fmt: skip
    response = logged_in(owner).post(
        reverse("customer-experience", args=[daniel.pk]),
        {"episode": other.pk, "experience": "-2"},
    )
    assert response.status_code == 400
    assert 'id="episode-error"' in response.content.decode()
    other.refresh_from_db()
    assert other.experience == 1


# --- the favicon and the API docs -----------------------------------------------------------


@pytest.mark.django_db
def test_pages_link_a_local_svg_favicon():
    from xml.etree import ElementTree

    from django.contrib.staticfiles import finders

    body = Client().get(LOGIN_URL).content.decode()
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in body
    path = finders.find("favicon.svg")
    assert path, "static/favicon.svg"
    root = ElementTree.parse(path).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    with open(path) as svg:
        assert "http" not in svg.read().replace("http://www.w3.org/2000/svg", "")  # offline


@pytest.mark.django_db
def test_the_api_docs_link_back_to_the_app():
    body = Client().get("/api/docs/").content.decode()
    assert '<a href="/">← Back to the app</a>' in body
    assert '<link rel="icon" href="/static/favicon.svg"' in body
    assert 'id="swagger-ui"' in body  # still Swagger UI, from our static files
