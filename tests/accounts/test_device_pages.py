"""The shared-till pages (accounts/device_views.py) and request.device (the middleware)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.test import Client, RequestFactory
from django.utils import timezone

from accounts.devices_middleware import DEVICE_COOKIE, DeviceMiddleware
from accounts.models import Device, Membership, TeamAction, TeamEvent, hash_token
from accounts.services.devices import (
    DEVICE_ATTEMPTS_PER_WINDOW,
    create_pairing,
    pair,
    set_pin,
)
from accounts.tenancy import SESSION_LOCATION_KEY, SESSION_ORG_KEY, tenant_for_user

PIN = "2580"


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def link_for(owner, location, name="Front") -> str:
    tenant = tenant_for_user(owner)
    assert tenant is not None
    return create_pairing(tenant=tenant, location=location, name=name)[1]


def paired_token(owner, location, name="Front") -> str:
    return pair(raw_token=link_for(owner, location, name), user=owner)[1]


def tablet(token: str) -> Client:
    client = Client()
    client.cookies[DEVICE_COOKIE] = token
    return client


def with_pin(user, pin: str = PIN) -> Membership:
    membership = Membership.objects.select_related("user", "organization").get(user=user)
    set_pin(membership=membership, pin=pin)
    return membership


# --- /settings/devices/ -------------------------------------------------------------------


def test_an_owner_makes_a_pairing_link_shown_once(owner, main_st):
    client = signed_in(owner)
    response = client.post("/settings/devices/", {"location": main_st.pk, "name": "Front"})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    device = Device.objects.get()
    link = response.context["new_link"]
    assert link.startswith(f"{settings.SITE_URL}/till/pair/")  # never from the Host header
    raw = link.rstrip("/").rsplit("/", 1)[1]
    assert device.pairing_token_hash == hash_token(raw)
    assert link in response.content.decode()
    assert raw not in client.get("/settings/devices/").content.decode()


@pytest.mark.parametrize("body", [{"name": "Front"}, {"name": "", "location": "{main}"}])
def test_a_pairing_form_without_a_location_or_a_name_is_a_400_and_makes_nothing(
    owner, main_st, body
):
    body = {k: (main_st.pk if v == "{main}" else v) for k, v in body.items()}
    response = signed_in(owner).post("/settings/devices/", body)
    assert response.status_code == 400
    assert not Device.objects.exists()


def test_another_orgs_location_cannot_be_chosen(owner, other_location):
    response = signed_in(owner).post(
        "/settings/devices/", {"location": other_location.pk, "name": "Theirs"}
    )
    assert response.status_code == 400
    assert not Device.objects.exists()


def test_a_manager_sees_and_pairs_only_at_their_locations(owner, manager, main_st, harbour):
    paired_token(owner, main_st, "Main till")
    paired_token(owner, harbour, "Harbour till")
    client = signed_in(manager)
    page = client.get("/settings/devices/").content.decode()
    assert "Main till" in page and "Harbour till" not in page
    response = client.post("/settings/devices/", {"location": harbour.pk, "name": "Mine"})
    assert response.status_code == 400
    assert Device.objects.count() == 2


def test_staff_get_the_403_page(staff):
    response = signed_in(staff).get("/settings/devices/")
    assert response.status_code == 403
    assert "This page is for owners and managers" in response.content.decode()


def test_unpairing_ends_the_tablets_device(owner, main_st):
    token = paired_token(owner, main_st)
    device = Device.objects.get()
    assert tablet(token).get("/till/switch/").status_code == 200
    response = signed_in(owner).post(f"/settings/devices/{device.pk}/revoke/")
    assert response.status_code == 302
    assert tablet(token).get("/till/switch/").status_code == 404
    assert TeamEvent.objects.filter(action=TeamAction.DEVICE_REVOKED).count() == 1


def test_a_dead_device_cookie_is_deleted(owner, main_st):
    token = paired_token(owner, main_st)
    device = Device.objects.get()
    client = signed_in(owner)
    client.post(f"/settings/devices/{device.pk}/revoke/")
    client.cookies[DEVICE_COOKIE] = token
    response = client.get("/pos/")
    assert response.status_code == 200 and "/till/switch/" not in response.content.decode()
    assert response.cookies[DEVICE_COOKIE].value == ""
    assert response.cookies[DEVICE_COOKIE]["max-age"] == 0

    # the tablet is paired anew over its dead cookie: the new one stands
    client.cookies[DEVICE_COOKIE] = token
    paired = client.post(f"/till/pair/{link_for(owner, main_st, 'Again')}/")
    assert paired.status_code == 302
    new_token = paired.cookies[DEVICE_COOKIE].value
    assert new_token and new_token != token
    assert tablet(new_token).get("/till/switch/").status_code == 200


def test_another_orgs_or_another_locations_device_is_404(owner, manager, outsider, harbour):
    their_owner_device = paired_token(owner, harbour)
    device = Device.objects.get(token_hash=hash_token(their_owner_device))
    for person in (outsider, manager):  # another organization; a manager of Main St only
        assert signed_in(person).post(f"/settings/devices/{device.pk}/revoke/").status_code == 404
    device.refresh_from_db()
    assert device.revoked_at is None


# --- /till/pair/<token>/ ------------------------------------------------------------------


def test_pairing_on_the_tablet_sets_the_device_cookie_and_opens_the_pin_switch(org, owner, harbour):
    raw = link_for(owner, harbour, "Harbour till")
    client = signed_in(owner)
    confirm = client.get(f"/till/pair/{raw}/")
    assert confirm.status_code == 200 and "Harbour till" in confirm.content.decode()
    assert Device.objects.get().paired_at is None  # opening the link pairs nothing
    response = client.post(f"/till/pair/{raw}/")
    assert response.status_code == 302 and response["Location"] == "/till/switch/"
    cookie = response.cookies[DEVICE_COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["path"] == "/"
    assert cookie["secure"]  # tests run with DEBUG off
    assert cookie["max-age"] == 400 * 24 * 3600
    assert Device.objects.get().token_hash == hash_token(cookie.value)
    # The owner who paired it is not left signed in on the counter: staff switch in by PIN.
    assert SESSION_KEY not in client.session
    switch = client.get("/till/switch/").content.decode()
    assert "Harbour Rd" in switch


def test_a_pin_session_ends_when_its_till_is_unpaired_or_left(owner, staff, main_st):
    client = tablet(paired_token(owner, main_st))
    membership = with_pin(staff)
    signed = client.post("/till/switch/", {"member": membership.pk, "pin": PIN})
    assert signed.status_code == 302 and client.session[SESSION_KEY] == str(staff.pk)
    assert client.get("/pos/").status_code == 200
    # The same session without the till's cookie (the tablet's cookie is gone, or the session
    # cookie was carried elsewhere): it ends.
    elsewhere = Client()
    elsewhere.cookies[settings.SESSION_COOKIE_NAME] = client.cookies[settings.SESSION_COOKIE_NAME]
    assert elsewhere.get("/pos/").status_code == 302
    # Unpairing the till ends the session signed in on it, at its next request.
    client = tablet(paired_token(owner, main_st, "Second"))
    client.post("/till/switch/", {"member": membership.pk, "pin": PIN})
    assert client.get("/pos/").status_code == 200
    Device.objects.filter(name="Second").update(revoked_at=timezone.now())
    response = client.get("/pos/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert SESSION_KEY not in client.session


def test_a_used_or_expired_link_says_so(owner, main_st):
    raw = link_for(owner, main_st)
    client = signed_in(owner)
    assert client.post(f"/till/pair/{raw}/").status_code == 302
    client.force_login(owner)  # pairing signed the owner out; back in, to try the link again
    again = client.post(f"/till/pair/{raw}/")
    assert again.status_code == 409 and "used already" in again.content.decode()
    assert DEVICE_COOKIE not in again.cookies

    late = link_for(owner, main_st, "Late")
    Device.objects.filter(name="Late").update(pairing_expires_at=timezone.now())
    expired = client.post(f"/till/pair/{late}/")
    assert expired.status_code == 409 and "expired" in expired.content.decode()


def test_staff_outsiders_and_unknown_links_get_a_404(owner, staff, outsider, main_st):
    raw = link_for(owner, main_st)
    for person in (staff, outsider):
        assert signed_in(person).get(f"/till/pair/{raw}/").status_code == 404
        assert signed_in(person).post(f"/till/pair/{raw}/").status_code == 404
    assert signed_in(owner).get("/till/pair/nope/").status_code == 404
    assert signed_in(owner).get(f"/till/pair/{'x' * 500}/").status_code == 404
    assert Device.objects.get().paired_at is None


# --- /till/switch/ ------------------------------------------------------------------------


def test_the_switch_is_a_404_off_a_paired_till(owner, main_st):
    assert Client().get("/till/switch/").status_code == 404
    assert signed_in(owner).get("/till/switch/").status_code == 404
    assert tablet("not-a-device").get("/till/switch/").status_code == 404


def test_the_switch_lists_who_works_here_with_a_pin(owner, manager, staff, harbour, main_st):
    token = paired_token(owner, main_st)
    with_pin(staff)
    with_pin(owner, "97531")
    page = tablet(token).get("/till/switch/")
    text = page.content.decode()
    assert page.status_code == 200
    assert staff.email in text and owner.email in text and manager.email not in text
    assert 'inputmode="numeric"' in text and 'autocomplete="off"' in text
    harbour_token = paired_token(owner, harbour, "Harbour")
    assert staff.email not in tablet(harbour_token).get("/till/switch/").content.decode()


def test_a_right_pin_signs_in_at_the_tills_location(org, owner, staff, main_st):
    token = paired_token(owner, main_st)
    membership = with_pin(staff)
    client = tablet(token)
    client.get("/till/switch/")
    response = client.post("/till/switch/", {"member": membership.pk, "pin": PIN})
    assert response.status_code == 302 and response["Location"] == "/pos/"
    assert int(client.session[SESSION_KEY]) == staff.pk
    assert client.session[SESSION_ORG_KEY] == org.pk
    assert client.session[SESSION_LOCATION_KEY] == main_st.pk
    till = client.get("/pos/")
    assert till.status_code == 200 and "Switch user" in till.content.decode()


def test_switching_replaces_whoever_was_signed_in_with_a_new_session(owner, staff, main_st):
    token = paired_token(owner, main_st)
    membership = with_pin(staff)
    client = signed_in(owner)
    client.cookies[DEVICE_COOKIE] = token
    before = client.session.session_key
    client.post("/till/switch/", {"member": membership.pk, "pin": PIN})
    assert int(client.session[SESSION_KEY]) == staff.pk
    assert client.session.session_key != before


def test_a_wrong_pin_says_how_many_tries_are_left_then_locks(owner, staff, main_st):
    token = paired_token(owner, main_st)
    membership = with_pin(staff)
    client = tablet(token)
    for left in (4, 3, 2, 1):
        response = client.post("/till/switch/", {"member": membership.pk, "pin": "1397"})
        assert response.status_code == 400
        expected = "1 try left" if left == 1 else f"{left} tries left"
        assert f"Wrong PIN, {expected}." in response.content.decode()
    locked = client.post("/till/switch/", {"member": membership.pk, "pin": "1397"})
    assert locked.status_code == 423 and "locked until" in locked.content.decode()
    right = client.post("/till/switch/", {"member": membership.pk, "pin": PIN})
    assert right.status_code == 423
    assert SESSION_KEY not in client.session

    # a manager resets it; the member sets a new PIN and is in
    assert (
        signed_in(owner).post(f"/settings/devices/pins/{membership.pk}/reset/").status_code == 302
    )
    with_pin(staff, "4826")
    assert client.post("/till/switch/", {"member": membership.pk, "pin": "4826"}).status_code == 302


@pytest.mark.parametrize("member", ["", "abc", "99999999", "1" * 40, "{outsider}"])
def test_no_or_another_orgs_member_is_a_400_naming_the_tiles(owner, outsider, main_st, member):
    token = paired_token(owner, main_st)
    theirs = with_pin(outsider)
    member = str(theirs.pk) if member == "{outsider}" else member
    response = tablet(token).post("/till/switch/", {"member": member, "pin": PIN})
    assert response.status_code == 400 and "Tap your name" in response.content.decode()


def test_a_till_may_try_only_so_many_pins(owner, staff, manager, main_st):
    token = paired_token(owner, main_st)
    client = tablet(token)
    members = [with_pin(person) for person in (staff, manager, owner)]
    answers = [
        client.post("/till/switch/", {"member": members[n % 3].pk, "pin": "1397"}).status_code
        for n in range(DEVICE_ATTEMPTS_PER_WINDOW + 1)
    ]
    assert answers[-1] == 429


def test_with_the_cache_down_a_pin_still_signs_in(owner, staff, main_st, settings):
    """The till's attempt limit lives in the cache; unreachable, it lets the attempt through
    (the per-member lock of five is in the database), never a 500 at the counter."""
    client = tablet(paired_token(owner, main_st))
    membership = with_pin(staff)
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    }
    response = client.post("/till/switch/", {"member": membership.pk, "pin": PIN})
    assert response.status_code == 302 and response["Location"] == "/pos/"


def test_logging_out_on_a_paired_tablet_goes_back_to_the_pin_switch(owner, staff, main_st):
    client = tablet(paired_token(owner, main_st))
    client.force_login(staff)
    till = client.get("/pos/").content.decode()
    assert 'name="next" value="/till/switch/"' in till
    response = client.post("/accounts/logout/", {"next": "/till/switch/"}, follow=True)
    assert response.redirect_chain[-1][0] == "/till/switch/" and response.status_code == 200
    assert SESSION_KEY not in client.session
    off_tablet = signed_in(staff).get("/pos/").content.decode()
    assert 'name="next" value="/accounts/login/?next=/pos/"' in off_tablet


def test_a_tablets_login_page_offers_the_pin_switch(owner, main_st):
    """A session that timed out on a tablet lands on the login page: staff switch by PIN."""
    on_tablet = tablet(paired_token(owner, main_st)).get("/accounts/login/").content.decode()
    assert 'href="/till/switch/"' in on_tablet
    elsewhere = Client().get("/accounts/login/").content.decode()
    assert "/till/switch/" not in elsewhere


def test_the_middleware_runs_no_query_without_a_cookie(db, django_assert_num_queries):
    request = RequestFactory().get("/pos/")
    with django_assert_num_queries(0):
        DeviceMiddleware(lambda r: None)(request)  # type: ignore[arg-type,return-value]
    assert request.device is None  # type: ignore[attr-defined]


def test_the_till_has_no_switch_button_off_a_paired_tablet(staff, main_st):
    page = signed_in(staff).get("/pos/").content.decode()
    assert "/till/switch/" not in page


# --- /accounts/pin/ and resets ------------------------------------------------------------


def test_a_member_sets_a_pin_then_needs_the_password_to_change_it(staff):
    client = signed_in(staff)
    assert client.get("/accounts/pin/").status_code == 200
    first = client.post("/accounts/pin/", {"pin": PIN, "pin_again": PIN})
    assert first.status_code == 302
    membership = Membership.objects.get(user=staff)
    assert membership.pin_hash
    refused = client.post(
        "/accounts/pin/", {"current_password": "nope", "pin": "4826", "pin_again": "4826"}
    )
    assert refused.status_code == 400 and "not your password" in refused.content.decode()
    changed = client.post(
        "/accounts/pin/",
        {"current_password": "pw-for-tests-1", "pin": "4826", "pin_again": "4826"},
    )
    assert changed.status_code == 302
    assert TeamEvent.objects.filter(action=TeamAction.PIN_SET, subject=staff).count() == 2


@pytest.mark.parametrize(
    ("pin", "again", "says"),
    [
        ("1234", "1234", "run of digits"),
        ("7777", "7777", "repeated"),
        ("12", "12", "4 to 6 digits"),
        ("2580", "2581", "differ"),
    ],
)
def test_a_bad_pin_is_a_400_on_the_field_and_sets_nothing(staff, pin, again, says):
    response = signed_in(staff).post("/accounts/pin/", {"pin": pin, "pin_again": again})
    assert response.status_code == 400 and says in response.content.decode()
    assert Membership.objects.get(user=staff).pin_hash == ""


def test_pin_resets_stay_in_the_organization_and_with_managers(owner, manager, staff, outsider):
    theirs = with_pin(outsider)
    assert signed_in(owner).post(f"/settings/devices/pins/{theirs.pk}/reset/").status_code == 404
    assert Membership.objects.get(pk=theirs.pk).pin_hash
    mine = with_pin(staff)
    assert signed_in(staff).post(f"/settings/devices/pins/{mine.pk}/reset/").status_code == 403
    owners = with_pin(owner)
    assert signed_in(manager).post(f"/settings/devices/pins/{owners.pk}/reset/").status_code == 403
    assert Membership.objects.get(pk=owners.pk).pin_hash
    assert signed_in(manager).post(f"/settings/devices/pins/{mine.pk}/reset/").status_code == 302
    assert Membership.objects.get(pk=mine.pk).pin_hash == ""


def test_the_pin_lock_shows_on_the_tills_page(owner, staff, main_st):
    membership = with_pin(staff)
    Membership.objects.filter(pk=membership.pk).update(
        pin_locked_until=timezone.now() + timedelta(minutes=10)
    )
    page = signed_in(owner).get("/settings/devices/").content.decode()
    assert "locked until" in page and f"Reset {staff.email}" in page
