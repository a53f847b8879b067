"""Shared till tablets (accounts/services/devices.py): pairing, device tokens, PINs and the lock."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from accounts.errors import ConflictError, ForbiddenError, InvalidInput, NotFoundError
from accounts.models import Device, Membership, Role, TeamAction, TeamEvent, hash_token
from accounts.services import add_member
from accounts.services.devices import (
    PIN_LOCK_MINUTES,
    PIN_MAX_FAILURES,
    check_pin,
    create_pairing,
    device_attempt_allowed,
    device_for_token,
    pair,
    pin_problem,
    reset_pin,
    revoke_device,
    set_pin,
    switchable_members,
)
from accounts.tenancy import tenant_for_user
from tests.factories import UserFactory

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


def tenant(user):
    found = tenant_for_user(user)
    assert found is not None
    return found


def membership(user) -> Membership:
    return Membership.objects.select_related("user", "organization").get(user=user)


def actions(org) -> list[str]:
    return list(TeamEvent.objects.for_org(org).order_by("id").values_list("action", flat=True))


# --- pairing ------------------------------------------------------------------------------


def test_a_pairing_link_is_stored_only_as_its_hash_and_lasts_15_minutes(owner, main_st):
    device, raw = create_pairing(tenant=tenant(owner), location=main_st, name="Front", now=T0)
    assert device.pairing_token_hash == hash_token(raw) and raw not in device.pairing_token_hash
    assert device.pairing_expires_at == T0 + timedelta(minutes=15)
    assert device.paired_at is None and device.token_hash is None


def test_managers_pair_only_at_their_locations_and_staff_not_at_all(
    manager, staff, main_st, harbour
):
    create_pairing(tenant=tenant(manager), location=main_st, name="Till 1")
    with pytest.raises(NotFoundError):
        create_pairing(tenant=tenant(manager), location=harbour, name="Till 2")
    with pytest.raises(ForbiddenError):
        create_pairing(tenant=tenant(staff), location=main_st, name="Till 3")
    assert Device.objects.count() == 1


def test_another_orgs_location_cannot_be_paired(owner, other_location):
    with pytest.raises(NotFoundError):
        create_pairing(tenant=tenant(owner), location=other_location, name="Theirs")


@pytest.mark.parametrize("name", ["", "   ", "x" * 101, "Till\u202e1", "Till\x001"])
def test_a_device_name_must_be_plain_text(owner, main_st, name):
    with pytest.raises(InvalidInput) as raised:
        create_pairing(tenant=tenant(owner), location=main_st, name=name)
    assert raised.value.field == "name"
    assert not Device.objects.exists()


def test_pairing_sets_a_device_token_and_records_who_paired(org, owner, main_st):
    device, raw = create_pairing(tenant=tenant(owner), location=main_st, name="Front", now=T0)
    paired, token = pair(raw_token=raw, user=owner, now=T0 + timedelta(minutes=5))
    device.refresh_from_db()
    assert device.token_hash == hash_token(token) and device.paired_at == T0 + timedelta(minutes=5)
    assert len(token) >= 43  # 32 random bytes
    assert paired.is_paired
    event = TeamEvent.objects.for_org(org).get(action=TeamAction.DEVICE_PAIRED)
    assert (event.actor, event.subject_label) == (owner, "Front at Main St")


def test_a_pairing_link_is_used_once(owner, main_st):
    _device, raw = create_pairing(tenant=tenant(owner), location=main_st, name="Front", now=T0)
    pair(raw_token=raw, user=owner, now=T0)
    with pytest.raises(ConflictError, match="used already"):
        pair(raw_token=raw, user=owner, now=T0)


def test_an_expired_pairing_link_pairs_nothing(owner, main_st):
    device, raw = create_pairing(tenant=tenant(owner), location=main_st, name="Front", now=T0)
    with pytest.raises(ConflictError, match="expired"):
        pair(raw_token=raw, user=owner, now=T0 + timedelta(minutes=15))
    device.refresh_from_db()
    assert device.token_hash is None


def test_a_revoked_waiting_device_cannot_be_paired(owner, main_st):
    device, raw = create_pairing(tenant=tenant(owner), location=main_st, name="Front", now=T0)
    revoke_device(tenant=tenant(owner), device=device, now=T0)
    with pytest.raises(ConflictError):
        pair(raw_token=raw, user=owner, now=T0)


def test_only_an_owner_or_a_manager_of_that_location_may_pair(
    owner, manager, staff, outsider, harbour
):
    _device, raw = create_pairing(tenant=tenant(owner), location=harbour, name="Harbour", now=T0)
    for person in (staff, outsider, manager):  # the manager is limited to Main St
        with pytest.raises(NotFoundError):
            pair(raw_token=raw, user=person, now=T0)
    with pytest.raises(NotFoundError):
        pair(raw_token="not-a-token", user=owner, now=T0)
    pair(raw_token=raw, user=owner, now=T0)


@pytest.mark.django_db(transaction=True)
def test_two_tablets_opening_one_link_at_once_pair_one(owner, main_st):
    _device, raw = create_pairing(tenant=tenant(owner), location=main_st, name="Front")
    barrier = threading.Barrier(4)

    def attempt(_):
        try:
            barrier.wait(timeout=10)
            return pair(raw_token=raw, user=owner)[1]
        except ConflictError:
            return None
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=4) as pool:
        tokens = [t for t in pool.map(attempt, range(4)) if t]
    assert len(tokens) == 1
    assert Device.objects.get().token_hash == hash_token(tokens[0])
    assert TeamEvent.objects.filter(action=TeamAction.DEVICE_PAIRED).count() == 1


# --- device tokens ------------------------------------------------------------------------


@pytest.fixture
def paired(owner, main_st):
    device, raw = create_pairing(tenant=tenant(owner), location=main_st, name="Front", now=T0)
    device, token = pair(raw_token=raw, user=owner, now=T0)
    return device, token


def test_a_device_token_finds_its_device_and_nothing_else_does(paired):
    device, token = paired
    assert device_for_token(token, now=T0) == device
    assert device_for_token("", now=T0) is None
    assert device_for_token(token + "x", now=T0) is None


def test_last_seen_is_written_at_most_once_a_minute(paired, django_assert_num_queries):
    device, token = paired
    with django_assert_num_queries(1):
        device_for_token(token, now=T0 + timedelta(seconds=30))
    with django_assert_num_queries(2):
        device_for_token(token, now=T0 + timedelta(minutes=1))
    device.refresh_from_db()
    assert device.last_seen_at == T0 + timedelta(minutes=1)


def test_a_revoked_device_or_one_at_an_archived_location_is_no_device(org, owner, paired, main_st):
    device, token = paired
    assert revoke_device(tenant=tenant(owner), device=device, now=T0)
    assert not revoke_device(tenant=tenant(owner), device=device, now=T0)  # once
    assert device_for_token(token, now=T0) is None
    assert actions(org).count(TeamAction.DEVICE_REVOKED) == 1

    _waiting, raw = create_pairing(tenant=tenant(owner), location=main_st, name="Back", now=T0)
    _other, other_token = pair(raw_token=raw, user=owner, now=T0)
    main_st.is_active = False
    main_st.save()
    assert device_for_token(other_token, now=T0) is None


def test_managers_revoke_only_their_locations_tills(owner, manager, staff, harbour):
    device, _raw = create_pairing(tenant=tenant(owner), location=harbour, name="H", now=T0)
    with pytest.raises(NotFoundError):
        revoke_device(tenant=tenant(manager), device=device)
    with pytest.raises(ForbiddenError):
        revoke_device(tenant=tenant(staff), device=device)
    device.refresh_from_db()
    assert device.revoked_at is None


# --- PINs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pin", "ok"),
    [
        ("2580", True),
        ("97531", True),
        ("135792", True),
        ("123", False),
        ("1234567", False),
        ("12a4", False),
        ("١٢٣٤", False),  # Arabic-Indic digits: isdigit() says yes, the keypad says no
        ("0000", False),
        ("1234", False),
        ("9876", False),
        ("456789", False),
        (" 2580", False),
    ],
)
def test_a_pin_is_4_to_6_digits_and_not_an_obvious_guess(pin, ok):
    assert (pin_problem(pin) == "") is ok


def test_a_pin_is_stored_hashed_and_recorded(org, staff):
    member = membership(staff)
    set_pin(membership=member, pin="2580")
    member.refresh_from_db()
    assert member.pin_hash and "2580" not in member.pin_hash
    assert check_pin(membership=member, pin="2580", now=T0).ok
    assert actions(org) == [TeamAction.PIN_SET]


def test_a_weak_pin_is_refused_and_changes_nothing(staff):
    member = membership(staff)
    with pytest.raises(InvalidInput) as raised:
        set_pin(membership=member, pin="1111")
    assert raised.value.field == "pin"
    member.refresh_from_db()
    assert member.pin_hash == ""


def test_five_wrong_pins_lock_for_15_minutes_even_against_the_right_one(org, staff):
    member = membership(staff)
    set_pin(membership=member, pin="2580")
    results = [check_pin(membership=member, pin="1397", now=T0) for _ in range(PIN_MAX_FAILURES)]
    assert [r.tries_left for r in results[:-1]] == [4, 3, 2, 1]
    assert results[-1].locked_until == T0 + timedelta(minutes=PIN_LOCK_MINUTES)

    still = check_pin(membership=member, pin="2580", now=T0 + timedelta(minutes=14, seconds=59))
    assert not still.ok and still.is_locked
    after = check_pin(membership=member, pin="2580", now=T0 + timedelta(minutes=15))
    assert after.ok
    assert actions(org).count(TeamAction.PIN_LOCKED) == 1


def test_after_the_lock_passes_a_member_has_five_tries_again(staff):
    member = membership(staff)
    set_pin(membership=member, pin="2580")
    for _ in range(PIN_MAX_FAILURES):
        check_pin(membership=member, pin="1397", now=T0)
    later = T0 + timedelta(minutes=PIN_LOCK_MINUTES)
    assert check_pin(membership=member, pin="1397", now=later).tries_left == 4


def test_a_right_pin_resets_the_count(staff):
    member = membership(staff)
    set_pin(membership=member, pin="2580")
    for _ in range(PIN_MAX_FAILURES - 1):
        check_pin(membership=member, pin="1397", now=T0)
    assert check_pin(membership=member, pin="2580", now=T0).ok
    assert check_pin(membership=member, pin="1397", now=T0).tries_left == PIN_MAX_FAILURES - 1


def test_no_pin_or_a_deactivated_member_never_matches(staff):
    member = membership(staff)
    assert not check_pin(membership=member, pin="", now=T0).ok
    set_pin(membership=member, pin="2580")
    Membership.objects.filter(pk=member.pk).update(is_active=False)
    assert not check_pin(membership=member, pin="2580", now=T0).ok


@pytest.mark.django_db(transaction=True)
def test_parallel_guesses_get_five_tries_between_them(staff):
    member = membership(staff)
    set_pin(membership=member, pin="2580")
    barrier = threading.Barrier(8)

    def guess(n):
        try:
            barrier.wait(timeout=10)
            return check_pin(membership=member, pin=f"{1300 + n * 7:04d}", now=T0)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(guess, range(8)))
    counted = [r for r in results if not r.is_locked]
    locked = [r for r in results if r.is_locked]
    assert len(counted) == PIN_MAX_FAILURES - 1 and len(locked) == 8 - (PIN_MAX_FAILURES - 1)
    assert sorted(r.tries_left for r in counted) == [1, 2, 3, 4]
    assert TeamEvent.objects.filter(action=TeamAction.PIN_LOCKED).count() == 1
    member.refresh_from_db()
    assert member.pin_locked_until == T0 + timedelta(minutes=PIN_LOCK_MINUTES)


def test_a_manager_resets_a_pin_and_its_lock(org, manager, staff):
    member = membership(staff)
    set_pin(membership=member, pin="2580")
    for _ in range(PIN_MAX_FAILURES):
        check_pin(membership=member, pin="1397", now=T0)
    reset_pin(tenant=tenant(manager), membership=member)
    member.refresh_from_db()
    assert (member.pin_hash, member.pin_failures, member.pin_locked_until) == ("", 0, None)
    event = TeamEvent.objects.for_org(org).get(action=TeamAction.PIN_RESET)
    assert (event.actor, event.subject) == (manager, staff)


def test_staff_reset_no_pin_and_managers_not_an_owners(owner, manager, staff, outsider):
    with pytest.raises(ForbiddenError):
        reset_pin(tenant=tenant(staff), membership=membership(manager))
    with pytest.raises(ForbiddenError):
        reset_pin(tenant=tenant(manager), membership=membership(owner))
    with pytest.raises(NotFoundError):
        reset_pin(tenant=tenant(owner), membership=membership(outsider))


def test_a_manager_resets_only_the_pins_of_people_at_their_locations(org, manager, harbour):
    """Manager at Main St: not a Harbour Rd barista's PIN (404, as for another organization's
    member), but one who works everywhere."""
    at_harbour, everywhere = UserFactory.create(), UserFactory.create()
    add_member(organization=org, user=at_harbour, role=Role.STAFF, locations=[harbour])
    add_member(organization=org, user=everywhere, role=Role.STAFF)
    for user in (at_harbour, everywhere):
        set_pin(membership=membership(user), pin="2580")
    with pytest.raises(NotFoundError):
        reset_pin(tenant=tenant(manager), membership=membership(at_harbour))
    assert membership(at_harbour).pin_hash
    reset_pin(tenant=tenant(manager), membership=membership(everywhere))
    assert membership(everywhere).pin_hash == ""


def test_who_may_switch_in_on_a_till(org, owner, manager, staff, harbour, paired):
    device, _token = paired  # at Main St
    harbour_only = membership(staff)
    for person in (owner, manager):
        set_pin(membership=membership(person), pin="2580")
    assert {m.user for m in switchable_members(device)} == {owner, manager}  # staff: no PIN
    set_pin(membership=harbour_only, pin="2580")
    harbour_only.locations.set([harbour])
    assert {m.user for m in switchable_members(device)} == {owner, manager}
    harbour_only.locations.set([])
    assert {m.user for m in switchable_members(device)} == {owner, manager, staff}


def test_a_device_may_try_20_pins_in_five_minutes(paired, settings):
    device, _token = paired
    assert all(device_attempt_allowed(device, now=T0) for _ in range(20))
    assert not device_attempt_allowed(device, now=T0 + timedelta(seconds=10))
    assert device_attempt_allowed(device, now=T0 + timedelta(minutes=5))
