"""Square in: connecting, and each notification we use, signed as Square signs them (the SDK's
verify_signature is the reference), replayed, out of order, and sent to the wrong door."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st
from square.utils.webhooks_helper import verify_signature

from accounts.models import Role
from connectors import square
from connectors.models import SquareConnection, SquareEvent, SquarePayment, SquareRefund
from connectors.services import connect_square
from cxcore.models import Customer, Episode, Identifier
from tests.conftest import key_client
from tests.connectors.square_events import (
    SQUARE_HARBOUR,
    SQUARE_MAIN,
    body_of,
    booking_event,
    customer_event,
    payment_event,
    refund_event,
    send,
    sign,
    url_of,
)
from tests.factories import UserFactory

KEY = "sq-signature-key-ours"
THEIR_KEY = "sq-signature-key-theirs"
CONNECT = "/api/v1/connectors/square/"


@pytest.fixture
def connection(org, main_st, harbour, owner):
    made, _ = connect_square(
        organization=org,
        signature_key=KEY,
        locations={SQUARE_MAIN: "main-st", SQUARE_HARBOUR: "harbour-rd"},
        by_user=owner,
    )
    return made


@pytest.fixture
def theirs(other_org, other_location):
    made, _ = connect_square(
        organization=other_org, signature_key=THEIR_KEY, locations={SQUARE_MAIN: "elsewhere"}
    )
    return made


def ago(**delta) -> datetime:
    return timezone.now() - timedelta(**delta)


def stored() -> dict:
    return {
        "customers": Customer.objects.count(),
        "identifiers": Identifier.objects.count(),
        "episodes": Episode.objects.count(),
        "events": SquareEvent.objects.count(),
        "payments": SquarePayment.objects.count(),
        "refunds": SquareRefund.objects.count(),
    }


def session(user):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_login(user)
    return client


# --- connecting ------------------------------------------------------------------------------


def test_connecting_answers_the_notification_url_to_register_in_square(owner, main_st):
    response = session(owner).post(
        CONNECT, {"signature_key": KEY, "locations": {SQUARE_MAIN: "main-st"}}, format="json"
    )
    assert response.status_code == 201, response.content
    connection = SquareConnection.objects.get()
    body = response.json()
    assert (
        body["notification_url"]
        == f"{settings.SITE_URL}/api/v1/connectors/square/{connection.token}/"
    )
    assert body["locations"] == {SQUARE_MAIN: "main-st"}
    assert "payment.updated" in body["events"] and "refund.updated" in body["events"]
    assert KEY not in response.content.decode()  # the key goes in, never out
    assert session(owner).get(CONNECT).json()["notification_url"] == body["notification_url"]


def test_connecting_again_keeps_the_url_and_takes_the_new_key(owner, connection):
    response = session(owner).post(CONNECT, {"signature_key": "rotated"}, format="json")
    assert response.status_code == 200
    assert response.json()["notification_url"].endswith(f"/{connection.token}/")
    connection.refresh_from_db()
    assert connection.signature_key == "rotated" and connection.locations == {}
    assert SquareConnection.objects.count() == 1


def test_connecting_with_a_location_we_do_not_have_names_it_and_changes_nothing(owner, main_st):
    response = session(owner).post(
        CONNECT, {"signature_key": KEY, "locations": {SQUARE_MAIN: "nowhere"}}, format="json"
    )
    assert response.status_code == 404
    assert response.json()["errors"][0]["field"] == f"locations.{SQUARE_MAIN}"
    assert not SquareConnection.objects.exists()
    missing = session(owner).post(CONNECT, {"locations": {}}, format="json")
    assert missing.status_code == 400
    assert missing.json()["errors"][0]["field"] == "signature_key"


def test_only_owners_and_organization_wide_keys_connect(
    org, main_st, manager, staff, till_key, org_key
):
    body = {"signature_key": KEY, "locations": {}}
    for client in (session(manager), session(staff), key_client(till_key)):
        assert client.post(CONNECT, body, format="json").status_code == 403
    assert not SquareConnection.objects.exists()
    assert key_client(org_key).post(CONNECT, body, format="json").status_code == 201


def test_disconnecting_makes_the_url_answer_410(owner, connection):
    assert session(owner).delete(CONNECT).status_code == 204
    response = send(connection.token, customer_event(), key=KEY)
    assert response.status_code == 410
    assert response.json()["error"] != ""
    assert not Customer.objects.exists()
    assert session(owner).get(CONNECT).status_code == 404


# --- signatures ------------------------------------------------------------------------------


@given(
    body=st.text(min_size=1, max_size=200),
    url=st.text(min_size=1, max_size=80),
    key=st.text(min_size=1, max_size=40),
)
def test_our_signature_check_agrees_with_the_sdk(body, url, key):
    header = square.signature_of(body=body.encode(), notification_url=url, signature_key=key)
    sdk = verify_signature(
        request_body=body, signature_header=header, signature_key=key, notification_url=url
    )
    assert sdk is True
    assert square.is_signed(body=body.encode(), header=header, notification_url=url, key=key)
    wrong = header[:-2] + ("A=" if not header.endswith("A=") else "B=")
    assert not square.is_signed(body=body.encode(), header=wrong, notification_url=url, key=key)


@pytest.mark.parametrize("how", ["wrong key", "no header", "another url", "body changed", "empty"])
def test_a_bad_signature_is_401_and_stores_nothing(connection, how):
    event = payment_event(at=ago(minutes=5))
    body = body_of(event)
    url = settings.SITE_URL + url_of(connection.token)
    signature = {
        "wrong key": sign(body, url=url, key="not-our-key"),
        "no header": "",
        "another url": sign(body, url="https://example.com/hook", key=KEY),
        "body changed": sign(body, url=url, key=KEY),
        "empty": "",
    }[how]
    if how == "body changed":
        body = body.replace(b"1250", b"9999")
    before = stored()
    response = send(connection.token, body, key=KEY, signature=signature)
    assert response.status_code == 401, response.content
    assert response.json()["error"] == "not_authenticated"
    assert stored() == before


def test_an_event_type_we_do_not_use_is_200_and_ignored(connection):
    before = stored()
    event = {
        "merchant_id": "M",
        "type": "inventory.count.updated",
        "event_id": "e-inv",
        "created_at": "2026-11-30T12:00:00Z",
        "data": {"type": "inventory", "object": {}},
    }
    response = send(connection.token, event, key=KEY)
    assert response.status_code == 200
    assert response.json() == {"outcome": "ignored"}
    assert stored() == before


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda e: e.pop("event_id"), "body.event_id"),
        (lambda e: e["data"]["object"]["payment"].pop("id"), "data.object.payment.id"),
        (
            lambda e: e["data"]["object"]["payment"].update(created_at="yesterday"),
            "data.object.payment.created_at",
        ),
        (lambda e: e["data"]["object"].pop("payment"), "data.object.payment"),
        (
            lambda e: e["data"]["object"]["payment"].update(status="\ud800"),
            "data.object.payment.status",
        ),
        (lambda e: e.update(type="payment.created\x00"), "body.type"),
    ],
)
def test_a_signed_but_malformed_event_is_400_naming_the_field_and_stores_nothing(
    connection, change, field
):
    event = json.loads(body_of(payment_event(at=ago(minutes=5))))
    change(event)
    before = stored()
    response = send(connection.token, event, key=KEY)
    assert response.status_code == 400, response.content
    assert response.json()["errors"][0]["field"] == field
    assert stored() == before


def test_a_signed_body_that_is_not_json_is_400(connection):
    response = send(connection.token, b"not json {", key=KEY)
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "body"


# --- customers -------------------------------------------------------------------------------


def test_customer_created_is_the_customer_with_square_id_as_pos_id(connection, org):
    event = customer_event(phone_number="07400 123456", email_address="Dan@Example.com")
    response = send(connection.token, event, key=KEY)
    assert response.status_code == 200 and response.json() == {"outcome": "recorded"}
    customer = Customer.objects.get(organization=org)
    assert customer.name == "Dan Reyes"
    assert set(customer.identifiers.values_list("kind", "value")) == {
        ("pos_id", "SQCUST1"),
        ("phone", "+447400123456"),
        ("email", "dan@example.com"),
    }


def test_customer_updated_learns_identifiers_on_the_same_customer_in_any_order(connection, org):
    updated = customer_event("customer.updated", email_address="dan@example.com")
    created = customer_event(phone_number="+447400123456")
    assert send(connection.token, updated, key=KEY).status_code == 200
    assert send(connection.token, created, key=KEY).status_code == 200
    customer = Customer.objects.get(organization=org)
    assert {i.kind for i in customer.identifiers.all()} == {"pos_id", "email", "phone"}


def test_a_phone_square_holds_that_is_not_a_number_is_left_out_not_refused(connection, org):
    response = send(connection.token, customer_event(phone_number="call reception"), key=KEY)
    assert response.status_code == 200
    assert list(Identifier.objects.values_list("kind", flat=True)) == ["pos_id"]


def test_a_known_customer_found_by_phone_learns_the_square_id(connection, org, api):
    api.post(
        "/api/v1/episodes/",
        {"customer": {"phone": "+447400123456", "name": "Dan"}, "kind": "visit"},
        format="json",
    )
    send(connection.token, customer_event(phone_number="+447400123456"), key=KEY)
    customer = Customer.objects.get(organization=org)
    assert customer.identifiers.filter(kind="pos_id", value="SQCUST1").exists()


# --- payments --------------------------------------------------------------------------------


def test_a_completed_payment_is_a_visit_with_spend_at_the_mapped_location(connection, org):
    at = ago(hours=1)
    response = send(connection.token, payment_event(at=at, location_id=SQUARE_HARBOUR), key=KEY)
    assert response.json() == {"outcome": "recorded"}
    visit = Episode.objects.get(organization=org)
    assert (visit.kind, visit.source, getattr(visit.location, "slug", None)) == (
        "visit",
        "pos",
        "harbour-rd",
    )
    assert visit.occurred_at == at.replace(microsecond=at.microsecond // 1000 * 1000)
    assert visit.external_id == "square:payment:SQPAY1"
    customer = visit.customer
    assert customer.total_spend == Decimal("12.50") and customer.visit_count == 1
    assert customer.usual_order == ""  # a payment has no line items to be "usual"
    assert customer.identifiers.get().value == "SQCUST1"


def test_a_payment_not_yet_completed_is_no_visit_until_it_is(connection, org):
    at = ago(hours=1)
    approved = payment_event(at=at, status="APPROVED")
    assert send(connection.token, approved, key=KEY).json() == {"outcome": "stored"}
    assert not Episode.objects.exists()
    completed = payment_event("payment.updated", at=at, updated_at=at + timedelta(minutes=1))
    assert send(connection.token, completed, key=KEY).json() == {"outcome": "recorded"}
    assert Episode.objects.filter(kind="visit").count() == 1


def test_payment_updated_before_payment_created_is_one_visit(connection, org):
    at = ago(hours=1)
    later = payment_event("payment.updated", at=at, updated_at=at + timedelta(minutes=2))
    earlier = payment_event("payment.created", at=at, status="APPROVED")
    assert send(connection.token, later, key=KEY).json() == {"outcome": "recorded"}
    assert send(connection.token, earlier, key=KEY).status_code == 200
    assert Episode.objects.count() == 1
    payment = SquarePayment.objects.get()
    assert payment.status == "COMPLETED"  # the older state did not overwrite the newer one


def test_the_same_event_twice_changes_nothing_the_second_time(connection, org):
    event = payment_event(at=ago(hours=1), event_id="evt-1")
    assert send(connection.token, event, key=KEY).json() == {"outcome": "recorded"}
    before = stored()
    again = send(connection.token, event, key=KEY)
    assert again.status_code == 200 and again.json() == {"outcome": "duplicate"}
    assert stored() == before


def test_two_events_about_one_completed_payment_are_one_visit(connection, org):
    at = ago(hours=1)
    send(connection.token, payment_event(at=at), key=KEY)
    send(connection.token, payment_event("payment.updated", at=at, updated_at=at), key=KEY)
    assert Episode.objects.count() == 1
    assert Customer.objects.get().visit_count == 1


def test_a_payment_without_a_customer_is_kept_and_becomes_a_visit_once_it_names_one(connection):
    at = ago(hours=1)
    anonymous = payment_event(at=at, customer_id=None)
    assert send(connection.token, anonymous, key=KEY).json() == {"outcome": "no_customer"}
    assert not Episode.objects.exists() and SquarePayment.objects.count() == 1
    named = payment_event("payment.updated", at=at, updated_at=at + timedelta(minutes=1))
    assert send(connection.token, named, key=KEY).json() == {"outcome": "recorded"}
    assert Episode.objects.count() == 1


def test_an_unmapped_square_location_is_recorded_at_no_location_and_logged(connection, caplog):
    at = ago(hours=2)
    with caplog.at_level(logging.WARNING, logger="connectors.services"):
        send(connection.token, payment_event(at=at, location_id="LUNKNOWN"), key=KEY)
        refund = refund_event(at=at + timedelta(minutes=30), location_id="LUNKNOWN")
        send(connection.token, refund, key=KEY)
    visit, incident = Episode.objects.order_by("occurred_at")
    assert visit.location is None and incident.location is None  # kept, not lost
    assert incident.experience == -2
    assert "LUNKNOWN" in caplog.text and "not mapped" in caplog.text


# --- refunds ---------------------------------------------------------------------------------


def test_a_completed_refund_is_a_negative_incident_on_the_touchpoint_of_its_reason(connection):
    at = ago(hours=3)
    send(connection.token, payment_event(at=at), key=KEY)
    pending = refund_event("refund.created", at=at + timedelta(minutes=5), status="PENDING")
    assert send(connection.token, pending, key=KEY).json() == {"outcome": "stored"}
    completed = refund_event(at=at + timedelta(minutes=5), updated_at=at + timedelta(minutes=6))
    assert send(connection.token, completed, key=KEY).json() == {"outcome": "recorded"}
    incident = Episode.objects.get(kind="incident")
    assert incident.experience == -2  # "never rung in": the item never came
    assert incident.touchpoints == [{"code": "order_accuracy", "third_party": False}]
    assert incident.summary == "Salad never rung in"
    assert getattr(incident.location, "slug", None) == "main-st"
    assert incident.customer.last_experience == -2
    assert incident.customer.recovery_due_at is not None  # the sweep will open a case


def test_a_refund_for_a_cold_drink_is_food_and_drink_at_minus_one(connection):
    at = ago(hours=3)
    send(connection.token, payment_event(at=at), key=KEY)
    send(connection.token, refund_event(at=at + timedelta(minutes=5), reason="Latte cold"), key=KEY)
    incident = Episode.objects.get(kind="incident")
    assert (incident.experience, incident.touchpoints[0]["code"]) == (-1, "food_and_drink")


def test_a_refund_before_its_payment_waits_and_is_recorded_when_the_payment_comes(connection):
    at = ago(hours=3)
    refund = refund_event(at=at + timedelta(minutes=5))
    assert send(connection.token, refund, key=KEY).json() == {"outcome": "pending"}
    assert not Episode.objects.exists()
    assert SquareRefund.objects.get().episode_id is None  # kept, not dropped
    send(connection.token, payment_event(at=at), key=KEY)
    assert sorted(Episode.objects.values_list("kind", flat=True)) == ["incident", "visit"]
    assert SquareRefund.objects.get().episode_id is not None
    # And a replay of the refund, now that it is recorded, adds nothing.
    send(connection.token, refund_event(at=at + timedelta(minutes=5)), key=KEY)
    assert Episode.objects.count() == 2


def test_an_older_refund_state_arriving_late_does_not_undo_a_completed_one(connection):
    at = ago(hours=3)
    send(connection.token, payment_event(at=at), key=KEY)
    done = refund_event(at=at, updated_at=at + timedelta(minutes=9))
    send(connection.token, done, key=KEY)
    late = refund_event("refund.created", at=at, status="PENDING")
    send(connection.token, late, key=KEY)
    assert SquareRefund.objects.get().status == "COMPLETED"
    assert Episode.objects.filter(kind="incident").count() == 1


def test_the_organizations_own_reason_map_decides_the_touchpoint(connection, owner):
    session(owner).put(
        "/api/v1/connectors/reasons/",
        {"entries": [{"phrase": "valet", "touchpoint": "parking_valet", "never_came": False}]},
        format="json",
    )
    at = ago(hours=3)
    send(connection.token, payment_event(at=at), key=KEY)
    send(connection.token, refund_event(at=at, reason="Valet scratched the car"), key=KEY)
    incident = Episode.objects.get(kind="incident")
    assert (incident.touchpoints[0]["code"], incident.experience) == ("parking_valet", -1)


# --- bookings --------------------------------------------------------------------------------


def test_a_square_booking_is_a_reservation_saying_when(connection, main_st):
    start = datetime(2026, 12, 5, 19, 0, tzinfo=UTC)  # a Saturday; London is on UTC then
    send(connection.token, booking_event(at=ago(minutes=5), start_at=start), key=KEY)
    again = booking_event(at=ago(minutes=5), start_at=start + timedelta(hours=1))
    send(connection.token, again, key=KEY)  # a reschedule of the same booking
    reservation = Episode.objects.get()
    assert (reservation.kind, reservation.summary, reservation.location) == (
        "reservation",
        "Sat 19:00",
        main_st,
    )


def test_a_cancelled_booking_is_no_reservation(connection):
    event = booking_event(at=ago(minutes=5), start_at=ago(days=-3), status="CANCELLED_BY_CUSTOMER")
    assert send(connection.token, event, key=KEY).json() == {"outcome": "skipped"}
    assert not Episode.objects.exists()


# --- whose door ------------------------------------------------------------------------------


def test_another_organizations_url_cannot_write_into_ours(connection, theirs, org, other_org):
    at = ago(hours=1)
    # Signed with our key but sent to their URL: their key does not verify it.
    mine = payment_event(at=at)
    ours_for_theirs = sign(body_of(mine), url=settings.SITE_URL + url_of(theirs.token), key=KEY)
    response = send(theirs.token, mine, key=KEY, signature=ours_for_theirs)
    assert response.status_code == 401
    # Their own, properly signed notification lands in their organization only.
    assert send(theirs.token, payment_event(at=at), key=THEIR_KEY).status_code == 200
    assert not Episode.objects.filter(organization=org).exists()
    assert not Customer.objects.filter(organization=org).exists()
    their_visit = Episode.objects.select_related("location").get(organization=other_org)
    assert getattr(their_visit.location, "slug", None) == "elsewhere"
    # The same Square ids in our organization are ours, separately.
    assert send(connection.token, payment_event(at=at), key=KEY).json() == {"outcome": "recorded"}
    assert Episode.objects.filter(organization=org).count() == 1


def test_an_unknown_token_is_404(connection):
    response = send("no-such-token", customer_event(), key=KEY)
    assert response.status_code == 404
    assert not Customer.objects.exists()


def test_members_of_no_organization_cannot_read_the_connection(connection):
    assert session(UserFactory()).get(CONNECT).status_code == 403
    assert Role.OWNER  # the persona that can is tested above


def test_erasing_the_customer_clears_what_square_said_about_them(connection):
    from cxcore.privacy import erase_customer

    at = ago(hours=3)
    send(connection.token, payment_event(at=at), key=KEY)
    send(connection.token, refund_event(at=at, reason="Dan shouted at staff"), key=KEY)
    erase_customer(customer=Customer.objects.get(), reason="asked to be forgotten")
    assert SquarePayment.objects.get().square_customer_id == ""
    assert SquareRefund.objects.get().reason == ""


@pytest.mark.django_db(transaction=True)
def test_the_same_event_delivered_four_times_at_once_is_recorded_once(org, main_st, harbour):
    import threading

    from django.db import connection as db

    made, _ = connect_square(
        organization=org, signature_key=KEY, locations={SQUARE_MAIN: "main-st"}
    )
    event = payment_event(at=ago(hours=1), event_id="evt-race")
    outcomes: list[str] = []

    def deliver() -> None:
        try:
            outcomes.append(send(made.token, event, key=KEY).json()["outcome"])
        finally:
            db.close()

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["duplicate", "duplicate", "duplicate", "recorded"]
    assert Episode.objects.count() == 1 and SquareEvent.objects.count() == 1


def test_a_square_booking_of_a_customer_with_an_open_case_reminds_the_case(connection, org):
    from cxcore.services import EpisodeInput, record_episode
    from recovery.models import CaseReminder, RecoveryCase
    from recovery.reminders import remind_of_reservations
    from recovery.services import create_default_playbooks
    from recovery.sweep import sweep_recovery

    create_default_playbooks(organization=org)
    send(connection.token, customer_event(), key=KEY)
    record_episode(
        organization=org,
        data=EpisodeInput(
            kind="complaint",
            identifiers={"pos_id": "SQCUST1"},
            occurred_at=ago(days=6),
            summary="Order never rung in",
            experience=-2,
        ),
    )
    sweep_recovery(now=timezone.now())
    case = RecoveryCase.objects.get()
    remind_of_reservations()  # the first run marks where reservations start
    start = datetime(2026, 12, 5, 19, 0, tzinfo=UTC)
    send(connection.token, booking_event(at=ago(minutes=1), start_at=start), key=KEY)
    assert remind_of_reservations() == 1
    reminder = CaseReminder.objects.get()
    assert reminder.case == case and reminder.booking == "Sat 19:00"
    assert reminder.line == (
        "Dan — order never rung in · 6 days ago, unacknowledged — booked Sat 19:00"
    )


def test_the_admin_shows_a_connection_without_its_signature_key(connection):
    from django.test import Client

    from accounts.models import User

    client = Client()
    client.force_login(User.objects.create_superuser("root@example.com", "pw-for-tests-1"))
    page = client.get(f"/admin/connectors/squareconnection/{connection.pk}/change/")
    assert page.status_code == 200
    assert connection.token in page.content.decode() and KEY not in page.content.decode()
