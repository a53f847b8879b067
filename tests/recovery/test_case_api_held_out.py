"""Whoever reaches a held-out care case learns it is a control, on the page and in the API, so
nobody contacts the customer (issue 16)."""

from datetime import timedelta

import pytest
from django.test import Client

from recovery.models import RecoveryCase
from recovery.sweep import sweep_care
from tests.recovery.conftest import T0
from tests.recovery.test_holdouts import lapsing_regulars, set_share

LAPSED = T0 + timedelta(days=120)


@pytest.fixture
def cases(org, playbooks):
    set_share(org, 50)
    lapsing_regulars(org, 30)
    sweep_care(now=LAPSED)
    return (
        RecoveryCase.objects.filter(held_out=True).first(),
        RecoveryCase.objects.filter(held_out=False).first(),
    )


@pytest.mark.parametrize("who", ["owner", "manager"])
def test_the_case_api_and_page_say_held_out(request, cases, who):
    held, worked = cases
    client = Client()
    client.force_login(request.getfixturevalue(who))
    assert client.get(f"/api/v1/cases/{held.pk}/").json()["held_out"] is True
    assert client.get(f"/api/v1/cases/{worked.pk}/").json()["held_out"] is False
    assert "Held out" in client.get(f"/recovery/cases/{held.pk}/").content.decode()
    assert "Held out" not in client.get(f"/recovery/cases/{worked.pk}/").content.decode()
