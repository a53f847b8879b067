import pytest
from django.contrib import admin
from django.http import HttpRequest
from django.test import Client
from django.urls import reverse

from accounts.models import User
from cxcore.models import Customer, Episode
from cxcore.rules import CaseMarks
from cxcore.services import EpisodeInput, record_episode
from tests.factories import CustomerFactory


@pytest.fixture
def admin_client_(db):
    user = User.objects.create_superuser("root@example.com", "pw-for-tests-1")
    client = Client()
    client.force_login(user)
    return client


def test_every_model_has_a_working_admin_list_and_page(admin_client_, org, main_st, org_key):
    episode = record_episode(
        organization=org, data=EpisodeInput(kind="visit", identifiers={"card": "C-1"})
    ).episode
    for model, model_admin in admin.site._registry.items():
        meta = model._meta
        url = reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")
        assert admin_client_.get(url).status_code == 200, url
        obj = model_admin.get_queryset(HttpRequest()).first() if model_admin else None
        if obj is not None:
            change = reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk])
            assert admin_client_.get(change).status_code == 200, change
    delete = reverse("admin:cxcore_episode_delete", args=[episode.pk])
    assert admin_client_.post(delete, {"post": "yes"}).status_code == 403
    assert Episode.objects.filter(pk=episode.pk).exists()


def test_the_customer_admin_shows_every_case_mark_read_only(admin_client_, org):
    customer = CustomerFactory.create(organization=org)
    customer_admin = admin.site._registry[Customer]
    shown = set(customer_admin.fields or ()) & set(customer_admin.readonly_fields)
    assert set(CaseMarks.field_names()) <= shown
    page = admin_client_.get(reverse("admin:cxcore_customer_change", args=[customer.pk]))
    assert "Drift checked until" in page.content.decode()
