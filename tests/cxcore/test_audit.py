"""The read audit (cxcore/audit.py): every read of a customer's data writes one row in the same
request (ids only), on every page and endpoint that shows customers; owners read it back on a
page and over the API; the request id is the one the response carries."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings
from django.utils import timezone

from accounts.models import ApiKey
from accounts.tenancy import Tenant
from cxcore.audit import record_read
from cxcore.models import ReadAction, ReadAudit
from cxcore.privacy import erase_customer, export_customer
from cxcore.services import EpisodeInput, record_episode
from tests.conftest import key_client
from tests.factories import CustomerFactory, IdentifierFactory

SIDEBAR = "/api/v1/sidebar/"
AUDIT = "/api/v1/audit/"


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def visit(org, *, name: str, phone: str, location=None, days_ago: int = 1):
    return record_episode(
        organization=org,
        data=EpisodeInput(
            kind="visit",
            identifiers={"phone": phone},
            name=name,
            location=location,
            summary=f"{name} had a flat white",
            occurred_at=timezone.now() - timedelta(days=days_ago),
        ),
    ).episode.customer


@pytest.fixture
def dana(org, main_st):
    return visit(org, name="Dana Quill", phone="07400 111001", location=main_st, days_ago=2)


@pytest.fixture
def danny(org, main_st):
    return visit(org, name="Danny Quill", phone="07400 111002", location=main_st, days_ago=1)


def only_read() -> ReadAudit:
    (row,) = ReadAudit.objects.all()
    return row


# --- the request id --------------------------------------------------------------------------


def test_a_well_formed_request_id_is_kept_and_echoed(client):
    response = client.get("/accounts/login/", HTTP_X_REQUEST_ID="pos-7f3a-0001")
    assert response["X-Request-ID"] == "pos-7f3a-0001"


@pytest.mark.parametrize(
    "incoming", [None, "", "short", "has spaces in it", "<script>alert(1)</script>", "x" * 65]
)
def test_a_missing_or_odd_request_id_is_replaced_by_a_new_one(client, incoming):
    extra = {} if incoming is None else {"HTTP_X_REQUEST_ID": incoming}
    response = client.get("/accounts/login/", **extra)
    assert uuid.UUID(hex=response["X-Request-ID"]).version == 4
    assert response["X-Request-ID"] != incoming


def test_api_answers_carry_the_request_id_too(api, org):
    response = api.get("/api/v1/customers/", HTTP_X_REQUEST_ID="till-42-request")
    assert response["X-Request-ID"] == "till-42-request"


# --- the service -----------------------------------------------------------------------------


def test_record_read_writes_one_row_of_ids_and_nothing_else(org, owner, dana, danny):
    tenant = Tenant(organization=org, user=owner)
    at = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    row = record_read(
        tenant=tenant, action=ReadAction.SEARCH, customer_ids=[danny.pk, dana.pk, danny.pk], now=at
    )
    assert row is not None
    row.refresh_from_db()
    assert (row.organization_id, row.actor_kind, row.actor_id) == (org.pk, "user", owner.pk)
    assert (row.action, row.customer_ids, row.at) == ("search", [danny.pk, dana.pk], at)
    stored = json.dumps(list(ReadAudit.objects.values()), default=str)
    assert "Quill" not in stored and "111001" not in stored


def test_nothing_shown_is_nothing_recorded(org, owner):
    assert (
        record_read(
            tenant=Tenant(organization=org, user=owner), action=ReadAction.SEARCH, customer_ids=[]
        )
        is None
    )
    assert not ReadAudit.objects.exists()


def test_a_read_without_a_member_or_key_is_refused(org, dana):
    with pytest.raises(ValueError):
        record_read(tenant=Tenant(organization=org), action=ReadAction.PAGE, customer_ids=[dana.pk])


# --- every read is recorded, once, in the request --------------------------------------------


def test_the_customer_page_records_the_owner_the_customer_and_the_request(owner, dana):
    response = logged_in(owner).get(f"/customers/{dana.pk}/", HTTP_X_REQUEST_ID="req-page-0001")
    assert response.status_code == 200
    row = only_read()
    assert (row.action, row.customer_ids, row.actor_kind, row.actor_id) == (
        "page", [dana.pk], "user", owner.pk,
    )  # fmt: skip
    assert row.request_id == response["X-Request-ID"] == "req-page-0001"


def test_an_older_page_of_the_narrative_is_a_timeline_read(owner, org, dana):
    for n in range(55):
        record_episode(
            organization=org,
            data=EpisodeInput(
                kind="visit",
                customer_id=dana.pk,
                occurred_at=timezone.now() - timedelta(days=n + 3),
            ),
        )
    client = logged_in(owner)
    first = client.get(f"/customers/{dana.pk}/").content.decode()
    (cursor,) = re.findall(r'href="\?before=([^"]+)"', first)
    assert client.get(f"/customers/{dana.pk}/", {"before": cursor}).status_code == 200
    assert list(ReadAudit.objects.order_by("id").values_list("action", flat=True)) == [
        "page",
        "timeline",
    ]


def test_another_orgs_customer_page_is_404_and_records_nothing(owner, other_org):
    theirs = CustomerFactory.create(organization=other_org)
    assert logged_in(owner).get(f"/customers/{theirs.pk}/").status_code == 404
    assert not ReadAudit.objects.exists()


def test_the_api_timeline_and_customer_record_the_key(api, org_key, dana):
    key = ApiKey.objects.get(name="HQ")
    assert api.get(f"/api/v1/customers/{dana.pk}/timeline/").status_code == 200
    assert api.get(f"/api/v1/customers/{dana.pk}/").status_code == 200
    rows = list(ReadAudit.objects.order_by("id").values_list("action", "actor_kind", "actor_id"))
    assert rows == [("timeline", "api_key", key.pk), ("detail", "api_key", key.pk)]


def test_the_api_sidebar_records_the_customer_shown_and_not_an_unknown_one(till, dana):
    assert till.get(SIDEBAR, {"phone": "07400 111001"}).json()["customer"]["id"] == dana.pk
    assert till.get(SIDEBAR, {"phone": "07400 999999"}).json()["customer"] is None
    row = only_read()
    assert (row.action, row.customer_ids) == ("sidebar", [dana.pk])
    assert row.actor_id == ApiKey.objects.get(name="Main St till").pk


def test_the_sidebar_write_is_exactly_one_more_query_an_insert(till, dana):
    till.get(SIDEBAR, {"customer": dana.pk})  # warm: key lookup caches, first showing
    with override_settings(READ_AUDIT=False), CaptureQueriesContext(connection) as without:
        till.get(SIDEBAR, {"customer": dana.pk})
    with CaptureQueriesContext(connection) as with_audit:
        till.get(SIDEBAR, {"customer": dana.pk})
    extra = [q["sql"] for q in with_audit.captured_queries][len(without.captured_queries) :]
    assert len(with_audit.captured_queries) == len(without.captured_queries) + 1
    assert [sql.split(" (")[0] for sql in extra] == ['INSERT INTO "cxcore_readaudit"']
    assert ReadAudit.objects.count() == 2  # the warm-up and the audited one


def test_the_till_page_records_its_sidebar_and_its_search_results(staff, dana, danny):
    client = logged_in(staff)
    assert client.get(f"/pos/customers/{dana.pk}/").status_code == 200
    results = client.get("/pos/lookup/", {"q": "Quill"})
    assert "Danny Quill" in results.content.decode()
    single = client.get("/pos/lookup/", {"q": "07400 111002"})  # one match: its sidebar
    assert "Danny Quill" in single.content.decode()
    rows = list(ReadAudit.objects.order_by("id").values_list("action", "customer_ids"))
    assert rows == [
        ("sidebar", [dana.pk]),
        ("search", [danny.pk, dana.pk]),  # as shown: the most recently seen first
        ("sidebar", [danny.pk]),
    ]
    assert set(ReadAudit.objects.values_list("actor_id", flat=True)) == {staff.pk}


def test_search_results_are_one_row_of_the_ids_shown_on_web_and_api(owner, api, dana, danny):
    logged_in(owner).get("/customers/", {"q": "Quill"})
    api.get("/api/v1/customers/", {"q": "Quill"})
    logged_in(owner).get("/customers/", {"q": "Nobody Here"})  # nothing shown: no row
    rows = list(ReadAudit.objects.order_by("id").values_list("action", "customer_ids"))
    assert rows == [("search", [danny.pk, dana.pk]), ("search", [danny.pk, dana.pk])]


def test_the_recently_seen_list_is_a_read_of_who_it_shows(owner, dana, danny):
    logged_in(owner).get("/customers/")
    assert only_read().customer_ids == [danny.pk, dana.pk]


def test_an_export_records_itself_and_lists_every_read(api, owner, dana):
    logged_in(owner).get(f"/customers/{dana.pk}/", HTTP_X_REQUEST_ID="req-before-export")
    response = logged_in(owner).get(f"/api/v1/customers/{dana.pk}/export/")
    doc = json.loads(b"".join(response.streaming_content))  # type: ignore[attr-defined]
    assert [(r["action"], r["actor"]) for r in doc["read_audit"]] == [
        ("page", "staff"),
        ("export", "staff"),
    ]
    assert doc["read_audit"][0]["request_id"] == "req-before-export"
    assert doc["read_audit"][1]["request_id"] == response["X-Request-ID"]


def test_the_export_lists_a_search_that_showed_the_customer_but_not_the_others_shown(
    owner, dana, danny
):
    logged_in(owner).get("/customers/", {"q": "Quill"})
    text = b"".join(export_customer(customer=dana)).decode()
    (read,) = json.loads(text)["read_audit"]
    assert set(read) == {"at", "action", "actor", "request_id"} and read["action"] == "search"
    assert '"customer_ids"' not in text


def test_an_erasure_keeps_the_reads_which_name_nobody(owner, dana):
    logged_in(owner).get(f"/customers/{dana.pk}/")
    erase_customer(customer=dana, reason="Asked at the counter")
    row = only_read()
    assert row.customer_ids == [dana.pk]
    assert [
        r["action"] for r in json.loads(b"".join(export_customer(customer=dana)))["read_audit"]
    ] == ["page"]


# --- owners read the audit -------------------------------------------------------------------


def test_owners_read_a_customers_reads_newest_first_in_pages(owner, api, dana, danny):
    staff_view = logged_in(owner)
    for _ in range(3):
        staff_view.get(f"/customers/{dana.pk}/")
    staff_view.get(f"/customers/{danny.pk}/")
    client = logged_in(owner)
    first = client.get(AUDIT, {"customer": dana.pk, "page_size": 2})
    assert first.status_code == 200, first.content
    body = first.json()
    assert [r["customer_ids"] for r in body["results"]] == [[dana.pk], [dana.pk]]
    assert body["results"][0]["actor_kind"] == "user" and body["results"][0]["actor_id"] == owner.pk
    rest = client.get(body["next"]).json()
    assert [r["action"] for r in rest["results"]] == ["page"] and rest["next"] is None
    ids = [r["id"] for r in body["results"] + rest["results"]]
    assert ids == sorted(ids, reverse=True)
    assert len(api.get(AUDIT).json()["results"]) == 4  # org-wide, from an org-wide key


def test_the_audit_api_is_for_owners_and_org_wide_keys(manager, staff, till, api, dana):
    for client in (logged_in(manager), logged_in(staff), till):
        response = client.get(AUDIT, {"customer": dana.pk})
        assert response.status_code == 403, response.content
        assert response.json()["error"] == "permission_denied"
    assert api.get(AUDIT, {"customer": dana.pk}).status_code == 200


@pytest.mark.parametrize(
    ("params", "field"),
    [({"customer": "abc"}, "customer"), ({"customer": "0"}, "customer"),
     ({"cursor": "nope"}, "cursor"), ({"page_size": "500"}, "page_size")],
)  # fmt: skip
def test_bad_audit_queries_are_400_naming_the_field(api, dana, params, field):
    response = api.get(AUDIT, params)
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == field


def test_another_orgs_customer_in_the_audit_query_is_404(api, other_org):
    theirs = CustomerFactory.create(organization=other_org)
    response = api.get(AUDIT, {"customer": theirs.pk})
    assert response.status_code == 404 and response.json()["errors"][0]["field"] == "customer"


def test_reads_of_another_organization_never_show(api, outsider, other_org, org):
    theirs = CustomerFactory.create(organization=other_org)
    IdentifierFactory(customer=theirs, organization=other_org)
    logged_in(outsider).get(f"/customers/{theirs.pk}/")
    assert ReadAudit.objects.filter(organization=other_org).count() == 1
    assert api.get(AUDIT).json()["results"] == []


def test_the_owners_audit_page_names_who_read_and_where(owner, org, till, dana, danny):
    owner.name = "Olive Owner"
    owner.save()
    till.get(SIDEBAR, {"customer": dana.pk})
    logged_in(owner).get("/customers/", {"q": "Quill"})
    page = logged_in(owner).get(f"/customers/{dana.pk}/audit/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "Olive Owner" in text and "API key “Main St till”" in text
    assert "Till sidebar" in text and "Search results" in text
    everyone = logged_in(owner).get("/audit/").content.decode()
    assert f'href="/customers/{danny.pk}/audit/"' in everyone


def test_the_customer_page_links_owners_to_its_audit(owner, manager, dana):
    link = f'href="/customers/{dana.pk}/audit/"'
    assert link in logged_in(owner).get(f"/customers/{dana.pk}/").content.decode()
    assert link not in logged_in(manager).get(f"/customers/{dana.pk}/").content.decode()


def test_the_audit_endpoint_is_in_the_schema(api):
    schema = api.get("/api/v1/schema/", {"format": "json"}).json()
    operation = schema["paths"]["/api/v1/audit/"]["get"]
    assert {p["name"] for p in operation["parameters"]} >= {"customer", "cursor", "page_size"}
    assert {"200", "400", "403", "404"} <= set(operation["responses"])


def test_an_episode_over_the_api_is_a_timeline_read(api, dana):
    episode_id = dana.episodes.get().pk
    assert api.get(f"/api/v1/episodes/{episode_id}/").status_code == 200
    row = only_read()
    assert (row.action, row.customer_ids) == ("timeline", [dana.pk])


def test_the_merge_page_records_every_customer_it_shows(owner, dana, danny):
    client = logged_in(owner)
    client.get(f"/customers/{dana.pk}/merge/", {"q": "Quill"})
    client.get(f"/customers/{dana.pk}/merge/", {"duplicate": danny.pk})
    rows = list(ReadAudit.objects.order_by("id").values_list("action", "customer_ids"))
    assert rows == [("page", [dana.pk, danny.pk]), ("page", [dana.pk, danny.pk])]


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/customers/{id}/",
        "/api/v1/customers/{id}/timeline/",
        "/api/v1/customers/?q=Quill",
        "/api/v1/sidebar/?customer={id}",
        "/customers/{id}/",
        "/customers/?q=Quill",
        "/pos/customers/{id}/",
        "/pos/lookup/?q=Quill",
    ],
)
def test_every_audited_read_costs_one_insert_and_nothing_else(owner, org_key, url, dana, danny):
    clients = {"api": key_client(org_key), "web": logged_in(owner)}
    client = clients["api" if url.startswith("/api/") else "web"]
    url = url.format(id=dana.pk)
    client.get(url)  # warm: sessions, key lookups, a till's first showing
    with override_settings(READ_AUDIT=False), CaptureQueriesContext(connection) as without:
        assert client.get(url).status_code == 200
    with CaptureQueriesContext(connection) as with_audit:
        assert client.get(url).status_code == 200
    plain = [q["sql"] for q in without.captured_queries]
    audited = [q["sql"] for q in with_audit.captured_queries]
    inserts = [sql for sql in audited if sql.startswith('INSERT INTO "cxcore_readaudit"')]
    assert len(inserts) == 1 and len(audited) == len(plain) + 1, (audited, plain)


@pytest.mark.django_db(transaction=True)
def test_a_read_alone_commits_its_audit_row_without_waiting_for_the_wal_flush(org, owner):
    """Most of the audit's cost on the till was its commit's flush: a read writes nothing
    else, so its row commits asynchronously; inside a caller's transaction it changes nothing
    of that transaction's durability."""
    from django.db import transaction

    from accounts.tenancy import tenant_for_user

    tenant = tenant_for_user(owner)
    assert tenant is not None
    customer = CustomerFactory.create(organization=org)
    with CaptureQueriesContext(connection) as alone:
        record_read(tenant=tenant, action=ReadAction.SIDEBAR, customer_ids=[customer.pk])
    (insert,) = alone.captured_queries  # one round trip
    assert "set_config('synchronous_commit', 'off', true)" in insert["sql"]
    with transaction.atomic(), CaptureQueriesContext(connection) as inside:
        record_read(tenant=tenant, action=ReadAction.SIDEBAR, customer_ids=[customer.pk])
    assert not any("synchronous_commit" in q["sql"] for q in inside.captured_queries)
    assert ReadAudit.objects.filter(customer_ids__contains=[customer.pk]).count() == 2
