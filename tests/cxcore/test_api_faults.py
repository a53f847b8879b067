"""The API when the database goes away: a JSON 503 with Retry-After, never Django's HTML 500."""

import socket

import pytest
from django.db import connection

from tests.conftest import key_client

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def database_gone():
    """Point this process's connection at a port nothing listens on, then put it back."""

    def go():
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            dead = s.getsockname()[1]
        connection.close()
        connection.settings_dict["PORT"] = str(dead)

    port = connection.settings_dict["PORT"]
    yield go
    connection.close()
    connection.settings_dict["PORT"] = port


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", "/api/v1/sidebar/?phone=07400900555", None),
        ("post", "/api/v1/episodes/", {"customer": {"card": "C-1"}, "kind": "visit"}),
        ("get", "/api/v1/cases/", None),
    ],
)
def test_a_lost_database_answers_json_503_with_retry_after(
    org_key, database_gone, method, path, body
):
    client = key_client(org_key)
    database_gone()
    response = getattr(client, method)(path, body, format="json") if body else client.get(path)
    assert response.status_code == 503
    assert response["Content-Type"].startswith("application/json")
    assert response["Retry-After"] == "5"
    assert response.json()["errors"][0]["code"] == "database_unavailable"
