"""Chunked request bodies (Transfer-Encoding: chunked, no Content-Length) are read under
gunicorn, held to the same size limit as any body, and refused with a 411 naming the header
where the server cannot de-chunk them (cxcore/chunked.py); never a misleading "empty" 400."""

from __future__ import annotations

import http.client
import io
import json
from collections.abc import Iterator

import pytest
from django.conf import settings

from accounts.services import create_api_key
from cxcore.chunked import ChunkedBodies
from cxcore.models import Episode
from tests.factories import LocationFactory, OrganizationFactory
from tests.gunicorn_server import gunicorn


def chunks(body: bytes, size: int = 7) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def post_chunked(server, path: str, body: bytes, headers: dict[str, str]):
    connection = http.client.HTTPConnection(server.host, server.port, timeout=30)
    try:
        # An iterable body with encode_chunked: http.client sends Transfer-Encoding: chunked
        # and no Content-Length, as a streaming POS client would.
        connection.request("POST", path, body=chunks(body), headers=headers, encode_chunked=True)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.mark.django_db(transaction=True)
def test_a_chunked_body_is_read_and_held_to_the_size_limit_under_gunicorn(tmp_path):
    org = OrganizationFactory.create(country="GB")
    location = LocationFactory.create(organization=org)
    _key, raw = create_api_key(organization=org, name="Till", location=location)
    headers = {"Authorization": f"Api-Key {raw}", "Content-Type": "application/json"}
    episode = {"customer": {"phone": "07400 765432", "name": "Chunky"}, "kind": "visit"}
    with gunicorn(tmp_path, access_log=False) as server:
        status, body = post_chunked(
            server, "/api/v1/episodes/", json.dumps(episode).encode(), headers
        )
        assert status == 201, body[:300]
        assert json.loads(body)["kind"] == "visit"

        status, body = post_chunked(server, "/api/v1/episodes/", b'{"customer": ', headers)
        assert status == 400, body[:300]
        assert b"JSON" in body and b"required" not in body  # the body's fault, not "empty"

        too_big = b'{"summary": "' + b"x" * settings.API_MAX_BODY_BYTES + b'"}'
        status, body = post_chunked(server, "/api/v1/episodes/", too_big, headers)
        assert status == 413, body[:300]
        assert json.loads(body)["errors"][0]["code"] == "too_large"
    assert Episode.objects.filter(customer__name="Chunky").count() == 1


def test_a_server_that_cannot_dechunk_answers_411_naming_the_header():
    """runserver (wsgiref) hands the raw chunked stream on and says nothing of it."""
    reached = []

    def app(environ, start_response):
        reached.append(environ)
        start_response("200 OK", [])
        return [b""]

    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/api/v1/episodes/",
        "HTTP_TRANSFER_ENCODING": "chunked",
        "wsgi.input": io.BytesIO(b"5\r\nhello\r\n0\r\n\r\n"),
    }
    started = []
    body = b"".join(
        ChunkedBodies(app, max_bytes=lambda: 100)(environ, lambda s, h: started.append((s, h)))
    )
    assert started[0][0] == "411 Length Required"
    error = json.loads(body)["errors"][0]
    assert error["field"] == "Transfer-Encoding" and error["code"] == "length_required"
    assert "Content-Length" in error["message"]
    assert not reached


def test_a_body_with_a_length_is_left_alone():
    seen = []

    def app(environ, start_response):
        seen.append(environ["wsgi.input"].read())
        start_response("200 OK", [])
        return [b""]

    environ = {"CONTENT_LENGTH": "2", "wsgi.input": io.BytesIO(b"{}")}
    list(ChunkedBodies(app, max_bytes=lambda: 100)(environ, lambda s, h: None))
    assert seen == [b"{}"]
