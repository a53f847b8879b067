"""The accounts' own emails keep to the strict email rule (accounts.validators): the login
form, the admin's user forms and `create_org` refuse one that could spoof."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from accounts.models import User
from accounts.validators import email_problem

RLO = "\u202e"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("ana@example.com", None),
        ('"a@b"@example.com', "it needs exactly one @"),
        (f"ana@exa{RLO}mple.com", "it holds a text direction control (U+202E)"),
        ("ana@localhost", ""),
        ("not an email", "it needs exactly one @"),
    ],
)
def test_the_email_rule(value, problem):
    assert email_problem(value) == problem


@pytest.mark.django_db
def test_the_admin_refuses_a_members_email_that_could_spoof():
    root = User.objects.create_superuser("root@example.com", "pw-for-tests-1")
    client = Client()
    client.force_login(root)
    response = client.post(
        "/admin/accounts/user/add/",
        {"email": f"ana@exa{RLO}mple.com", "password1": "pw-Long-enough-1",
         "password2": "pw-Long-enough-1"},
    )  # fmt: skip
    assert response.status_code == 200
    assert "Enter a valid email address" in response.content.decode()
    assert not User.objects.filter(email__contains="ana").exists()


@pytest.mark.django_db
def test_create_org_refuses_such_an_owner_email():
    with pytest.raises(CommandError, match="Enter a valid email address"):
        call_command("create_org", "Cafe", "--owner-email", '"a@b"@example.com')
    assert not User.objects.exists()


@pytest.mark.django_db
def test_the_login_form_says_the_email_is_not_one():
    response = Client().post(
        "/accounts/login/", {"username": f"ana@exa{RLO}mple.com", "password": "x"}
    )
    assert response.status_code == 200
    assert "Enter a valid email address" in response.content.decode()
