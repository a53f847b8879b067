"""Edges of the API that once answered HTML or a 500: an unmatched /api/ URL, and dates far
outside any cafe's history."""

import pytest

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
