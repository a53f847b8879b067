"""The General settings page (/settings/): owners change the organization's settings in plain
units, managers read them, staff get the 403 page; every change is a TeamEvent with the old
and new value of each field (accounts/services/org_settings.py)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client

from accounts.errors import InvalidFields
from accounts.models import Organization, TeamAction, TeamEvent
from accounts.services.org_settings import update_organization_settings


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def form_data(org: Organization, **changes) -> dict:
    data = {
        "name": org.name,
        "country": org.country,
        "time_zone": org.time_zone,
        "recovery_grace_period": "2",
        "recovery_outcome_window": "30",
        "care_min_visits": "5",
        "care_gap_factor": "3.0",
        "quiet_hours_start": "22",
        "quiet_hours_end": "7",
        "high_spender_spend": "500.00",
        "text_retention_days": "",
        "care_holdout_share": str(org.care_holdout_share),
        "drift_window": str(org.drift_window),
        "drift_drop": str(org.drift_drop),
    }
    data.update(changes)
    return data


def test_the_owner_sees_the_settings_in_plain_units(owner, org):
    response = logged_in(owner).get("/settings/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "<h1>Settings</h1>" in body
    assert 'name="recovery_grace_period"' in body and 'value="2"' in body  # hours
    assert 'name="recovery_outcome_window"' in body and 'value="30"' in body  # days
    assert "Save settings" in body
    # The sub-navigation lists every settings page.
    for href in ("/settings/", "/settings/locations/", "/settings/team/", "/settings/devices/",
                 "/settings/import/", "/settings/webhooks/", "/settings/connections/",
                 "/accounts/api-keys/"):  # fmt: skip
        assert f'href="{href}"' in body, href


def test_the_owner_saves_and_each_change_is_recorded_old_and_new(owner, org):
    client = logged_in(owner)
    response = client.post(
        "/settings/",
        form_data(
            org,
            name="Corner Cup & Co",
            recovery_grace_period="1.5",
            recovery_outcome_window="14",
            care_gap_factor="2.5",
            text_retention_days="90",
            time_zone="Europe/Dublin",
        ),
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    org.refresh_from_db()
    assert org.name == "Corner Cup & Co"
    assert org.recovery_grace_period == timedelta(minutes=90)
    assert org.recovery_outcome_window == timedelta(days=14)
    assert org.care_gap_factor == Decimal("2.5")
    assert org.text_retention_days == 90
    assert org.time_zone == "Europe/Dublin"
    [event] = TeamEvent.objects.filter(organization=org, action=TeamAction.SETTINGS_CHANGED)
    assert event.actor == owner
    assert event.detail["changes"] == {
        "name": {"old": "Corner Cup", "new": "Corner Cup & Co"},
        "time_zone": {"old": "Europe/London", "new": "Europe/Dublin"},
        "recovery_grace_period": {"old": "2 hours", "new": "1.5 hours"},
        "recovery_outcome_window": {"old": "30 days", "new": "14 days"},
        "care_gap_factor": {"old": "3", "new": "2.5"},
        "text_retention_days": {"old": None, "new": 90},
    }
    assert "Saved the settings." in client.get("/settings/").content.decode()


def test_saving_unchanged_settings_records_nothing(owner, org):
    response = logged_in(owner).post("/settings/", form_data(org))
    assert response.status_code == 302
    assert not TeamEvent.objects.filter(action=TeamAction.SETTINGS_CHANGED).exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("recovery_grace_period", "-1"),
        ("recovery_grace_period", "721"),  # the model's bound: 30 days
        ("recovery_grace_period", "two"),
        ("recovery_outcome_window", "0"),
        ("recovery_outcome_window", "366"),
        ("recovery_outcome_window", "1.5"),
        ("quiet_hours_start", "24"),
        ("quiet_hours_end", "-1"),
        ("care_min_visits", "0"),
        ("care_gap_factor", "0.5"),
        ("care_gap_factor", "1000"),
        ("high_spender_spend", "-5"),
        ("high_spender_spend", "1e20"),
        ("text_retention_days", "29"),
        ("text_retention_days", "3651"),
        ("country", "XX"),
        ("time_zone", "Mars/Olympus"),
        ("name", ""),
        ("name", "Corner\u202eCup"),
        ("name", "Corner\x00Cup"),
        ("name", "x" * 201),
    ],
)
def test_a_bad_value_rerenders_with_its_error_next_to_the_field_and_saves_nothing(
    owner, org, field, value
):
    before = Organization.objects.filter(pk=org.pk).values().get()
    response = logged_in(owner).post("/settings/", form_data(org, **{field: value}))
    assert response.status_code == 400
    assert f'id="id_{field}_error"' in response.content.decode()
    assert Organization.objects.filter(pk=org.pk).values().get() == before
    assert not TeamEvent.objects.exists()


def test_managers_read_the_settings_but_cannot_change_them(manager, org):
    client = logged_in(manager)
    body = client.get("/settings/").content.decode()
    assert "Only an owner can change these settings." in body
    assert "Save settings" not in body and "disabled" in body
    response = client.post("/settings/", form_data(org, name="Taken over"))
    assert response.status_code == 403
    assert "This page is for owners." in response.content.decode()
    org.refresh_from_db()
    assert org.name == "Corner Cup"


def test_staff_get_the_403_page(staff):
    response = logged_in(staff).get("/settings/")
    assert response.status_code == 403
    assert "This page is for owners and managers." in response.content.decode()


def test_the_nav_links_to_settings_for_owners_and_managers_only(owner, manager, staff):
    for user, shown in ((owner, True), (manager, True), (staff, False)):
        body = logged_in(user).get("/customers/").content.decode()
        assert ('href="/settings/"' in body) is shown, user


def test_the_service_refuses_what_the_model_refuses_naming_the_field(owner, org):
    with pytest.raises(InvalidFields) as caught:
        update_organization_settings(
            organization=org,
            actor=owner,
            values={"recovery_grace_period": timedelta(days=31), "country": "XX"},
        )
    assert {e["field"] for e in caught.value.errors} == {"recovery_grace_period", "country"}
    org.refresh_from_db()
    assert org.recovery_grace_period == timedelta(hours=2) and org.country == "GB"
    assert not TeamEvent.objects.exists()


def test_the_service_refuses_a_field_that_is_not_a_setting(owner, org):
    with pytest.raises(ValueError):
        update_organization_settings(organization=org, actor=owner, values={"slug": "mine"})
