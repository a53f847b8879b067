"""The team pages (accounts/team_views.py): who may see and change what, bad input, another
organization's members and invitations, the invitation link, and the history."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from accounts.models import Invitation, Membership, Role, TeamAction, TeamEvent, User
from accounts.services import add_member, record_team_event
from accounts.services.team import deactivate_member, invite_member
from accounts.team_views import HISTORY_PAGE_SIZE
from tests.factories import UserFactory

PASSWORD = "a-long-espresso-9"


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def text(response) -> str:
    return response.content.decode()


@pytest.fixture
def bea_invited(org, owner):
    return invite_member(organization=org, actor=owner, email="bea@example.com", role="staff")


def test_owner_sees_members_invitations_the_form_and_history(owner, staff, bea_invited):
    page = client_for(owner).get("/settings/team/")
    assert page.status_code == 200
    body = text(page)
    assert staff.email in body and "bea@example.com" in body
    assert 'id="invite-form"' in body and "Resend to bea@example.com" in body
    assert "Invited" in body  # the history line


def test_managers_read_the_team_page_without_forms(manager, staff, bea_invited):
    page = client_for(manager).get("/settings/team/")
    assert page.status_code == 200
    body = text(page)
    assert staff.email in body and "bea@example.com" in body
    assert 'id="invite-form"' not in body and "Resend" not in body and "Edit " not in body


def test_a_manager_cannot_invite_not_even_an_owner(manager, org):
    response = client_for(manager).post(
        "/settings/team/", {"email": "x@example.com", "role": "owner"}
    )
    assert response.status_code == 403
    assert "for owners" in text(response)
    assert not Invitation.objects.exists()


def test_staff_get_the_403_page(staff):
    response = client_for(staff).get("/settings/team/")
    assert response.status_code == 403 and "for owners and managers" in text(response)


def test_owner_invites_and_the_email_goes_out_after_commit(
    owner, org, main_st, settings, django_capture_on_commit_callbacks
):
    settings.SITE_URL = "https://cafe.example.com"
    client = client_for(owner)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/settings/team/",
            {"email": "Bea@Example.com", "role": "staff", "locations": [main_st.pk]},
        )
    assert response.status_code == 302
    invitation = Invitation.objects.get()
    assert (invitation.email, list(invitation.locations.all())) == ("bea@example.com", [main_st])
    (message,) = mail.outbox
    assert "https://cafe.example.com/accounts/invitations/" in message.body
    follow = client.get("/settings/team/")
    assert "Sent an invitation to bea@example.com." in text(follow)


def test_inviting_again_says_the_earlier_link_is_replaced(owner, bea_invited):
    client = client_for(owner)
    client.post("/settings/team/", {"email": "bea@example.com", "role": "manager"})
    assert "the earlier link no longer works" in text(client.get("/settings/team/"))


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"email": "not-an-email", "role": "staff"}, "email"),
        ({"email": "bea\u202e@example.com", "role": "staff"}, "email"),
        ({"email": "bea@example.com", "role": "admin"}, "role"),
        ({"email": "bea@example.com", "role": "staff", "locations": ["999999"]}, "locations"),
    ],
)
def test_bad_invite_input_is_400_next_to_the_field_and_changes_nothing(owner, data, field):
    response = client_for(owner).post("/settings/team/", data)
    assert response.status_code == 400
    assert f'id="id_{field}_error"' in text(response) or (
        field == "locations" and "field-error" in text(response)
    )
    assert not Invitation.objects.exists() and not TeamEvent.objects.exists()


def test_inviting_a_member_names_the_email(owner, staff):
    response = client_for(owner).post("/settings/team/", {"email": staff.email, "role": "staff"})
    assert response.status_code == 400
    assert "already a member" in text(response) and 'id="id_email_error"' in text(response)


def test_another_locations_of_another_organization_cannot_be_ticked(owner, other_location):
    response = client_for(owner).post(
        "/settings/team/",
        {"email": "x@example.com", "role": "staff", "locations": [other_location.pk]},
    )
    assert response.status_code == 400
    assert not Invitation.objects.exists()


def test_another_organizations_members_and_invitations_are_404(owner, outsider, other_org):
    theirs = Membership.objects.get(user=outsider)
    second = UserFactory.create()
    add_member(organization=other_org, user=second, role=Role.STAFF)
    their_invitation = invite_member(
        organization=other_org, actor=outsider, email="z@example.com", role="staff"
    ).invitation
    client = client_for(owner)
    their_member = Membership.objects.get(user=second)
    assert client.get(f"/settings/team/members/{theirs.pk}/").status_code == 404
    assert client.post(f"/settings/team/members/{theirs.pk}/", {"role": "staff"}).status_code == 404
    for action in ("deactivate", "reactivate"):
        url = f"/settings/team/members/{their_member.pk}/{action}/"
        assert client.post(url).status_code == 404
    for action in ("resend", "revoke"):
        url = f"/settings/team/invitations/{their_invitation.pk}/{action}/"
        assert client.post(url).status_code == 404
    their_member.refresh_from_db()
    their_invitation.refresh_from_db()
    assert their_member.is_active and their_invitation.revoked_at is None
    assert theirs.role == Role.OWNER
    assert not TeamEvent.objects.filter(organization=other_org).exclude(action="invited").exists()


def test_owner_changes_role_and_limits_and_the_history_says_so(owner, staff, org, harbour):
    member = Membership.objects.get(user=staff, organization=org)
    client = client_for(owner)
    assert client.get(f"/settings/team/members/{member.pk}/").status_code == 200
    response = client.post(
        f"/settings/team/members/{member.pk}/", {"role": "manager", "locations": [harbour.pk]}
    )
    assert response.status_code == 302
    member.refresh_from_db()
    assert member.role == "manager" and list(member.locations.all()) == [harbour]
    body = text(client.get("/settings/team/"))
    assert "Changed a role" in body and "staff → manager" in body
    assert "Changed location limits" in body and "Main St → Harbour Rd" in body


def test_the_last_owner_cannot_demote_themselves_409_with_the_reason(owner, org):
    mine = Membership.objects.get(user=owner, organization=org)
    response = client_for(owner).post(f"/settings/team/members/{mine.pk}/", {"role": "staff"})
    assert response.status_code == 409
    assert "needs an owner" in text(response)
    mine.refresh_from_db()
    assert mine.role == Role.OWNER


def test_deactivate_and_reactivate_from_the_member_page(owner, staff, org):
    member = Membership.objects.get(user=staff, organization=org)
    barista = client_for(staff)
    assert barista.get("/pos/").status_code == 200
    owner_client = client_for(owner)
    assert owner_client.post(f"/settings/team/members/{member.pk}/deactivate/").status_code == 302
    assert barista.get("/pos/").status_code in (302, 404)
    assert owner_client.post(f"/settings/team/members/{member.pk}/reactivate/").status_code == 302
    assert client_for(staff).get("/pos/").status_code == 200
    body = text(owner_client.get("/settings/team/"))
    assert "Deactivated a member" in body and "Reactivated a member" in body


def test_deactivating_the_last_owner_says_why(owner, org):
    mine = Membership.objects.get(user=owner, organization=org)
    client = client_for(owner)
    response = client.post(f"/settings/team/members/{mine.pk}/deactivate/", follow=True)
    assert "needs an owner" in text(response)
    mine.refresh_from_db()
    assert mine.is_active


def test_resend_and_revoke_from_the_team_page(owner, bea_invited):
    client = client_for(owner)
    pk = bea_invited.invitation.pk
    assert client.post(f"/settings/team/invitations/{pk}/resend/").status_code == 302
    assert Client().get(f"/accounts/invitations/{bea_invited.raw_token}/").status_code == 410
    assert client.post(f"/settings/team/invitations/{pk}/revoke/").status_code == 302
    assert (
        client.post(f"/settings/team/invitations/{pk}/revoke/").status_code == 302
    )  # again: no-op
    assert list(TeamEvent.objects.values_list("action", flat=True).order_by("id")) == [
        "invited", "invite_resent", "invite_revoked",
    ]  # fmt: skip


# --- the invitation link -------------------------------------------------------------------


def test_a_new_person_joins_through_the_link(org, bea_invited):
    client = Client()
    url = f"/accounts/invitations/{bea_invited.raw_token}/"
    page = client.get(url)
    assert page.status_code == 200 and "Join Corner Cup" in text(page)
    assert page["Cache-Control"].startswith("max-age=0") or "no-cache" in page["Cache-Control"]
    response = client.post(
        url, {"name": "Bea Barista", "password": PASSWORD, "password_again": PASSWORD}
    )
    assert response.status_code == 302 and response["Location"] == "/pos/"
    assert client.get("/pos/").status_code == 200  # signed in, in the organization
    assert User.objects.get(email="bea@example.com").name == "Bea Barista"
    assert Client().get(url).status_code == 410  # used


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"name": "Bea", "password": "short", "password_again": "short"}, "password"),
        ({"name": "Bea", "password": PASSWORD, "password_again": PASSWORD + "x"}, "password_again"),
        ({"name": "", "password": PASSWORD, "password_again": PASSWORD}, "name"),
        ({"name": "Bea\u202e", "password": PASSWORD, "password_again": PASSWORD}, "name"),
    ],
)
def test_bad_join_input_is_400_and_the_link_still_works(bea_invited, data, field):
    url = f"/accounts/invitations/{bea_invited.raw_token}/"
    response = Client().post(url, data)
    assert response.status_code == 400
    assert f'id="id_{field}_error"' in text(response)
    assert not User.objects.filter(email="bea@example.com").exists()
    assert Client().get(url).status_code == 200


def test_every_dead_link_is_the_same_410_page(org, owner):
    now = timezone.now()
    expired = invite_member(organization=org, actor=owner, email="a@example.com", role="staff",
                            now=now - timedelta(days=8))  # fmt: skip
    revoked = invite_member(organization=org, actor=owner, email="b@example.com", role="staff")
    Invitation.objects.filter(pk=revoked.invitation.pk).update(revoked_at=now)
    pages = [
        Client().get(f"/accounts/invitations/{token}/")
        for token in (expired.raw_token, revoked.raw_token, "unknown-token")
    ]
    assert {page.status_code for page in pages} == {410}
    # Nothing says which (the page's nonce and CSRF token aside).
    assert len({text(page).partition("<main")[2] for page in pages}) == 1
    post = Client().post(f"/accounts/invitations/{expired.raw_token}/", {"name": "A"})
    assert post.status_code == 410


def test_someone_with_an_account_logs_in_then_joins(org, owner, outsider):
    result = invite_member(organization=org, actor=owner, email=outsider.email, role="manager")
    url = f"/accounts/invitations/{result.raw_token}/"
    page = Client().get(url)
    assert "Log in to join" in text(page) and f"/accounts/login/?next={url}" in text(page)
    assert 'name="password"' not in text(page)
    signed_in = client_for(outsider)
    response = signed_in.post(url)
    assert response.status_code == 302
    assert Membership.objects.get(user=outsider, organization=org).role == "manager"
    assert signed_in.get("/recovery/").status_code == 200  # now in Corner Cup, as manager


def test_signed_in_as_someone_else_the_link_says_so(org, owner, bea_invited, outsider):
    page = client_for(outsider).get(f"/accounts/invitations/{bea_invited.raw_token}/")
    assert f"You are logged in as {outsider.email}" in text(page)
    assert 'name="password"' not in text(page)
    User.objects.create_user(email="bea@example.com", password=PASSWORD)
    response = client_for(outsider).post(f"/accounts/invitations/{bea_invited.raw_token}/")
    assert response.status_code == 400 and "log out" in text(response)
    assert not Membership.objects.filter(organization=org, user__email="bea@example.com").exists()


# --- the history ---------------------------------------------------------------------------


def test_history_shows_every_action_in_the_organizations_time_zone(owner, org):
    org.time_zone = "America/New_York"
    org.save()
    at = datetime(2026, 7, 1, 16, 30, tzinfo=ZoneInfo("UTC"))
    event = record_team_event(
        organization=org, actor=owner, action=TeamAction.SETTINGS_CHANGED, subject_label="Name"
    )
    TeamEvent.objects.filter(pk=event.pk).update(created_at=at)
    body = text(client_for(owner).get("/settings/team/"))
    assert "Changed the settings" in body and "1 Jul 2026 12:30" in body  # EDT, UTC-4
    assert owner.display_name in body


def test_history_is_paginated_newest_first(owner, org, staff):
    member = Membership.objects.get(user=staff, organization=org)
    base = timezone.now() - timedelta(days=1)
    for n in range(HISTORY_PAGE_SIZE + 3):
        event = record_team_event(
            organization=org, actor=owner, action=TeamAction.ROLE_CHANGED, subject=staff,
            before="staff", after=f"step{n:02d}",
        )  # fmt: skip
        TeamEvent.objects.filter(pk=event.pk).update(created_at=base + timedelta(minutes=n))
    deactivate_member(membership=member, actor=owner)
    client = client_for(owner)
    first = text(client.get("/settings/team/"))
    assert "Deactivated a member" in first and "step27" in first and "step02" not in first
    second = text(client.get("/settings/team/?page=2"))
    assert "step00" in second and "step27" not in second
    assert client.get("/settings/team/?page=nonsense").status_code == 200


def test_the_team_page_has_a_constant_query_count(owner, org, django_assert_max_num_queries):
    client = client_for(owner)
    for _ in range(10):
        user = UserFactory.create()
        add_member(organization=org, user=user, role=Role.STAFF)
        invite_member(organization=org, actor=owner, email=f"i{user.pk}@example.com", role="staff")
    with django_assert_max_num_queries(25):
        assert client.get("/settings/team/").status_code == 200


def test_history_says_what_a_settings_change_changed(owner, org):
    record_team_event(
        organization=org, actor=owner, action=TeamAction.SETTINGS_CHANGED, subject_label=org.name,
        changes={"time_zone": {"old": "Europe/London", "new": "Europe/Paris"}},
    )  # fmt: skip
    body = text(client_for(owner).get("/settings/team/"))
    assert "Changed the settings: Corner Cup time zone: Europe/London → Europe/Paris" in body


def test_the_pages_say_how_long_a_link_works(owner):
    assert "works once, for 7 days" in text(client_for(owner).get("/settings/team/"))
    assert "older than 7 days" in text(Client().get("/accounts/invitations/nope/"))
