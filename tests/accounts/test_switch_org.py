"""Switching organization (/accounts/switch-organization/): a user with several active
memberships picks one; the tenant follows, and any other organization's id is a 404."""

from __future__ import annotations

from django.test import Client

from accounts.models import Membership, Role
from accounts.services import add_member
from accounts.tenancy import SESSION_LOCATION_KEY, SESSION_ORG_KEY
from cxcore.models import Customer
from cxcore.services import EpisodeInput, record_episode
from tests.factories import LocationFactory, OrganizationFactory


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_switcher_shows_only_for_people_in_several_organizations(owner, org, other_org):
    client = logged_in(owner)
    assert (
        'action="/accounts/switch-organization/"' not in client.get("/customers/").content.decode()
    )
    add_member(organization=other_org, user=owner, role=Role.STAFF)
    body = client.get("/customers/").content.decode()
    assert 'action="/accounts/switch-organization/"' in body
    assert f'<option value="{org.pk}" selected>Corner Cup</option>' in body
    assert f'<option value="{other_org.pk}">Rival Roasters</option>' in body
    assert '<label for="switch-organization"' in body


def test_switching_changes_the_tenant_and_clears_the_till_location(
    owner, org, main_st, other_org, other_location
):
    add_member(organization=other_org, user=owner, role=Role.MANAGER)
    theirs = record_episode(
        organization=other_org,
        data=EpisodeInput(kind="visit", identifiers={"phone": "+14155552671"}, name="Rita"),
    ).episode
    client = logged_in(owner)
    session = client.session
    session[SESSION_LOCATION_KEY] = main_st.pk
    session.save()
    assert client.get(f"/customers/{theirs.customer_id}/").status_code == 404

    response = client.post("/accounts/switch-organization/", {"organization": other_org.pk})
    assert response.status_code == 302
    assert client.session[SESSION_ORG_KEY] == other_org.pk
    assert SESSION_LOCATION_KEY not in client.session
    assert client.get(f"/customers/{theirs.customer_id}/").status_code == 200
    body = client.get("/customers/").content.decode()
    assert f'<option value="{other_org.pk}" selected>' in body
    # A manager there: not the owners' pages.
    assert client.get("/accounts/api-keys/").status_code == 403

    client.post("/accounts/switch-organization/", {"organization": org.pk})
    assert client.get(f"/customers/{theirs.customer_id}/").status_code == 404
    assert client.get("/accounts/api-keys/").status_code == 200


def test_another_organizations_id_is_404_and_changes_nothing(owner, org, other_org):
    client = logged_in(owner)
    stranger = OrganizationFactory.create()
    for value in (other_org.pk, stranger.pk, 10**9, "x", "", "²", "1" * 30):
        response = client.post("/accounts/switch-organization/", {"organization": value})
        assert response.status_code == 404, value
    assert SESSION_ORG_KEY not in client.session


def test_a_deactivated_membership_cannot_be_switched_to(owner, org, other_org):
    add_member(organization=other_org, user=owner, role=Role.STAFF)
    Membership.objects.filter(user=owner, organization=other_org).update(is_active=False)
    client = logged_in(owner)
    response = client.post("/accounts/switch-organization/", {"organization": other_org.pk})
    assert response.status_code == 404
    assert (
        'action="/accounts/switch-organization/"' not in client.get("/customers/").content.decode()
    )


def test_a_membership_deactivated_after_switching_falls_back_to_the_first(owner, org, other_org):
    add_member(organization=other_org, user=owner, role=Role.OWNER)
    LocationFactory(organization=other_org)
    client = logged_in(owner)
    client.post("/accounts/switch-organization/", {"organization": other_org.pk})
    Membership.objects.filter(user=owner, organization=other_org).update(is_active=False)
    ours = record_episode(
        organization=org,
        data=EpisodeInput(kind="visit", identifiers={"phone": "07400 111111"}),
    ).episode
    assert client.get(f"/customers/{ours.customer_id}/").status_code == 200
    assert Customer.objects.filter(organization=other_org).count() == 0


def test_switching_needs_a_login(org):
    response = Client().post("/accounts/switch-organization/", {"organization": org.pk})
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_offering_the_switcher_costs_no_query(owner, org, other_org):
    """The list is read with the tenant (one query for every membership), not per page."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = logged_in(owner)
    client.get("/customers/")  # warm the session
    with CaptureQueriesContext(connection) as alone:
        client.get("/customers/")
    add_member(organization=other_org, user=owner, role=Role.STAFF)
    with CaptureQueriesContext(connection) as several:
        body = client.get("/customers/").content.decode()
    assert 'action="/accounts/switch-organization/"' in body
    assert len(several) == len(alone)
