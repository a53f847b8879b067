"""recovery/filters.py: one table of case filters, run through the owner queue, its CSV and
GET /api/v1/cases/, gets the same answer from each: the same cases in the same order, or the
same refusal naming the same parameter."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from typing import Any, cast

import pytest
from django.http import StreamingHttpResponse
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from recovery.filters import CaseFilter
from recovery.models import RecoveryCase
from recovery.services import Actor, assign_case, create_default_playbooks, resolve_case
from recovery.sweep import sweep_recovery
from tests.factories import CustomerFactory
from tests.recovery.conftest import log


def open_case(org, name, *, location=None, experience=-1, hours_ago=30, touchpoint="wait"):
    customer = CustomerFactory.create(organization=org, name=name)
    at = timezone.now() - timedelta(hours=hours_ago)
    log(
        org, customer, at, kind="complaint", experience=experience, location=location,
        touchpoints=[{"code": touchpoint, "third_party": False}],
    )  # fmt: skip
    sweep_recovery(now=at + timedelta(hours=3))
    return RecoveryCase.objects.get(customer=customer)


@pytest.fixture
def cases(org, main_st, harbour, owner):
    """Opened 27 h ago (past the 4 h acknowledgement SLA) unless said otherwise."""
    create_default_playbooks(organization=org)
    made = {
        "mine": open_case(org, "Ada", location=main_st),
        "valet": open_case(org, "Bea", location=harbour, experience=-2, touchpoint="parking_valet"),
        "fresh": open_case(org, "Cal", hours_ago=5),  # opened 2 h ago, at no location
        "closed": open_case(org, "Dot", location=main_st),
    }
    assign_case(case=made["mine"], assignee=owner, actor=Actor(user=owner))
    resolve_case(case=made["closed"], note="Called", action_ids=[], actor=Actor(user=owner))
    return made


# (query, the cases expected, or the parameter a refusal names)
TABLE = [
    ({}, {"mine", "valet", "fresh"}),
    ({"status": "open"}, {"mine", "valet", "fresh"}),
    ({"status": "resolved"}, {"closed"}),
    ({"status": "dismissed"}, set()),
    ({"kind": "recovery"}, {"mine", "valet", "fresh"}),
    ({"kind": "care"}, set()),
    ({"severity": "3"}, {"valet"}),
    ({"severity": "2"}, {"mine", "fresh"}),
    ({"location": "main-st"}, {"mine"}),
    ({"location": "harbour-rd"}, {"valet"}),
    ({"location": "main-st", "status": "resolved"}, {"closed"}),
    ({"touchpoint": "parking_valet"}, {"valet"}),
    ({"touchpoint": "wait"}, {"mine", "fresh"}),
    ({"assignee": "me"}, {"mine"}),
    ({"assignee": "nobody"}, {"valet", "fresh"}),
    ({"assignee": "{owner}"}, {"mine"}),
    ({"assignee": "{manager}"}, set()),
    ({"overdue": "true"}, {"mine", "valet"}),
    ({"overdue": "on"}, {"mine", "valet"}),  # what the filter bar's checkbox sends
    ({"overdue": "false"}, {"fresh"}),
    ({"overdue": "true", "severity": "2"}, {"mine"}),
    ({"overdue": "true", "status": "resolved"}, set()),  # only open cases are late
    ({"overdue": "false", "status": "resolved"}, {"closed"}),
    ({"location": "nowhere"}, "location"),
    ({"location": "elsewhere"}, "location"),  # another organization's
    ({"location": "Main St"}, "location"),
    ({"severity": "9"}, "severity"),
    ({"severity": "garbage"}, "severity"),
    ({"status": "nope"}, "status"),
    ({"kind": "complaint"}, "kind"),
    ({"touchpoint": "teleport"}, "touchpoint"),
    ({"assignee": "x"}, "assignee"),
    ({"assignee": "0"}, "assignee"),
    ({"assignee": "9" * 20}, "assignee"),
    ({"overdue": "maybe"}, "overdue"),
]


def queue_page(client: Client, params: dict) -> tuple[int, list[int], str | None]:
    """The queue's status, the cases it lists, and what its filter bar says is wrong."""
    response = client.get(reverse("queue"), params)
    body = response.content.decode()
    ids = [int(part.split('"')[0]) for part in body.split('<tr id="case-')[1:]]
    error = re.search(r'<p class="error" role="alert">(.*?)</p>', body)
    return response.status_code, ids, re.sub("<[^>]+>", "", error.group(1)) if error else None


def queue_answer(client: Client, params: dict) -> tuple[int, Any]:
    """The cases listed, or what the filter bar says is wrong."""
    status, ids, error = queue_page(client, params)
    return (status, ids) if status == 200 else (status, error)


def export_answer(client: Client, params: dict) -> tuple[int, Any]:
    """The cases in the file, or the refusal."""
    response = client.get(reverse("queue-export"), params)
    if response.status_code != 200:
        return response.status_code, response.content.decode()
    content = cast(StreamingHttpResponse, response).getvalue().decode()
    data = list(csv.reader(io.StringIO(content)))
    return 200, [int(row[0]) for row in data[1:]]


def api_answer(client: APIClient, params: dict) -> tuple[int, Any]:
    """The cases listed, or the error document."""
    response = client.get("/api/v1/cases/", params)
    if response.status_code != 200:
        return response.status_code, response.json()
    return 200, [case["id"] for case in response.json()["results"]]


@pytest.mark.parametrize(
    ("params", "answer"),
    TABLE,
    ids=lambda v: str(sorted(v) if isinstance(v, set) else v) if v else "-",
)
def test_the_queue_its_csv_and_the_api_answer_each_filter_alike(
    cases, owner, manager, other_location, params, answer
):
    params = {
        k: v.format(owner=owner.pk, manager=manager.pk) for k, v in params.items()
    }  # ids known only once the people exist
    web = Client()
    web.force_login(owner)
    api = APIClient()
    api.force_login(owner)  # the same person, so "me" is the same person
    queue, export, listed = (
        queue_answer(web, params),
        export_answer(web, params),
        api_answer(api, params),
    )

    if isinstance(answer, set):
        assert queue[0] == export[0] == listed[0] == 200, (queue, export, listed)
        assert queue[1] == export[1] == listed[1]  # the same cases, in the same order
        assert set(queue[1]) == {cases[name].pk for name in answer}
    else:
        assert queue[0] == export[0] == listed[0] == 400, (queue, export, listed)
        assert queue[1].startswith(f"{answer}: ")  # said on the filter bar
        assert export[1].startswith(f"{answer}: ")
        assert [e["field"] for e in listed[1]["errors"]] == [answer]


def test_a_bad_filter_leaves_the_others_applied_on_the_queue(cases, owner):
    client = Client()
    client.force_login(owner)
    status, ids, error = queue_page(client, {"severity": "garbage", "location": "harbour-rd"})
    assert status == 400 and error is not None and error.startswith("severity: ")
    assert ids == [cases["valet"].pk]


def test_filters_never_widen_a_location_scoped_member(cases, manager, main_st):
    """The manager works at Main St: the Harbour Rd case is not theirs to list, and naming
    Harbour Rd is the same refusal as naming a location that does not exist."""
    web = Client()
    web.force_login(manager)
    api = APIClient()
    api.force_login(manager)
    visible = {cases["mine"].pk, cases["fresh"].pk}  # Main St's and the unplaced one
    for params in ({}, {"overdue": "true"}, {"assignee": "nobody"}, {"severity": "3"}):
        queue, listed = queue_answer(web, params), api_answer(api, params)
        assert queue == listed and set(queue[1]) <= visible, params
    assert set(queue_answer(web, {})[1]) == visible
    for slug in ("harbour-rd", "nowhere"):
        assert queue_answer(web, {"location": slug})[0] == 400
        status, body = api_answer(api, {"location": slug})
        assert status == 400 and body["errors"][0]["field"] == "location"
        assert body["errors"][0]["message"] == f"No location {slug!r} here."


def test_an_api_key_has_no_me_but_sees_the_same_cases_otherwise(cases, api):
    assert api_answer(api, {"assignee": "me"}) == (200, [])
    ids = api_answer(api, {"assignee": "nobody"})[1]
    assert set(ids) == {cases["valet"].pk, cases["fresh"].pk}


def test_the_schema_lists_every_case_filter_and_the_paging_parameters(api):
    schema = api.get("/api/v1/schema/", {"format": "json"}).json()
    operation = schema["paths"]["/api/v1/cases/"]["get"]
    listed = {p["name"]: p["schema"] for p in operation["parameters"] if p["in"] == "query"}
    assert set(listed) == {*CaseFilter.base_filters, "cursor", "page_size"}
    assert listed["overdue"]["type"] == "boolean"
    assert listed["severity"]["enum"] == [1, 2, 3, 4]
