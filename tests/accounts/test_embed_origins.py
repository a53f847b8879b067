"""The POS-embedding origins are origins, on every write path (accounts/validators.py): they
go into the till's Content-Security-Policy header, where anything else would rewrite it."""

from __future__ import annotations

import pytest
from django.contrib.admin.sites import site
from django.core.exceptions import ValidationError
from django.forms.models import model_to_dict
from django.test import Client

from accounts.errors import InvalidInput
from accounts.models import Organization, User
from accounts.services import set_pos_embed_origins
from accounts.validators import embed_origin, embed_origins, valid_embed_origins
from tests.cxcore.test_tenancy import page_client

GOOD = [
    ("https://pos.example.com", "https://pos.example.com"),
    ("https://pos.example.com/", "https://pos.example.com"),
    ("HTTPS://POS.Example.COM", "https://pos.example.com"),
    ("https://pos.example.com:8443", "https://pos.example.com:8443"),
    ("https://10.0.0.7", "https://10.0.0.7"),
    ("https://[2001:db8::1]:8443", "https://[2001:db8::1]:8443"),
    ("http://localhost:8000", "http://localhost:8000"),
    ("http://127.0.0.1:3000", "http://127.0.0.1:3000"),
    ("https://kaffee-bäckerei.de", "https://xn--kaffee-bckerei-dib.de"),
]
BAD = [
    ("pos.example.com", "scheme"),
    ("https://", "host"),
    ("ftp://pos.example.com", "https"),
    ("http://pos.example.com", "http only for localhost"),
    ("https://pos.example.com/till", "without a path"),
    ("https://pos.example.com?x=1", "query"),
    ("https://pos.example.com#top", "fragment"),
    ("https://pos.example.com;script-src", "';'"),
    ("https://pos.example.com,https://evil.example", "','"),
    ("https://*.example.com", "wildcards"),
    ("*", "wildcards"),
    ("https://user@pos.example.com", "credentials"),
    ("https://pos.example.com:0", "port"),
    ("https://pos.example.com:99999", "port"),
    ("https://pos.example.com:", "host"),
    ("https://pos.example.com:80a", "port"),
    ("https://-pos.example.com", "host name"),
    ("https://pos..example.com", "host name"),
    ("https://1.2.3", "host name"),
    ("https://[::1", "host"),
    ("'self'", "quotes"),
    ("https://pos.example.com\x00", "control"),
    ("https://pos.exam\u202eple.com", "host name"),
]


@pytest.mark.parametrize(("text", "origin"), GOOD)
def test_an_origin_is_kept_in_its_normal_form(text, origin):
    assert embed_origin(text) == origin


@pytest.mark.parametrize(("text", "problem"), BAD)
def test_anything_but_an_origin_is_refused_saying_why(text, problem):
    with pytest.raises(ValidationError) as caught:
        embed_origin(text)
    message = caught.value.messages[0]
    assert "is not an origin like https://pos.example.com" in message
    assert problem in message, message


def test_several_origins_one_per_line_duplicates_dropped():
    text = "https://a.example.com\n  https://b.example.com https://A.example.com/\n"
    assert embed_origins(text) == "https://a.example.com\nhttps://b.example.com"
    assert embed_origins("  \n ") == ""


def test_at_most_twenty_origins():
    many = " ".join(f"https://t{i}.example.com" for i in range(21))
    with pytest.raises(ValidationError, match="At most 20"):
        embed_origins(many)


def test_the_header_gets_only_the_valid_origins_of_an_old_row():
    stored = "https://ok.example.com\nhttps://x.example.com;script-src *\n*"
    assert valid_embed_origins(stored) == ["https://ok.example.com"]


@pytest.mark.django_db
def test_the_service_refuses_a_bad_origin_naming_the_field_and_saves_nothing(org):
    set_pos_embed_origins(organization=org, origins="https://pos.example.com")
    with pytest.raises(InvalidInput) as caught:
        set_pos_embed_origins(organization=org, origins="https://pos.example.com;sandbox")
    assert caught.value.field == "origins"
    org.refresh_from_db()
    assert org.pos_embed_origins == "https://pos.example.com"


@pytest.mark.django_db
def test_the_owners_form_refuses_a_bad_origin_and_keeps_the_old_ones(owner, org):
    set_pos_embed_origins(organization=org, origins="https://pos.example.com")
    client = page_client(owner)
    response = client.post(
        "/accounts/pos-embedding/",
        {"origins": "https://x.example.com 'unsafe-inline'"},
        follow=True,
    )
    assert "is not an origin like https://pos.example.com" in response.content.decode()
    org.refresh_from_db()
    assert org.pos_embed_origins == "https://pos.example.com"
    client.post("/accounts/pos-embedding/", {"origins": "HTTPS://New.Example.com/"})
    org.refresh_from_db()
    assert org.pos_embed_origins == "https://new.example.com"


@pytest.mark.django_db
def test_the_admin_refuses_a_bad_origin(org):
    root = User.objects.create_superuser("root@example.com", "pw-for-tests-1")
    client = Client()
    client.force_login(root)
    data = {k: v for k, v in model_to_dict(org).items() if v is not None}
    data.update(
        {
            "pos_embed_origins": "https://pos.example.com; script-src *",
            # the locations inline's management form (no rows changed)
            "locations-TOTAL_FORMS": "0",
            "locations-INITIAL_FORMS": "0",
        }
    )
    assert Organization in site._registry
    response = client.post(f"/admin/accounts/organization/{org.pk}/change/", data)
    assert response.status_code == 200  # the form again, with its error
    assert "is not an origin like https://pos.example.com" in response.content.decode()
    org.refresh_from_db()
    assert org.pos_embed_origins == ""


@pytest.mark.django_db
def test_the_till_header_never_carries_a_bad_stored_origin(staff, org):
    Organization.objects.filter(pk=org.pk).update(
        pos_embed_origins="https://pos.example.com\nhttps://evil.example;script-src *"
    )
    response = page_client(staff).get("/pos/")
    policy = response["Content-Security-Policy"]
    assert "https://pos.example.com" in policy
    assert "evil" not in policy and "script-src *" not in policy
