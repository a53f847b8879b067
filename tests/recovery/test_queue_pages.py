import csv
import io
import re
from collections.abc import Iterator
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from django.http import StreamingHttpResponse
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import Role
from accounts.services import add_member
from recovery.models import RecoveryCase
from recovery.services import assign_case, create_default_playbooks
from recovery.sweep import sweep_care, sweep_recovery
from tests.factories import CustomerFactory, UserFactory
from tests.recovery.conftest import log


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def make_cases(org, count, *, location=None, experience=-1, touchpoint="wait", hours_ago=30):
    at = timezone.now() - timedelta(hours=hours_ago)
    for n in range(count):
        customer = CustomerFactory.create(
            organization=org, name=f"Guest {location and location.slug} {n}"
        )
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
    assert {location_slug(i) for i in ids} == {"main-st"}
    harbour_case = RecoveryCase.objects.filter(location__slug="harbour-rd").first()
    assert harbour_case is not None
    assert logged_in(manager).get(reverse("case-page", args=[harbour_case.pk])).status_code == 404
    assert logged_in(staff).get(reverse("queue")).status_code == 403


def location_slug(case_id: int) -> str:
    location = RecoveryCase.objects.get(pk=case_id).location
    assert location is not None
    return location.slug


def test_other_organizations_see_nothing(outsider, queue):
    case = RecoveryCase.objects.first()
    assert case is not None
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
    assert case is not None
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
    assert case is not None
    client = logged_in(owner)
    page = client.get(reverse("case-page", args=[case.pk])).content.decode()
    assert "Suggested actions" in page and "Opened" in page
    action = case.actions.first()
    assert action is not None
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
    assert isinstance(response, StreamingHttpResponse)
    content = response.streaming_content
    assert isinstance(content, Iterator)  # the test client is sync: so is the body
    data = list(csv.reader(io.StringIO(b"".join(content).decode())))
    assert data[0][:3] == ["id", "kind", "status"]
    assert len(data) == 3 and {row[5] for row in data[1:]} == {"harbour-rd"}


def test_the_csv_export_cannot_carry_a_spreadsheet_formula(owner, org, main_st):
    """A customer named like a formula is exported as text, not run by the spreadsheet."""
    for n, name in enumerate(('=HYPERLINK("http://x")', "+1 555", "-2+3", "@SUM(A1)")):
        customer = CustomerFactory.create(organization=org, name=name)
        log(org, customer, timezone.now() - timedelta(hours=5 + n), kind="complaint",
            experience=-1, location=main_st)  # fmt: skip
    sweep_recovery()
    response = logged_in(owner).get(reverse("queue-export"))
    assert isinstance(response, StreamingHttpResponse)
    content = response.streaming_content
    assert isinstance(content, Iterator)
    data = list(csv.reader(io.StringIO(b"".join(content).decode())))
    names = {row[4] for row in data[1:]}
    assert names == {'\'=HYPERLINK("http://x")', "'+1 555", "'-2+3", "'@SUM(A1)"}


# --- what a row says, and to whom --------------------------------------------------------------


def cells(response, case, css_class) -> str:
    """The text of one cell of a case's row."""
    body = response.content.decode()
    row = body.split(f'<tr id="case-{case.pk}"')[1].split("</tr>")[0]
    cell = row.split(f'class="{css_class}"')[1].split("</td>")[0]
    return re.sub(r"<[^>]+>", " ", cell.split(">", 1)[1])


def test_the_what_column_shows_the_headline_of_the_newest_trigger(owner, org, main_st, queue):
    customer = CustomerFactory.create(organization=org, name="Margaret Lyon")
    at = timezone.now() - timedelta(days=6)
    log(org, customer, at, kind="complaint", experience=-1, location=main_st,
        summary="Valet kept her waiting 45 min, car scratched",
        touchpoints=[{"code": "parking_valet", "third_party": True}])  # fmt: skip
    sweep_recovery(now=at + timedelta(hours=3))
    case = RecoveryCase.objects.get(customer=customer)
    response = logged_in(owner).get(reverse("queue"))
    what = cells(response, case, "what")
    assert "Margaret — valet kept her waiting 45 min · 6 days ago" in what
    assert "Parking / valet" in what  # the touchpoints by their labels

    log(org, customer, timezone.now() - timedelta(hours=30), kind="complaint", experience=-2,
        location=main_st, summary="Latte was cold.")  # fmt: skip
    sweep_recovery(now=timezone.now())
    assert case.triggers.count() == 2
    what = cells(logged_in(owner).get(reverse("queue")), case, "what")
    assert "Margaret — latte was cold · yesterday" in what  # the newest trigger's


def weekly_regular(org, name, *, weeks_quiet=4):
    """Six weekly visits, the last `weeks_quiet` weeks ago: a care case once the sweep runs."""
    customer = CustomerFactory.create(organization=org, name=name)
    last = timezone.now() - timedelta(weeks=weeks_quiet)
    for week in range(6):
        log(org, customer, last - timedelta(weeks=week), kind="order")
    customer.refresh_from_db()
    return customer


def test_a_care_case_shows_its_care_headline(owner, org, playbooks):
    regular = weekly_regular(org, "Priya Shah")
    sweep_care(now=timezone.now())
    case = RecoveryCase.objects.get(customer=regular, kind="care")
    response = logged_in(owner).get(reverse("queue"))
    assert "Priya — usually weekly, last here 4 weeks ago" in cells(response, case, "what")


def test_the_queue_costs_the_same_queries_for_3_cases_as_for_50(
    owner, org, main_st, harbour, playbooks, django_assert_max_num_queries
):
    client = logged_in(owner)
    make_cases(org, 3, location=main_st)
    with django_assert_max_num_queries(30) as few:
        client.get(reverse("queue"))
    make_cases(org, 40, location=harbour, experience=-2)
    again = timezone.now() - timedelta(hours=5)
    for case in RecoveryCase.objects.filter(location=harbour)[:5]:  # a second bad experience
        log(org, case.customer, again, kind="complaint", experience=-2, location=harbour)
    sweep_recovery(now=timezone.now())
    for n in range(7):  # and care cases, which have no trigger
        weekly_regular(org, f"Regular {n}")
    sweep_care(now=timezone.now())
    assert RecoveryCase.objects.filter(trigger_links__added_at__gte=again).count() == 5
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get(reverse("queue"))
    assert len(rows(response)) == 50


class Labels(HTMLParser):
    """The page's form controls and the visible text of the label naming each: a label
    around it, or a label `for` its id."""

    def __init__(self):
        super().__init__()
        self.controls: list[tuple[str, str | None, bool]] = []  # name, id, inside a label
        self.label_for: dict[str, str] = {}
        self.open_label: list[str] | None = None
        self.open_for: str | None = None
        self.inside_option = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "label":
            self.open_label, self.open_for = [], attrs.get("for")
        elif tag == "option":
            self.inside_option = True
        elif tag in ("select", "input", "textarea") and attrs.get("type") not in (
            "hidden", "submit",
        ):  # fmt: skip
            self.controls.append(
                (attrs.get("name", ""), attrs.get("id"), self.open_label is not None)
            )

    def handle_endtag(self, tag):
        if tag == "option":
            self.inside_option = False
        if tag == "label" and self.open_label is not None:
            text = " ".join("".join(self.open_label).split())
            if self.open_for:
                self.label_for[self.open_for] = text
            self.open_label = None

    def handle_data(self, data):
        if self.open_label is not None and not self.inside_option:
            self.open_label.append(data)

    def unlabelled(self, skip=("cases", "csrfmiddlewaretoken")) -> list[str]:
        return [
            name
            for name, id_, wrapped in self.controls
            if name not in skip and not wrapped and not self.label_for.get(id_ or "")
        ]


def test_every_filter_has_a_visible_label(owner, queue):
    parser = Labels()
    parser.feed(logged_in(owner).get(reverse("queue")).content.decode())
    names = {name for name, _, _ in parser.controls}
    assert {"location", "kind", "touchpoint", "severity", "assignee", "status", "overdue"} <= names
    assert "reason" in names  # the bulk bar's too
    assert parser.unlabelled() == []
    assert parser.label_for["id_kind"] == "Kind" and parser.label_for["filter-location"] == (
        "Location"
    )


def test_people_are_shown_by_their_display_name(owner, manager, queue):
    manager.name = "Maya Patel"
    manager.save()
    case = RecoveryCase.objects.first()
    assert case is not None
    assign_case(case=case, assignee=manager)
    body = logged_in(owner).get(reverse("queue")).content.decode()
    assert "Maya Patel" in cells_of(body, case, "Assignee")
    assert f'<option value="{manager.pk}">Maya Patel</option>' in body  # the bulk assign list
    assert manager.email not in body
    assert owner.email in body  # no name: shown by email


def cells_of(body, case, label) -> str:
    row = body.split(f'<tr id="case-{case.pk}"')[1].split("</tr>")[0]
    return row.split(f'data-label="{label}">')[1].split("</td>")[0]


def test_assign_me_disappears_once_the_case_is_mine(owner, manager, queue):
    case = RecoveryCase.objects.first()
    assert case is not None
    client = logged_in(owner)
    before = client.get(reverse("queue")).content.decode()
    assert reverse("queue-case", args=[case.pk, "assign-me"]) in before
    row = client.post(
        reverse("queue-case", args=[case.pk, "assign-me"]), HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "Assign me" not in row and "Acknowledge" in row
    after = client.get(reverse("queue")).content.decode()
    assert reverse("queue-case", args=[case.pk, "assign-me"]) not in after
    # Someone else still may take it over.
    theirs = logged_in(manager).get(reverse("queue")).content.decode()
    if f'id="case-{case.pk}"' in theirs:
        assert reverse("queue-case", args=[case.pk, "assign-me"]) in theirs


def test_the_history_says_to_whom_a_case_was_assigned(owner, manager, queue):
    manager.name = "Maya Patel"
    manager.save()
    case = RecoveryCase.objects.filter(location__slug="main-st").first()
    assert case is not None
    client = logged_in(owner)
    client.post(reverse("queue-case", args=[case.pk, "assign-me"]))
    assign_case(case=case, assignee=manager)
    assign_case(case=case, assignee=None)
    history = history_of(client.get(reverse("case-page", args=[case.pk])).content.decode())
    assert f"Assigned to {owner.email}" in history  # no name: the email
    assert "Assigned to Maya Patel" in history
    assert "Assigned to nobody" in history


def test_an_old_assignment_to_someone_who_left_stays_readable(owner, queue):
    case = RecoveryCase.objects.first()
    assert case is not None
    gone = UserFactory.create(email="left@example.com", name="Gone Person")
    add_member(organization=case.organization, user=gone, role=Role.MANAGER)
    assign_case(case=case, assignee=gone)
    gone.delete()
    history = history_of(logged_in(owner).get(reverse("case-page", args=[case.pk])).content)
    assert "Assigned to left@example.com" in history


def history_of(body) -> str:
    if isinstance(body, bytes):
        body = body.decode()
    part = body.split("<h2>History</h2>")[1].split("</ol>")[0]
    return " ".join(re.sub(r"<[^>]+>", " ", part).split())
