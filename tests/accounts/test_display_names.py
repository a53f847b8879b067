"""People are named by their display name (their name, else their email) wherever pages show
them; each edits their own at /accounts/profile/."""

from __future__ import annotations

from django.test import Client

from accounts.models import User
from cxcore.services import EpisodeInput, record_episode


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_member_sets_their_name_and_the_top_bar_shows_it(owner):
    client = logged_in(owner)
    page = client.get("/accounts/profile/")
    assert page.status_code == 200 and '<label for="id_name">' in page.content.decode()
    assert owner.email in client.get("/customers/").content.decode()  # no name yet: the email

    response = client.post("/accounts/profile/", {"name": "  Sam Barista  "})
    assert response.status_code == 302
    owner.refresh_from_db()
    assert owner.name == "Sam Barista" and owner.display_name == "Sam Barista"
    assert 'href="/accounts/profile/" title="Your profile">Sam Barista</a>' in (
        client.get("/customers/").content.decode()
    )


def test_a_bad_name_is_refused_next_to_the_field(owner):
    for name in ("Sam\u202eBarista", "Sam\nBarista", "x" * 151):
        response = logged_in(owner).post("/accounts/profile/", {"name": name})
        assert response.status_code == 400, name
        assert 'id="id_name_error"' in response.content.decode()
    assert User.objects.get(pk=owner.pk).name == ""


def test_the_customer_page_names_who_logged_an_episode_by_display_name(org, main_st, staff, owner):
    User.objects.filter(pk=staff.pk).update(name="Dana Till")
    staff.refresh_from_db()
    customer_id = record_episode(
        organization=org,
        data=EpisodeInput(
            kind="note", identifiers={"phone": "07400 111111"}, location=main_st, summary="Oat"
        ),
        author_user=staff,
    ).episode.customer_id
    body = logged_in(owner).get(f"/customers/{customer_id}/").content.decode()
    assert "by Dana Till" in body
    assert f"by {staff.email}" not in body
