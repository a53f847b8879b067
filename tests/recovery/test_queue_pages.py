import csv
import io
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from recovery.models import RecoveryCase
from recovery.services import create_default_playbooks
from recovery.sweep import sweep_recovery
from tests.factories import CustomerFactory
from tests.recovery.conftest import log


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def make_cases(org, count, *, location=None, experience=-1, touchpoint="wait", hours_ago=30):
    at = timezone.now() - timedelta(hours=hours_ago)
    for n in range(count):
        customer = CustomerFactory(organization=org, name=f"Guest {location and location.slug} {n}")
        log(
            org, customer, at - timedelta(minutes=n), kind="complaint", experience=experience,
            location=location, touchpoints=[{"code": touchpoint, "third_party": False}],
        )  # fmt: skip
    sweep_recovery(now=at + timedelta(hours=3))  # opened 27 hours ago: past its 4-hour SLA


@pytest.fixture
def queue(org, main_st, harbour):
    create_default_playbooks(organization=org)
    make_cases(org, 3, location=main_st)
    make_cases(org, 2, location=harbour, experience=-2, touchpoint="parking_valet")


def rows(response) -> list[str]:
    body = response.content.decode()
    return [part.split('"')[0] for part in body.split('<tr id="case-')[1:]]


def test_owners_see_every_open_case_most_severe_first(owner, queue):
    response = logged_in(owner).get(reverse("queue"))
    ids = [int(i) for i in rows(response)]
    cases = {c.pk: c for c in RecoveryCase.objects.all()}
    assert len(ids) == 5
    assert [cases[i].severity for i in ids] == sorted(
        (c.severity for c in cases.values()), reverse=True
    )


def test_managers_see_only_their_locations_and_staff_see_no_queue(manager, staff, queue):
    ids = [int(i) for i in rows(logged_in(manager).get(reverse("queue")))]
    assert {RecoveryCase.objects.get(pk=i).location.slug for i in ids} == {"main-st"}
    harbour_case = RecoveryCase.objects.filter(location__slug="harbour-rd").first()
    assert logged_in(manager).get(reverse("case-page", args=[harbour_case.pk])).status_code == 404
    assert logged_in(staff).get(reverse("queue")).status_code == 404


def test_other_organizations_see_nothing(outsider, queue):
    case = RecoveryCase.objects.first()
    client = logged_in(outsider)
    assert rows(client.get(reverse("queue"))) == []
    assert client.get(reverse("case-page", args=[case.pk])).status_code == 404
    assert client.post(reverse("queue-case", args=[case.pk, "assign-me"])).status_code == 404


def test_filters_narrow_the_queue(owner, queue):
    client = logged_in(owner)
    assert len(rows(client.get(reverse("queue"), {"touchpoint": "parking_valet"}))) == 2
    assert len(rows(client.get(reverse("queue"), {"severity": 2}))) == 3
    assert len(rows(client.get(reverse("queue"), {"location": "main-st"}))) == 3
    assert len(rows(client.get(reverse("queue"), {"overdue": "on"}))) == 5  # 30 h old, 4 h SLA
    assert len(rows(client.get(reverse("queue"), {"assignee": "me"}))) == 0
    assert len(rows(client.get(reverse("queue"), {"severity": "garbage"}))) == 5  # ignored


def test_assign_to_me_and_acknowledge_update_the_row_in_place(owner, queue):
    case = RecoveryCase.objects.first()
    client = logged_in(owner)
    row = client.post(reverse("queue-case", args=[case.pk, "assign-me"]), HTTP_HX_REQUEST="true")
    assert (
        row.content.decode().startswith(f'<tr id="case-{case.pk}"')
        and owner.email in row.content.decode()
    )
    client.post(reverse("queue-case", args=[case.pk, "acknowledge"]), HTTP_HX_REQUEST="true")
    case.refresh_from_db()
    assert case.assignee == owner and case.acknowledged_at is not None
    assert len(rows(client.get(reverse("queue"), {"assignee": "me"}))) == 1


def test_bulk_assign_and_bulk_dismiss_with_a_reason(owner, manager, queue):
    client = logged_in(owner)
    ids = list(RecoveryCase.objects.values_list("pk", flat=True)[:2])
    client.post(reverse("queue-bulk"), {"cases": ids, "action": "assign", "assignee": manager.pk})
    assert set(RecoveryCase.objects.filter(pk__in=ids).values_list("assignee", flat=True)) == {
        manager.pk
    }
    client.post(reverse("queue-bulk"), {"cases": ids, "action": "dismiss", "reason": ""})
    assert RecoveryCase.objects.filter(pk__in=ids, status="open").count() == 2  # refused
    client.post(reverse("queue-bulk"), {"cases": ids, "action": "dismiss", "reason": "test data"})
    assert RecoveryCase.objects.filter(pk__in=ids, status="dismissed").count() == 2


def test_the_case_page_resolves_with_the_actions_taken(owner, queue):
    case = RecoveryCase.objects.filter(location__slug="harbour-rd").first()
    client = logged_in(owner)
    page = client.get(reverse("case-page", args=[case.pk])).content.decode()
    assert "Suggested actions" in page and "Opened" in page
    action = case.actions.first()
    body = client.post(
        reverse("case-page", args=[case.pk]),
        {"action": "resolve", "actions": [action.pk], "note": "Called her"},
        HTTP_HX_REQUEST="true",
    ).content.decode()
    case.refresh_from_db()
    assert case.status == "resolved" and "Resolved" in body
    bad = client.post(reverse("case-page", args=[case.pk]), {"action": "dismiss", "reason": "x"})
    assert bad.status_code == 409


def test_the_queue_pages_by_keyset_and_costs_the_same_at_any_depth(
    owner, org, main_st, django_assert_max_num_queries
):
    make_cases(org, 60, location=main_st)
    client = logged_in(owner)
    with django_assert_max_num_queries(16) as first_page:
        first = client.get(reverse("queue"))
    seen = rows(first)
    assert len(seen) == 50 and "More cases" in first.content.decode()
    more = first.content.decode().split('hx-get="')[-1].split('"')[0].replace("&amp;", "&")
    with django_assert_max_num_queries(len(first_page.captured_queries)):
        second = client.get(reverse("queue") + more, HTTP_HX_REQUEST="true")
    seen += rows(second)
    assert len(seen) == len(set(seen)) == 60


def test_the_csv_export_follows_the_filters(owner, queue):
    response = logged_in(owner).get(reverse("queue-export"), {"location": "harbour-rd"})
    data = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert data[0][:3] == ["id", "kind", "status"]
    assert len(data) == 3 and {row[5] for row in data[1:]} == {"harbour-rd"}
