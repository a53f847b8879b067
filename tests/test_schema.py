"""The OpenAPI schema is valid and warning-free, and the docs page renders."""

import re
from urllib.parse import urlparse

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

# Hosts the docs page may load assets from when it does not serve them itself.


def test_the_schema_is_an_openapi_3_document(api):
    response = api.get("/api/v1/schema/", {"format": "json"})
    assert response.status_code == 200
    assert "openapi" in response["Content-Type"]
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert schema["info"]["title"] == "Comeback API"
    paths = schema["paths"]
    for path in (
        "/api/v1/episodes/",
        "/api/v1/episodes/bulk/",
        "/api/v1/customers/",
        "/api/v1/customers/{id}/timeline/",
        "/api/v1/locations/",
    ):
        assert path in paths, path
    assert "post" in paths["/api/v1/episodes/"]


def test_the_schema_in_yaml_by_default(api):
    response = api.get("/api/v1/schema/")
    assert response.status_code == 200
    assert response.content.startswith(b"openapi: 3.")


@pytest.mark.django_db
def test_the_schema_validates_without_warnings(tmp_path, capsys):
    target = tmp_path / "schema.yaml"
    try:
        call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    except CommandError as exc:
        pytest.fail(f"{exc}:\n{capsys.readouterr().err}")
    warnings = capsys.readouterr().err
    assert "Warning" not in warnings and "Error" not in warnings, warnings
    assert target.read_text().startswith("openapi: 3.")


def test_the_schema_documents_the_api_key_authentication(api):
    """Swagger UI's Authorize button needs the scheme clients use: `Authorization: Api-Key`."""
    schema = api.get("/api/v1/schema/", {"format": "json"}).json()
    schemes = schema.get("components", {}).get("securitySchemes", {})
    api_key_schemes = [
        name
        for name, scheme in schemes.items()
        if scheme.get("type") == "apiKey"
        and scheme.get("in") == "header"
        and scheme.get("name") == "Authorization"
    ]
    assert api_key_schemes, schemes
    operation = schema["paths"]["/api/v1/episodes/"]["post"]
    assert any(api_key_schemes[0] in requirement for requirement in operation["security"])


def test_the_api_docs_page_works_offline_from_our_static_files(db):
    response = Client().get("/api/docs/")
    assert response.status_code == 200
    body = response.content.decode()
    assert 'id="swagger-ui"' in body
    assets = re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', body)
    assert assets, "the page loads Swagger UI"
    print("\n/api/docs/ loads:", *assets, sep="\n  ")
    # Swagger UI's start-up script comes from the docs view itself (?script=: the CSP refuses
    # inline scripts); everything else from our static files.
    script = [asset for asset in assets if urlparse(asset).path == "/api/docs/"]
    assert len(script) == 1, assets
    for asset in assets:
        url = urlparse(asset)
        assert not url.netloc and (asset.startswith("/static/") or asset in script), asset
    start_up = Client().get(script[0].replace("&amp;", "&")).content.decode()
    assert "/api/v1/schema/" in start_up  # points Swagger UI at the local schema


def operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def error_schema_of(schema, response):
    if "$ref" in response:
        response = schema["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    return response["content"]["application/json"]["schema"]


def test_every_operation_documents_the_errors_its_machinery_answers(api):
    """401, 403 and 503 anywhere; 404 with an id in the path; 400, 413 and 415 with a body:
    each in the error body (cxcore.api.errors.error_body), which schemathesis then holds to."""
    schema = api.get("/api/v1/schema/", {"format": "json"}).json()
    error = {"$ref": "#/components/schemas/ErrorBodySchema"}
    for path, method, operation in operations(schema):
        responses = operation["responses"]
        expected = {"401", "403", "503"}
        if "{" in path:
            expected.add("404")
        if "requestBody" in operation:
            expected |= {"400", "413", "415"}
        assert expected <= set(responses), (method, path, sorted(responses))
        for code, response in responses.items():
            if code >= "400":
                assert error_schema_of(schema, response) == error, (method, path, code)
    unavailable = schema["components"]["responses"]["Unavailable"]
    assert "Retry-After" in unavailable["headers"]


def test_idempotent_writes_document_the_key_and_what_it_refuses(api):
    schema = api.get("/api/v1/schema/", {"format": "json"}).json()
    for path in ("/api/v1/episodes/", "/api/v1/episodes/bulk/", "/api/v1/visits/"):
        operation = schema["paths"][path]["post"]
        (header,) = [p for p in operation["parameters"] if p["name"] == "Idempotency-Key"]
        assert header["in"] == "header" and header["schema"]["maxLength"] == 255
        assert {"409", "422"} <= set(operation["responses"]), path
        for code, response in operation["responses"].items():
            if code.startswith("2"):
                assert "Idempotent-Replayed" in response["headers"], (path, code)


def test_lists_are_documented_as_the_objects_they_answer(api, org):
    """GET /customers/ and /locations/ answer {"results": [...]}, not a bare array."""
    schema = api.get("/api/v1/schema/", {"format": "json"}).json()
    components = schema["components"]["schemas"]
    for path in ("/api/v1/customers/", "/api/v1/locations/"):
        documented = schema["paths"][path]["get"]["responses"]["200"]
        ref = documented["content"]["application/json"]["schema"]["$ref"]
        shape = components[ref.rsplit("/", 1)[1]]
        assert shape["type"] == "object" and shape["properties"]["results"]["type"] == "array"
        answer = api.get(path, {"q": "Dan"} if "customers" in path else {}).json()
        assert set(answer) == set(shape["properties"]), path


def test_what_may_be_null_or_blank_is_documented_so(api):
    """The fields the review found null or "" where the schema forbade it."""
    components = api.get("/api/v1/schema/", {"format": "json"}).json()["components"]["schemas"]
    for name, field in [
        ("Case", "assignee"),
        ("Case", "playbook"),
        ("Case", "location"),
        ("CaseEvent", "location"),
        ("Episode", "location"),
    ]:
        assert components[name]["properties"][field].get("nullable"), (name, field)
    source = components["Episode"]["properties"]["experience_source"]
    assert {"$ref": "#/components/schemas/BlankEnum"} in source["oneOf"]


def test_operations_never_show_a_docstring_the_view_inherits(api):
    """A view without a docstring of its own would show its base's (TenantAPIMixin's, meant for
    our developers) as the operation's description in the API docs."""
    schema = api.get("/api/v1/schema/?format=json").json()
    described = {}
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            described[f"{method.upper()} {path}"] = operation.get("description", "")
    leaking = {label for label, text in described.items() if "Base for every" in text}
    assert not leaking
    assert described["POST /api/v1/episodes/bulk/"]  # a view's own docstring still shows
