"""The team's rules (accounts/services/team.py): invitations, roles, limits, deactivation, the
last owner, and the history each change writes — against the real PostgreSQL, races included."""

import threading
from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.core import mail
from django.db import connection
from django.test import Client
from django.utils import timezone

from accounts.errors import ConflictError, ForbiddenError, InvalidInput, NotFoundError
from accounts.models import (
    INVITATION_DAYS,
    Invitation,
    Membership,
    Role,
    TeamAction,
    TeamEvent,
    User,
    hash_token,
)
from accounts.services import add_member
from accounts.services.team import (
    InvitationUnavailable,
    accept_invitation,
    change_locations,
    change_role,
    deactivate_member,
    invite_member,
    pending_invitation,
    reactivate_member,
    resend_invitation,
    revoke_invitation,
    update_member,
)
from tests.factories import LocationFactory, UserFactory

PASSWORD = "a-long-espresso-9"


def actions(org) -> list[str]:
    return list(
        TeamEvent.objects.for_org(org).order_by("created_at", "id").values_list("action", flat=True)
    )


def membership(org, user) -> Membership:
    return Membership.objects.get(organization=org, user=user)


# --- invitations ---------------------------------------------------------------------------


def test_invite_stores_only_the_hash_and_expires_in_seven_days(org, owner, main_st):
    now = timezone.now()
    result = invite_member(
        organization=org, actor=owner, email=" Bea@Example.COM ", role=Role.STAFF,
        locations=[main_st], now=now,
    )  # fmt: skip
    invitation = result.invitation
    assert result.outcome == "created"
    assert invitation.email == "bea@example.com"
    assert invitation.token_hash == hash_token(result.raw_token) != result.raw_token
    assert not Invitation.objects.filter(token_hash=result.raw_token).exists()
    assert invitation.expires_at == now + timedelta(days=INVITATION_DAYS)
    assert list(invitation.locations.all()) == [main_st]
    event = TeamEvent.objects.get(action=TeamAction.INVITED)
    assert (event.actor, event.subject_label) == (owner, "bea@example.com")
    assert event.detail == {"role": "staff", "locations": ["Main St"], "replaced": False}


def test_the_invitation_email_is_sent_after_commit_with_a_site_url_link(
    org, owner, settings, django_capture_on_commit_callbacks
):
    settings.SITE_URL = "https://comeback.example.com"
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        result = invite_member(organization=org, actor=owner, email="bea@example.com", role="staff")
    assert mail.outbox == []  # nothing leaves before the invitation is committed
    for callback in callbacks:
        callback()
    (message,) = mail.outbox
    assert message.to == ["bea@example.com"]
    assert f"https://comeback.example.com/accounts/invitations/{result.raw_token}/" in message.body
    assert "Corner Cup" in message.subject


def test_inviting_an_active_member_names_the_email(org, owner, staff):
    with pytest.raises(InvalidInput) as caught:
        invite_member(organization=org, actor=owner, email=staff.email.upper(), role="staff")
    assert (caught.value.field, caught.value.code) == ("email", "already_member")
    assert not Invitation.objects.exists()


@pytest.mark.parametrize("email", ["not-an-email", "a@b@example.com", "bea\u202e@example.com"])
def test_a_bad_email_is_refused_naming_the_field(org, owner, email):
    with pytest.raises(InvalidInput) as caught:
        invite_member(organization=org, actor=owner, email=email, role="staff")
    assert caught.value.field == "email"
    assert not Invitation.objects.exists() and not TeamEvent.objects.exists()


def test_inviting_again_replaces_the_pending_invitation(org, owner):
    first = invite_member(organization=org, actor=owner, email="bea@example.com", role="staff")
    second = invite_member(organization=org, actor=owner, email="bea@example.com", role="manager")
    assert second.outcome == "replaced"
    assert pending_invitation(first.raw_token) is None
    assert pending_invitation(second.raw_token) == second.invitation
    assert TeamEvent.objects.filter(action="invited").latest("pk").detail["replaced"] is True


def test_resend_kills_the_old_link_and_extends_the_expiry(org, owner):
    now = timezone.now()
    first = invite_member(organization=org, actor=owner, email="bea@example.com", role="staff",
                          now=now - timedelta(days=8))  # fmt: skip
    assert pending_invitation(first.raw_token, now=now) is None  # expired
    raw = resend_invitation(invitation=first.invitation, actor=owner, now=now)
    assert pending_invitation(first.raw_token, now=now) is None
    assert pending_invitation(raw, now=now) == first.invitation
    first.invitation.refresh_from_db()
    assert first.invitation.expires_at == now + timedelta(days=7)
    assert actions(org) == ["invited", "invite_resent"]


def test_revoke_is_once_and_kills_the_link(org, owner):
    result = invite_member(organization=org, actor=owner, email="bea@example.com", role="staff")
    assert revoke_invitation(invitation=result.invitation, actor=owner) is True
    assert revoke_invitation(invitation=result.invitation, actor=owner) is False
    assert pending_invitation(result.raw_token) is None
    with pytest.raises(ConflictError):
        resend_invitation(invitation=result.invitation, actor=owner)
    assert actions(org) == ["invited", "invite_revoked"]


def test_managers_and_staff_cannot_manage_the_team(org, manager, staff, owner):
    for actor in (manager, staff):
        with pytest.raises(ForbiddenError):
            invite_member(organization=org, actor=actor, email="x@example.com", role="owner")
        with pytest.raises(ForbiddenError):
            change_role(membership=membership(org, staff), actor=actor, role=Role.OWNER)
    assert membership(org, staff).role == Role.STAFF
    assert not TeamEvent.objects.exists()


def test_another_organizations_location_is_refused(org, owner, other_location):
    with pytest.raises(NotFoundError):
        invite_member(organization=org, actor=owner, email="x@example.com", role="staff",
                      locations=[other_location])  # fmt: skip
    assert not Invitation.objects.exists()


# --- accepting -----------------------------------------------------------------------------


def test_accept_creates_the_user_and_membership(org, owner, main_st):
    result = invite_member(organization=org, actor=owner, email="bea@example.com", role="staff",
                           locations=[main_st])  # fmt: skip
    joined = accept_invitation(raw_token=result.raw_token, name="Bea Barista", password=PASSWORD)
    user = User.objects.get(email="bea@example.com")
    assert user.name == "Bea Barista" and user.check_password(PASSWORD)
    assert (joined.user, joined.role, list(joined.locations.all())) == (user, "staff", [main_st])
    result.invitation.refresh_from_db()
    assert result.invitation.accepted_by == user and result.invitation.accepted_at is not None
    assert pending_invitation(result.raw_token) is None
    with pytest.raises(InvitationUnavailable):
        accept_invitation(raw_token=result.raw_token, name="Again", password=PASSWORD)
    event = TeamEvent.objects.get(action=TeamAction.JOINED)
    assert (event.actor, event.subject) == (user, user)


def test_a_weak_password_is_refused_and_the_link_still_works(org, owner):
    result = invite_member(organization=org, actor=owner, email="bea@example.com", role="staff")
    for password in ("short", "password123", "bea@example.com"):
        with pytest.raises(InvalidInput) as caught:
            accept_invitation(raw_token=result.raw_token, name="Bea", password=password)
        assert caught.value.field == "password"
    assert pending_invitation(result.raw_token) is not None
    assert not User.objects.filter(email="bea@example.com").exists()


@pytest.mark.parametrize("name", ["", "   ", "Bea\u202e", "Bea\nB"])
def test_a_bad_name_is_refused(org, owner, name):
    result = invite_member(organization=org, actor=owner, email="bea@example.com", role="staff")
    with pytest.raises(InvalidInput) as caught:
        accept_invitation(raw_token=result.raw_token, name=name, password=PASSWORD)
    assert caught.value.field == "name"


def test_expired_revoked_and_unknown_links_are_the_same_error(org, owner):
    now = timezone.now()
    old = invite_member(organization=org, actor=owner, email="a@example.com", role="staff",
                        now=now - timedelta(days=7, seconds=1))  # fmt: skip
    revoked = invite_member(organization=org, actor=owner, email="b@example.com", role="staff")
    revoke_invitation(invitation=revoked.invitation, actor=owner)
    for raw in (old.raw_token, revoked.raw_token, "nope", "x" * 500, ""):
        with pytest.raises(InvitationUnavailable):
            accept_invitation(raw_token=raw, name="X", password=PASSWORD, now=now)


def test_an_existing_user_signed_in_joins_a_second_organization(org, owner, other_org, outsider):
    result = invite_member(organization=org, actor=owner, email=outsider.email, role="manager")
    with pytest.raises(InvalidInput) as caught:  # they have an account: log in first
        accept_invitation(raw_token=result.raw_token, name="X", password=PASSWORD)
    assert caught.value.code == "log_in_first"
    someone_else = UserFactory.create()
    with pytest.raises(InvalidInput) as caught:
        accept_invitation(raw_token=result.raw_token, user=someone_else)
    assert caught.value.code == "wrong_account"
    joined = accept_invitation(raw_token=result.raw_token, user=outsider)
    assert joined.role == "manager"
    assert Membership.objects.filter(user=outsider).count() == 2


def test_inviting_a_deactivated_member_reactivates_them_with_the_new_role(org, owner, staff):
    deactivate_member(membership=membership(org, staff), actor=owner)
    result = invite_member(organization=org, actor=owner, email=staff.email, role="manager")
    joined = accept_invitation(raw_token=result.raw_token, user=staff)
    assert (joined.is_active, joined.deactivated_at, joined.role) == (True, None, "manager")
    assert TeamEvent.objects.get(action="joined").detail["reactivated"] is True


def test_reactivating_a_member_kills_the_invitation_waiting_for_them(org, owner, staff):
    """Invited back as staff, then reactivated as they were: the old link must not change
    their role afterwards."""
    deactivate_member(membership=membership(org, staff), actor=owner)
    result = invite_member(organization=org, actor=owner, email=staff.email, role="staff")
    reactivate_member(membership=membership(org, staff), actor=owner)
    with pytest.raises(InvitationUnavailable):
        accept_invitation(raw_token=result.raw_token, user=staff)


def test_an_invitation_never_changes_an_active_members_role(org, owner):
    """However they became a member meanwhile, an old link is refused and changes nothing:
    roles change on the member's page, where the last owner is kept."""
    other = UserFactory.create()
    result = invite_member(organization=org, actor=owner, email=other.email, role="staff")
    add_member(organization=org, user=other, role="owner")
    with pytest.raises(InvitationUnavailable):
        accept_invitation(raw_token=result.raw_token, user=other)
    assert membership(org, other).role == "owner"
    assert pending_invitation(result.raw_token) is not None  # the claim was rolled back


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_accepts_make_one_membership(org, owner):
    result = invite_member(organization=org, actor=owner, email="bea@example.com", role="staff")
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def accept(name: str) -> None:
        try:
            barrier.wait(timeout=5)
            accept_invitation(raw_token=result.raw_token, name=name, password=PASSWORD)
            outcomes.append("joined")
        except (InvitationUnavailable, InvalidInput) as exc:
            outcomes.append(type(exc).__name__)
        finally:
            connection.close()

    threads = [threading.Thread(target=accept, args=(n,)) for n in ("One", "Two")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert sorted(outcomes)[0] != "joined" or outcomes.count("joined") == 1
    assert outcomes.count("joined") == 1, outcomes
    assert Membership.objects.filter(organization=org, user__email="bea@example.com").count() == 1
    assert User.objects.filter(email="bea@example.com").count() == 1
    assert TeamEvent.objects.filter(action="joined").count() == 1


# --- roles, limits, deactivation -----------------------------------------------------------


def test_change_role_and_limits_record_before_and_after(org, owner, staff, main_st, harbour):
    member = membership(org, staff)
    assert change_role(membership=member, actor=owner, role=Role.MANAGER) is True
    assert change_role(membership=member, actor=owner, role=Role.MANAGER) is False
    assert change_locations(membership=member, actor=owner, locations=[main_st, harbour]) is True
    assert change_locations(membership=member, actor=owner, locations=[harbour, main_st]) is False
    member.refresh_from_db()
    assert member.role == Role.MANAGER
    role_event, limits_event = TeamEvent.objects.order_by("id")
    assert role_event.detail == {"before": "staff", "after": "manager"}
    assert role_event.subject == staff and role_event.subject_label == staff.email
    assert limits_event.detail == {"before": ["Main St"], "after": ["Harbour Rd", "Main St"]}


def test_an_unknown_role_is_refused(org, owner, staff):
    with pytest.raises(InvalidInput) as caught:
        change_role(membership=membership(org, staff), actor=owner, role="admin")
    assert caught.value.field == "role"


def test_the_last_owner_cannot_be_demoted_or_deactivated(org, owner):
    mine = membership(org, owner)
    with pytest.raises(ConflictError) as caught:
        change_role(membership=mine, actor=owner, role=Role.MANAGER)
    assert caught.value.code == "last_owner"
    with pytest.raises(ConflictError):
        deactivate_member(membership=mine, actor=owner)
    mine.refresh_from_db()
    assert (mine.role, mine.is_active) == (Role.OWNER, True)
    assert not TeamEvent.objects.exists()


def test_an_owner_may_step_down_when_another_owner_remains(org, owner):
    second = UserFactory.create()
    add_member(organization=org, user=second, role=Role.OWNER)
    assert change_role(membership=membership(org, owner), actor=owner, role=Role.STAFF)
    with pytest.raises(ConflictError):
        deactivate_member(membership=membership(org, second), actor=second)


@pytest.mark.django_db(transaction=True)
def test_two_owners_demoting_each_other_at_once_leave_one_owner(org, main_st):
    one, two = UserFactory.create(), UserFactory.create()
    add_member(organization=org, user=one, role=Role.OWNER)
    add_member(organization=org, user=two, role=Role.OWNER)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def demote(actor: User, target: User) -> None:
        try:
            barrier.wait(timeout=5)
            change_role(membership=membership(org, target), actor=actor, role=Role.STAFF)
            outcomes.append("demoted")
        except (ConflictError, ForbiddenError) as exc:
            outcomes.append(exc.code)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=demote, args=(one, two)),
        threading.Thread(target=demote, args=(two, one)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert outcomes.count("demoted") == 1, outcomes
    owners = Membership.objects.filter(organization=org, role=Role.OWNER, is_active=True)
    assert owners.count() == 1
    assert TeamEvent.objects.filter(action="role_changed").count() == 1


def test_deactivation_ends_access_at_the_next_request(org, owner, staff, main_st):
    client = Client()
    client.force_login(staff)
    assert client.get("/pos/").status_code == 200
    assert deactivate_member(membership=membership(org, staff), actor=owner) is True
    assert deactivate_member(membership=membership(org, staff), actor=owner) is False
    response = client.get("/pos/")
    assert response.status_code in (302, 404)
    assert client.get("/customers/").status_code in (302, 404)
    member = membership(org, staff)
    assert not member.is_active and member.deactivated_at is not None
    assert actions(org) == ["deactivated"]


@pytest.mark.django_db(transaction=True)
def test_deactivation_deletes_the_sessions_of_a_member_with_no_other_organization(
    org, owner, staff, main_st, outsider, other_org
):
    staff_client, owner_client = Client(), Client()
    staff_client.force_login(staff)
    owner_client.force_login(owner)
    add_member(organization=other_org, user=owner, role=Role.STAFF)  # owner has two orgs
    sessions_before = Session.objects.count()
    deactivate_member(membership=membership(org, staff), actor=owner)
    assert Session.objects.count() == sessions_before - 1
    assert staff_client.get("/pos/").status_code == 302  # logged out: to the login page


def test_reactivate_gives_access_back(org, owner, staff, main_st):
    member = membership(org, staff)
    deactivate_member(membership=member, actor=owner)
    assert reactivate_member(membership=member, actor=owner) is True
    assert reactivate_member(membership=member, actor=owner) is False
    client = Client()
    client.force_login(staff)
    assert client.get("/pos/").status_code == 200
    assert actions(org) == ["deactivated", "reactivated"]


def test_a_location_of_another_organization_cannot_limit_a_member(org, owner, staff):
    elsewhere = LocationFactory.create()
    with pytest.raises(NotFoundError):
        change_locations(membership=membership(org, staff), actor=owner, locations=[elsewhere])


def test_the_member_page_save_changes_role_and_limits_together_or_not_at_all(
    org, owner, main_st, other_location
):
    mine = membership(org, owner)
    with pytest.raises(NotFoundError):  # the limits are refused: the role stays too
        update_member(membership=mine, actor=owner, role=Role.OWNER, locations=[other_location])
    second = UserFactory.create()
    add_member(organization=org, user=second, role=Role.OWNER)
    with pytest.raises(NotFoundError):
        update_member(membership=mine, actor=owner, role=Role.STAFF, locations=[other_location])
    assert membership(org, owner).role == Role.OWNER
    assert not TeamEvent.objects.exists()


def test_an_owner_steps_down_from_the_member_page_with_new_limits(org, owner, main_st):
    add_member(organization=org, user=UserFactory.create(), role=Role.OWNER)
    assert update_member(
        membership=membership(org, owner), actor=owner, role=Role.MANAGER, locations=[main_st]
    )
    mine = membership(org, owner)
    assert (mine.role, list(mine.locations.all())) == (Role.MANAGER, [main_st])


@pytest.mark.django_db(transaction=True)
def test_two_invitations_of_one_email_at_once_leave_one_live_link(org, main_st):
    one, two = UserFactory.create(), UserFactory.create()
    add_member(organization=org, user=one, role=Role.OWNER)
    add_member(organization=org, user=two, role=Role.OWNER)
    barrier = threading.Barrier(2)
    tokens: list[str] = []

    def invite(actor: User) -> None:
        try:
            barrier.wait(timeout=5)
            result = invite_member(organization=org, actor=actor, email="bea@example.com",
                                   role="staff")  # fmt: skip
            tokens.append(result.raw_token)
        finally:
            connection.close()

    threads = [threading.Thread(target=invite, args=(a,)) for a in (one, two)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert len(tokens) == 2
    assert [pending_invitation(raw) is not None for raw in tokens].count(True) == 1
    assert Invitation.objects.filter(revoked_at__isnull=True).count() == 1


def test_a_member_of_two_organizations_keeps_the_other_after_deactivation(
    org, owner, staff, other_org, outsider
):
    add_member(organization=other_org, user=staff, role=Role.STAFF)
    client = Client()
    client.force_login(staff)
    client.get("/pos/")
    deactivate_member(membership=membership(org, staff), actor=owner)
    assert client.get("/api/v1/locations/").json()["results"][0]["slug"] == "elsewhere"
    assert Session.objects.filter(pk=client.session.session_key).exists()


def test_after_deactivation_the_api_refuses_their_session_too(org, owner, staff, main_st):
    client = Client()
    client.force_login(staff)
    assert client.get("/api/v1/locations/").status_code == 200
    deactivate_member(membership=membership(org, staff), actor=owner)
    assert client.get("/api/v1/locations/").status_code in (401, 403)
