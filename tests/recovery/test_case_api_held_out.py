"""Only owners learn from the case API whether a care case is a held-out control (issue 16)."""

from datetime import timedelta

import pytest
from django.test import Client

from recovery.models import RecoveryCase
from recovery.sweep import sweep_care
from tests.recovery.conftest import T0
from tests.recovery.test_holdouts import lapsing_regulars, set_share

LAPSED = T0 + timedelta(days=120)


@pytest.fixture
def held(org, playbooks):
    set_share(org, 50)
    lapsing_regulars(org, 30)
    sweep_care(now=LAPSED)
    return RecoveryCase.objects.filter(held_out=True).first()


def test_an_owner_sees_held_out_and_a_manager_does_not(owner, manager, held):
    url = f"/api/v1/cases/{held.pk}/"
    client = Client()
    client.force_login(owner)
    assert client.get(url).json()["held_out"] is True
    client.force_login(manager)
    body = client.get(url).json()
    assert body["id"] == held.pk
    assert body["held_out"] is None  # in every document, told to owners alone
