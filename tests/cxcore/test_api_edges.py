"""Edges of the API that once answered HTML or a 500, or that the schema and the API read
differently: an unmatched /api/ URL, a bug behind a view, dates far outside any cafe's history,
numbers where text belongs, prices, a spend past what the row holds."""

import pytest

from cxcore.models import Customer
from cxcore.rules import MAX_TOTAL_SPEND
from tests.conftest import key_client


def test_an_unmatched_api_url_answers_json_404(org_key):
    response = key_client(org_key).get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["error"] == "not_found"


def test_an_unmatched_page_still_answers_the_html_404(client, db):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"to": "0001-01-01"}, "to"),
        ({"from": "9999-12-01", "to": "9999-12-31"}, "from"),
        ({"from": "1999-12-31", "to": "2000-01-10"}, "from"),
        ({"from": "2100-12-01", "to": "2101-01-01"}, "to"),
    ],
)
def test_insights_dates_outside_2000_to_2100_are_a_400_naming_the_field(org_key, query, field):
    response = key_client(org_key).get("/api/v1/insights/summary/", query)
    assert response.status_code == 400, response.content[:300]
    assert response.json()["errors"][0]["field"] == field


def test_a_server_error_under_api_answers_json_500(org_key, monkeypatch):
    """A bug behind an API view is a 500 in the error shape, not Django's HTML page."""

    def broken(**kwargs):
        raise RuntimeError("a bug in the search")

    monkeypatch.setattr("cxcore.api.views.search_customers", broken)
    client = key_client(org_key)
    client.raise_request_exception = False  # answer as the server would, not raise in the test
    response = client.get("/api/v1/customers/", {"q": "Dan"})
    assert response.status_code == 500
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["errors"] == [{"field": None, "code": "server_error", "message": "Server error."}]
    assert "a bug in the search" not in response.content.decode()


def test_a_server_error_on_a_page_still_answers_the_html_500(client, owner, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("a bug in the search")

    monkeypatch.setattr("cxcore.views.search_box", broken)
    client.force_login(owner)
    client.raise_request_exception = False
    response = client.get("/customers/", {"q": "Dan"})
    assert response.status_code == 500
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize(
    ("customer", "field"),
    [
        ({"card": 4012}, "customer.card"),
        ({"pos_id": 77.5}, "customer.pos_id"),
        ({"card": "C-1", "name": 12}, "customer.name"),
    ],
)
def test_a_number_where_text_belongs_is_a_400_naming_the_field(org_key, customer, field):
    """The schema says string; DRF's CharField would have kept 4012 as "4012"."""
    body = {"customer": customer, "kind": "note"}
    response = key_client(org_key).post("/api/v1/episodes/", body, format="json")
    assert response.status_code == 400, response.content[:300]
    assert response.json()["errors"][0] == {
        "field": field,
        "code": "not_a_string",
        "message": "Must be a string.",
    }


def test_text_is_measured_as_sent_not_after_trimming(org_key):
    """maxLength counts what was sent: 128 characters and a space are too many for 128."""
    body = {"customer": {"card": "C-1"}, "kind": "note", "external_id": "x" * 128 + " "}
    response = key_client(org_key).post("/api/v1/episodes/", body, format="json")
    assert response.status_code == 400, response.content[:300]
    assert response.json()["errors"][0]["field"] == "external_id"


@pytest.mark.parametrize(
    ("price", "status"),
    [
        ("3.60", 201),
        (4, 201),
        (3.6, 400),  # a float is inexact for money
        ("+3", 400),
        ("-0", 400),
        (".5", 400),
        ("1e2", 400),
        (True, 400),
    ],
)
def test_a_price_is_text_like_3_60_or_a_whole_number(org_key, price, status):
    item = {"name": "Tea", "price": price}
    body = {"customer": {"card": "C-1"}, "kind": "order", "items": [item]}
    response = key_client(org_key).post("/api/v1/episodes/", body, format="json")
    assert response.status_code == status, response.content[:300]
    if status == 400:
        assert response.json()["errors"][0]["field"] == "items[0].price"


def test_a_spend_past_what_the_row_holds_saturates_instead_of_a_500(org_key):
    """100 lines of 10,000 at 99,999,999.99 is 10^14; the customer's total holds under 10^10."""
    item = {"name": "Gold leaf", "quantity": 10_000, "price": "99999999.99"}
    body = {"customer": {"card": "C-1"}, "kind": "order", "items": [item] * 100}
    response = key_client(org_key).post("/api/v1/episodes/", body, format="json")
    assert response.status_code == 201, response.content[:300]
    customer = Customer.objects.get(pk=response.json()["customer"])
    assert customer.total_spend == MAX_TOTAL_SPEND
