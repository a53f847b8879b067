"""Every answer carries the strict Content-Security-Policy, the Permissions-Policy, and (where it
could show a customer) `Cache-Control: no-store`; templates hold no inline code for the policy
to block. Routes come from the tenancy table (tests/cxcore/test_tenancy.py), which fails when a
route is missing from it, so a new page cannot slip past these tests either."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.http import HttpRequest, HttpResponse
from django.test import Client
from django.urls import path
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiKey, User
from cxcore import urls as project_urls
from cxcore.services import EpisodeInput, record_episode
from recovery.models import Playbook, RecoveryCase
from recovery.services import create_default_playbooks
from recovery.sweep import sweep_recovery
from tests.cxcore.test_tenancy import API, PAGE, ROUTES, our_actors, send

# What the test clients answer (Django's and DRF's add attributes of their own to responses).
Response = Any

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
PERMISSIONS = ("camera=()", "microphone=()", "geolocation=()", "payment=()", "usb=()")


def directives(response: Response) -> dict[str, list[str]]:
    header = response.headers.get("Content-Security-Policy")
    assert header, (response.status_code, dict(response.headers))
    parsed: dict[str, list[str]] = {}
    for part in header.split(";"):
        name, *values = part.split()
        assert name not in parsed, f"{name} twice in {header}"
        parsed[name] = values
    return parsed


def nonce_of(response: Response) -> str:
    nonces = [v for v in directives(response)["script-src"] if v.startswith("'nonce-")]
    assert len(nonces) == 1, directives(response)
    return nonces[0].removeprefix("'nonce-").removesuffix("'")


def assert_strict(response: Response, *, frame_ancestors: list[str] | None = None) -> None:
    """The policy of DESIGN.md's pages: our own origin only, scripts and styles by origin or
    by this answer's nonce, nothing inline, no plugins, not embeddable."""
    csp = directives(response)
    where = (response.status_code, response.get("Content-Type"))
    nonce = f"'nonce-{nonce_of(response)}'"
    assert csp["default-src"] == ["'self'"], where
    assert csp["script-src"] == ["'self'", nonce], where
    assert csp["style-src"] == ["'self'", nonce], where
    assert csp["img-src"] == ["'self'", "data:"], where
    assert csp["object-src"] == ["'none'"], where
    assert csp["base-uri"] == ["'self'"], where
    assert csp["form-action"] == ["'self'"], where
    assert csp["frame-ancestors"] == (frame_ancestors or ["'none'"]), where
    for values in csp.values():
        assert not {"'unsafe-inline'", "'unsafe-eval'", "'unsafe-hashes'", "*"} & set(values)
    policy = response.headers.get("Permissions-Policy", "")
    for feature in PERMISSIONS:
        assert feature in policy.split(", "), policy


def assert_no_store(response: Response) -> None:
    directives = [d.strip() for d in response.get("Cache-Control", "").split(",")]
    assert "no-store" in directives, (response.status_code, response.get("Cache-Control"))


INLINE = {
    "a <script> without src": re.compile(r"<script\b(?![^>]*\bsrc=)[^>]*>\s*\S", re.I),
    "a <style> block": re.compile(r"<style\b", re.I),
    "a style attribute": re.compile(r"<[a-z][^>]*\sstyle\s*=", re.I),
    "an on* handler": re.compile(r"<[a-z][^>]*\son[a-z]+\s*=", re.I),
}


def without_data_blocks(html: str) -> str:
    """A `<script type="application/json">` is data, never run: the policy does not apply."""
    return re.sub(r'<script\b[^>]*type="application/json"[^>]*>.*?</script>', "", html, flags=re.S)


def inline_code(html: str) -> list[str]:
    """What a strict policy would refuse to run or apply: inline scripts, styles, handlers."""
    html = without_data_blocks(html)
    found = []
    for what, pattern in INLINE.items():
        for match in pattern.finditer(html):
            found.append(f"{what}: {html[match.start() : match.start() + 120]!r}")
    return found


def assert_page_is_clean(response: Response) -> None:
    if "text/html" not in response.get("Content-Type", "") or response.streaming:
        return
    html = without_data_blocks(response.content.decode())
    assert inline_code(html) == []
    nonce = nonce_of(response)
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert "src=" in tag, tag
        if "nonce=" in tag:
            assert f'nonce="{nonce}"' in tag, (tag, nonce)


# --- our own objects, so each route answers as it does for real -----------------------------


@pytest.fixture
def our_world(org, main_st, harbour, org_key, owner) -> dict[str, int]:
    """Our customer with an open case (and the episode behind it), a duplicate to merge, a
    playbook and an API key: what the route table's names stand for, but ours."""
    now = timezone.now()
    create_default_playbooks(organization=org)
    complaint = record_episode(
        organization=org,
        data=EpisodeInput(
            kind="complaint",
            identifiers={"phone": "07400 222333"},
            name="Margaret",
            location=main_st,
            experience=-2,
            summary="The valet kept her waiting 45 minutes",
            touchpoints=[{"code": "parking_valet", "third_party": True}],
            occurred_at=now - timedelta(days=6),
        ),
    ).episode
    duplicate = record_episode(
        organization=org,
        data=EpisodeInput(kind="visit", identifiers={"email": "m@example.com"}, location=main_st),
    ).episode
    sweep_recovery(now=now)
    return {
        "customer": complaint.customer_id,
        "episode": complaint.pk,
        "case": RecoveryCase.objects.get(customer_id=complaint.customer_id).pk,
        "playbook": Playbook.objects.filter(organization=org).order_by("pk")[0].pk,
        "key": ApiKey.objects.get(organization=org).pk,
        "ours": duplicate.customer_id,
    }


def expected_ancestors(url: str, response: Response) -> list[str]:
    """The till's own answers may be framed; a 404 the till raised is Django's page, which is
    not (nothing to embed in it)."""
    till = url.startswith("/pos/") and response.status_code != 404
    return ["'self'"] if till else ["'none'"]


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_every_route_answers_with_the_strict_policy_as_each_of_its_users(request, name, our_world):
    """Each route as every member or key that may use it (with our own objects, so the real
    page or answer is built), and as an anonymous visitor (the login redirect, the 401)."""
    route = ROUTES[name]
    clients = our_actors(route, request) if route.kind in (PAGE, API) else []
    clients.append(APIClient() if route.kind == API else Client())
    for client in clients:
        client.raise_request_exception = False
        for call in route.calls:
            response = send(client, route, call, our_world)
            # /readyz is 503 here: no sweep has run in the test database.
            assert response.status_code < 500 or name == "readyz", (name, call, response)
            assert_strict(response, frame_ancestors=expected_ancestors(route.url, response))
            assert_no_store(response)
            assert_page_is_clean(response)


def test_the_till_may_be_framed_by_the_owners_origins_and_nothing_else_may(org, staff, client):
    """Through django-csp, not beside it: one Content-Security-Policy header, strict, with the
    owner's validated origins added to frame-ancestors on the till alone."""
    org.pos_embed_origins = "https://pos.example.com https://till.example.net"
    org.save()
    client.force_login(staff)
    response = client.get("/pos/")
    assert response.status_code == 200
    assert_strict(
        response,
        frame_ancestors=["'self'", "https://pos.example.com", "https://till.example.net"],
    )
    assert "X-Frame-Options" not in response.headers
    elsewhere = client.get("/customers/")
    assert_strict(elsewhere)
    assert elsewhere["X-Frame-Options"] == "DENY"


def test_each_answer_has_its_own_nonce_and_the_pages_scripts_carry_it(owner, client):
    client.force_login(owner)
    first, second = client.get("/customers/"), client.get("/pos/")
    assert nonce_of(first) != nonce_of(second)
    for response in (first, second):
        html = response.content.decode()
        assert f'src="/static/vendor/htmx.min.js" nonce="{nonce_of(response)}"' in html
        assert_page_is_clean(response)


def test_the_cached_policy_text_is_django_csps_own(settings):
    """cxcore.headers builds the policy's text once per replacement: it must be what
    django-csp would have written for that answer, and follow the setting when it changes."""
    from csp.utils import build_policy

    from cxcore.headers import NONCE_SLOT, policy_text

    def ours(replace: tuple = ()) -> dict[str, list[str]]:
        text = policy_text(replace).replace(NONCE_SLOT, "'nonce-abc'")
        return {p.split()[0]: p.split()[1:] for p in text.split("; ")}

    def theirs(replace: dict | None = None) -> dict[str, list[str]]:
        text = build_policy(replace=replace, nonce="abc")
        return {p.split()[0]: p.split()[1:] for p in text.split("; ")}

    assert ours() == theirs()
    framed = (("frame-ancestors", ("'self'", "https://pos.example.com")),)
    assert ours(framed) == theirs({"frame-ancestors": ["'self'", "https://pos.example.com"]})
    settings.CONTENT_SECURITY_POLICY = {"DIRECTIVES": {"default-src": ["'none'"]}}
    assert ours() == theirs() == {"default-src": ["'none'"]}


def test_htmx_is_told_to_need_neither_eval_nor_inline_styles(owner, client):
    """htmx's indicator rule would be an inline <style>, and hx-on/js: values need eval:
    the pages' htmx-config turns both off (and scripts in swapped-in fragments)."""
    client.force_login(owner)
    for url in ("/customers/", "/pos/"):
        html = client.get(url).content.decode()
        config = re.search(r"<meta name=\"htmx-config\" content='([^']*)'>", html)
        assert config, url
        for setting in ('"includeIndicatorStyles": false', '"allowEval": false'):
            assert setting in config.group(1).replace('":false', '": false'), (url, setting)
        assert '"allowScriptTags": false' in config.group(1).replace('":false', '": false')
        # htmx copies `style` between old and new elements with setAttribute, which the policy
        # refuses (seen in the browser tests): it settles the other attributes only.
        settled = re.search(r'"attributesToSettle": ?\[([^\]]*)\]', config.group(1))
        assert settled and "style" not in settled.group(1), url


def test_the_browsable_api_carries_the_policy_and_needs_nothing_inline(owner, our_world):
    """DRF's HTML pages, as a signed-in browser sees them (templates/rest_framework/api.html
    drops DRF's inline style block)."""
    client = Client()
    client.force_login(owner)
    for url in (
        "/api/v1/customers/",
        f"/api/v1/customers/{our_world['customer']}/",
        "/api/v1/cases/",
        f"/api/v1/cases/{our_world['case']}/",
        "/api/v1/episodes/",
    ):
        response = client.get(url, HTTP_ACCEPT="text/html")
        assert response.status_code in (200, 405), url
        assert response["Content-Type"].startswith("text/html"), url
        assert_strict(response)
        assert_no_store(response)
        assert_page_is_clean(response)


# --- error pages, the admin, the API docs, health and static files ---------------------------


def boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("a bug")


# This module is the URLconf of the error-page test: the project's routes and error handlers,
# and a view that fails.
urlpatterns = [path("boom/", boom), path("api/v1/boom/", boom), *project_urls.urlpatterns]
handler404 = project_urls.handler404
handler500 = project_urls.handler500


@pytest.mark.urls(__name__)
def test_error_pages_carry_the_policy_too(db, owner, staff):
    client = Client(raise_request_exception=False)
    for url, status in (("/boom/", 500), ("/api/v1/boom/", 500), ("/nowhere/", 404)):
        response = client.get(url)
        assert response.status_code == status, url
        assert_strict(response)
        assert_no_store(response)
        assert_page_is_clean(response)
    assert client.get("/api/v1/nowhere/").json()["error"] == "not_found"
    client.force_login(staff)
    refused = client.get("/recovery/")  # the 403 page of a member without the role
    assert refused.status_code == 403
    assert_strict(refused)
    assert_page_is_clean(refused)


def test_a_form_without_its_csrf_token_gets_our_page_not_djangos_inline_styled_one(db):
    response = Client(enforce_csrf_checks=True).post("/accounts/login/", {"username": "x"})
    assert response.status_code == 403
    assert_strict(response)
    assert_page_is_clean(response)
    assert "reload the page" in response.content.decode()


@pytest.fixture
def superuser_client(db) -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("root@example.com", "pw-for-tests-1"))
    return client


def test_the_admin_carries_the_policy_and_needs_nothing_inline(superuser_client, org, our_world):
    """Every model's list and add page, and the first object's page: a ModelAdmin without
    actions would make Django write an inline style block into its list, for example."""
    from django.contrib import admin
    from django.urls import reverse

    urls = ["/admin/"]
    for model, model_admin in admin.site._registry.items():
        meta = model._meta
        urls.append(reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"))
        urls.append(reverse(f"admin:{meta.app_label}_{meta.model_name}_add"))
        first = model_admin.get_queryset(HttpRequest()).first()
        if first is not None:
            urls.append(
                reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[first.pk])
            )
    for url in urls:
        response = superuser_client.get(url)
        assert response.status_code in (200, 403), url  # 403: an add page the admin forbids
        assert_strict(response)
        assert_no_store(response)
        assert_page_is_clean(response)
    login = Client().get("/admin/login/")
    assert_strict(login)
    assert_page_is_clean(login)


def test_the_api_docs_load_their_script_from_a_url_not_inline(client):
    page = client.get("/api/docs/")
    assert page.status_code == 200
    assert_strict(page)
    assert_page_is_clean(page)
    html = page.content.decode()
    assert "/static/css/api_docs.css" in html
    script_url = re.findall(r'<script src="(/api/docs/\?[^"]*script[^"]*)"', html)
    assert script_url, html
    script = client.get(script_url[0].replace("&amp;", "&"))
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle" in script.content.decode()
    assert "/api/v1/schema/" in script.content.decode()


def test_health_probes_carry_the_policy(db, client):
    for url in ("/healthz", "/readyz"):
        response = client.get(url)
        assert_strict(response)
        assert_no_store(response)


def test_static_files_keep_their_own_caching(db, settings):
    """Static files have no customer in them: WhiteNoise's caching stays (the no-store rule is
    for what views answer), and they carry the policy like everything else."""
    settings.WHITENOISE_USE_FINDERS = True  # read when a new client builds the middleware
    response = Client().get("/static/css/app.css")
    assert response.status_code == 200
    assert "public" in response["Cache-Control"] and "no-store" not in response["Cache-Control"]
    assert_strict(response)


# --- the templates themselves -----------------------------------------------------------------


def test_no_template_holds_inline_scripts_styles_or_handlers():
    """Moved to static/js and static/css: a strict policy blocks them, so they would silently
    stop working. A <script src=… nonce=…> is fine."""
    found = {}
    for template in sorted(TEMPLATES.rglob("*.html")):
        problems = inline_code(template.read_text())
        if problems:
            found[str(template.relative_to(TEMPLATES))] = problems
    assert found == {}


def test_the_inline_code_check_finds_what_it_is_for():
    """The check above cannot pass by finding nothing."""
    assert len(inline_code("<script>alert(1)</script>")) == 1
    assert len(inline_code('<td style="color:red">')) == 1
    assert len(inline_code("<style>p{}</style>")) == 1
    assert len(inline_code('<input onchange="this.form.submit()">')) == 1
    assert inline_code('<script src="/static/x.js" nonce="abc" defer></script>') == []
    assert inline_code('<script type="application/json" id="d">{"a": 1}</script>') == []
    assert inline_code("<p>Carry on=regardless; style=none</p>") == []
