"""The case page (recovery/views/cases.py): reach the customer, see their other cases, and
errors shown on the field at fault."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from cxcore.services import EpisodeInput, record_episode
from recovery.models import RecoveryCase
from recovery.outcomes import measure_outcomes
from recovery.services import assign_case, dismiss_case, resolve_case
from recovery.sweep import sweep_recovery
from tests.recovery.conftest import log


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def margaret(org, main_st, playbooks):
    """A customer with a phone and an email, an old case (recovered) and an open one."""
    now = timezone.now()
    customer = record_episode(
        organization=org,
        data=EpisodeInput(
            kind="visit",
            identifiers={"phone": "07400 123456", "email": "margaret@example.com"},
            name="Margaret Lyon",
            location=main_st,
            occurred_at=now - timedelta(days=90),
        ),
    ).episode.customer
    log(org, customer, now - timedelta(days=60), kind="complaint", experience=-1,
        location=main_st, summary="Cold soup")  # fmt: skip
    sweep_recovery(now=now - timedelta(days=59))
    old = RecoveryCase.objects.get(customer=customer)
    resolve_case(case=old, note="Called, soup on us", now=now - timedelta(days=58))
    log(org, customer, now - timedelta(days=50), kind="visit", experience=1, location=main_st)
    measure_outcomes(now=now - timedelta(days=20))
    log(org, customer, now - timedelta(days=2), kind="complaint", experience=-2,
        location=main_st, summary="Valet kept her waiting 45 min",
        touchpoints=[{"code": "parking_valet", "third_party": True}])  # fmt: skip
    sweep_recovery(now=now - timedelta(days=1))
    current = RecoveryCase.objects.get(customer=customer, status="open")
    return customer, old, current


def test_the_customers_name_links_to_the_customer_page(owner, margaret):
    customer, _, case = margaret
    body = logged_in(owner).get(reverse("case-page", args=[case.pk])).content.decode()
    link = f'<a href="{reverse("customer-page", args=[customer.pk])}">Margaret Lyon</a>'
    assert link in body
    assert "Margaret — valet kept her waiting 45 min · 2 days ago" in body  # the headline


@pytest.mark.parametrize("who", ["owner", "manager"])
def test_owners_and_managers_can_call_or_email_from_the_case(request, who, margaret):
    _, _, case = margaret
    body = logged_in(request.getfixturevalue(who)).get(reverse("case-page", args=[case.pk]))
    text = body.content.decode()
    assert 'href="tel:+447400123456"' in text and "+44 7400 123456" in text
    assert 'href="mailto:margaret@example.com"' in text


def test_the_till_never_shows_call_or_email_links(staff, margaret):
    customer, _, _ = margaret
    body = logged_in(staff).get(reverse("pos-customer", args=[customer.pk])).content.decode()
    assert "Margaret" in body
    assert "tel:" not in body and "mailto:" not in body


def test_the_case_page_lists_the_customers_other_cases_with_their_outcomes(owner, margaret):
    _, old, case = margaret
    old.refresh_from_db()
    assert old.outcome == "recovered"
    body = logged_in(owner).get(reverse("case-page", args=[case.pk])).content.decode()
    others = body.split("other cases</h2>")[1].split("</ul>")[0]
    assert reverse("case-page", args=[old.pk]) in others
    assert "Resolved" in others and "Came back happy" in others
    assert reverse("case-page", args=[case.pk]) not in others  # not itself


def test_a_dismissed_case_without_an_outcome_says_so(owner, org, margaret):
    customer, _, case = margaret
    dismiss_case(case=case, reason="Spoke at the counter")
    log(org, customer, timezone.now() - timedelta(hours=1), kind="complaint", experience=-1,
        summary="Wrong milk")  # fmt: skip
    sweep_recovery(now=timezone.now() + timedelta(hours=3))
    newest = RecoveryCase.objects.get(customer=customer, status="open")
    body = logged_in(owner).get(reverse("case-page", args=[newest.pk])).content.decode()
    others = body.split("other cases</h2>")[1].split("</ul>")[0]
    assert "Dismissed" in others and "outcome not measured yet" in others


@pytest.mark.parametrize("htmx", [True, False])
def test_dismissing_without_a_reason_shows_the_error_on_the_field(owner, margaret, htmx):
    _, _, case = margaret
    headers = {"HX-Request": "true"} if htmx else {}
    response = logged_in(owner).post(
        reverse("case-page", args=[case.pk]), {"action": "dismiss", "reason": "  "}, headers=headers
    )
    assert response.status_code == 400
    body = response.content.decode()
    field = body.split('name="reason"')[1].split(">")[0]
    assert 'aria-invalid="true"' in field and 'aria-describedby="reason-error"' in field
    assert '<p class="error field-error" id="reason-error">Say why the case is dismissed.</p>' in (
        body
    )
    assert 'class="flash"' not in body  # on the field, not a message above the page
    case.refresh_from_db()
    assert case.status == "open"


def test_a_plain_post_works_without_javascript(owner, margaret):
    _, _, case = margaret
    response = logged_in(owner).post(
        reverse("case-page", args=[case.pk]), {"action": "dismiss", "reason": "Duplicate"}
    )
    assert response.status_code == 200 and "Dismissed" in response.content.decode()
    case.refresh_from_db()
    assert case.status == "dismissed"


def test_the_case_page_costs_the_same_whatever_the_history(
    owner, org, manager, margaret, django_assert_max_num_queries
):

    _, _, case = margaret
    assign_case(case=case, assignee=manager)  # one assignment to name
    client = logged_in(owner)
    url = reverse("case-page", args=[case.pk])
    with django_assert_max_num_queries(40) as few:
        client.get(url)
    customer = case.customer
    for n in range(5):
        dismiss_case(case=RecoveryCase.objects.get(pk=case.pk), reason="Test")
        log(org, customer, timezone.now() - timedelta(hours=10 - n), kind="complaint",
            experience=-1, summary=f"Again {n}")  # fmt: skip
        sweep_recovery(now=timezone.now() + timedelta(hours=3))
        case = RecoveryCase.objects.get(customer=customer, status="open")
    for _ in range(3):
        assign_case(case=case, assignee=manager)
        assign_case(case=case, assignee=None)
    url = reverse("case-page", args=[case.pk])
    with django_assert_max_num_queries(len(few.captured_queries)):
        body = client.get(url).content.decode()
    assert body.count('href="/recovery/cases/') >= 6  # its other cases are all listed
    assert body.count("<strong>Assigned</strong> to ") == 6  # each one named
