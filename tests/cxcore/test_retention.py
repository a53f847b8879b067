"""Retention (cxcore/retention.py): free text older than the organization's
text_retention_days is cleared by the nightly task and `manage.py clear_old_text`, in chunks,
idempotently, leaving every count and the narrative as they were. Off by default."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from cxcore.celery import app as celery_app
from cxcore.models import Customer, CustomerEdit, Episode, ExperienceCorrection
from cxcore.retention import clear_old_text
from cxcore.services import (
    EpisodeInput,
    correct_experience,
    rebuild_narrative,
    record_episode,
    update_customer,
)

NOW = timezone.now()


def episode(org, customer_id=None, *, days_ago: int, summary: str, **fields):
    return record_episode(
        organization=org,
        data=EpisodeInput(
            customer_id=customer_id,
            occurred_at=NOW - timedelta(days=days_ago),
            summary=summary,
            **fields,
        ),
        now=NOW,
    ).episode


@pytest.fixture
def history(org, main_st):
    """A regular with text from 400, 100 and 10 days ago: episodes, a correction, an edit."""
    first = episode(
        org, days_ago=400, summary="Old: asked about the oat milk", kind="visit",
        identifiers={"phone": "07400 333001"}, name="Ola", location=main_st,
    )  # fmt: skip
    customer = first.customer
    middle = episode(
        org, customer.pk, days_ago=100, summary="Middle: cold latte", kind="complaint",
        experience=-1, touchpoints=[{"code": "food_and_drink", "third_party": False}],
    )  # fmt: skip
    episode(org, customer.pk, days_ago=10, summary="Recent: all good", kind="visit")
    correct_experience(episode=middle, experience=-2, reason="Old reason: he was furious")
    ExperienceCorrection.objects.filter(episode=middle).update(
        corrected_at=NOW - timedelta(days=99)
    )
    update_customer(customer=customer, notes="Ola's notes", now=NOW - timedelta(days=200))
    update_customer(customer=customer, name="Ola Recent", now=NOW - timedelta(days=5))
    customer.refresh_from_db()
    return customer


def summaries(customer) -> list[str]:
    return list(
        Episode.objects.filter(customer=customer)
        .order_by("occurred_at")
        .values_list("summary", flat=True)
    )


def narrative(customer) -> dict:
    row = Customer.objects.filter(pk=customer.pk).values().get()
    return {k: v for k, v in row.items() if k != "updated_at"}


def test_nothing_is_cleared_by_default(history, org):
    assert org.text_retention_days is None
    assert clear_old_text(now=NOW) == {}
    assert summaries(history)[0].startswith("Old:")


def test_text_older_than_the_setting_is_cleared_and_the_rest_kept(history, org):
    org.text_retention_days = 90
    org.save()
    state = narrative(history)

    cleared = clear_old_text(now=NOW)

    assert summaries(history) == ["", "", "Recent: all good"]
    assert list(ExperienceCorrection.objects.values_list("reason", flat=True)) == [""]
    edits = {e.fields[0]: e.changes for e in CustomerEdit.objects.filter(customer=history)}
    assert edits["notes"] == {} and edits["name"]["name"]["new"] == "Ola Recent"
    assert cleared["episode_summaries"] == 2 and cleared["correction_reasons"] == 1
    assert cleared["customer_edit_values"] == 1
    # Counts, experiences and the narrative state are those of before, and still agree.
    assert narrative(history) == state
    assert Episode.objects.filter(customer=history).count() == 3
    assert list(
        Episode.objects.filter(customer=history)
        .order_by("occurred_at")
        .values_list("experience", flat=True)
    ) == [None, -2, 1]  # "all good" was inferred at write time; it stays
    assert rebuild_narrative(customer_id=history.pk, now=NOW) is False


def test_a_second_run_clears_nothing_and_writes_nothing(history, org):
    org.text_retention_days = 90
    org.save()
    clear_old_text(now=NOW)
    with CaptureQueriesContext(connection) as queries:
        again = clear_old_text(now=NOW)
    assert set(again.values()) == {0}
    assert not [q for q in queries.captured_queries if q["sql"].startswith("UPDATE")]


def test_large_backlogs_go_in_chunks_of_the_batch_size(org, main_st):
    org.text_retention_days = 30
    org.save()
    first = episode(
        org, days_ago=300, summary="t0", kind="visit", identifiers={"phone": "07400 333002"}
    )
    for n in range(1, 7):
        episode(org, first.customer_id, days_ago=300 - n, summary=f"t{n}", kind="visit")
    with CaptureQueriesContext(connection) as queries:
        cleared = clear_old_text(now=NOW, batch_size=3)
    updates = [
        q for q in queries.captured_queries if q["sql"].startswith('UPDATE "cxcore_episode"')
    ]
    assert cleared["episode_summaries"] == 7 and len(updates) == 3  # 3 + 3 + 1
    assert set(summaries(first.customer)) == {""}


def test_other_organizations_keep_their_text(history, org, other_org, other_location):
    theirs = episode(
        other_org, days_ago=400, summary="Theirs: keep", kind="visit",
        identifiers={"phone": "+14155550100"}, location=other_location,
    )  # fmt: skip
    other_org.text_retention_days = None
    other_org.save()
    org.text_retention_days = 30
    org.save()
    clear_old_text(now=NOW)
    theirs.refresh_from_db()
    assert theirs.summary == "Theirs: keep"


@pytest.mark.parametrize(("days", "ok"), [(29, False), (30, True), (3650, True), (3651, False)])
def test_the_setting_is_a_month_to_ten_years_or_empty(org, days, ok):
    org.text_retention_days = days
    if ok:
        org.full_clean()
    else:
        with pytest.raises(ValidationError) as error:
            org.full_clean()
        assert "text_retention_days" in error.value.message_dict
    org.text_retention_days = None
    org.full_clean()


def test_the_command_clears_one_organization_and_says_what(history, org):
    org.text_retention_days = 90
    org.save()
    out = StringIO()
    call_command("clear_old_text", "--org", org.slug, "--batch-size", "1", stdout=out)
    assert "episode_summaries 2" in out.getvalue()
    assert summaries(history)[0] == ""


def test_the_command_refuses_what_it_cannot_do(org):
    with pytest.raises(CommandError, match="No organization"):
        call_command("clear_old_text", "--org", "nope")
    with pytest.raises(CommandError, match="keeps its text"):
        call_command("clear_old_text", "--org", org.slug)
    org.text_retention_days = 30
    org.save()
    with pytest.raises(CommandError, match="at least 1"):
        call_command("clear_old_text", "--org", org.slug, "--batch-size", "0")


def test_beat_runs_it_nightly_with_an_expiry():
    entry = settings.CELERY_BEAT_SCHEDULE["clear-old-text"]
    assert entry["task"] in celery_app.tasks
    assert entry["options"]["expires"] < 24 * 3600
    assert entry["schedule"].hour == {2}


def test_the_task_runs_the_service(history, org):
    from cxcore.tasks import clear_old_text_task

    org.text_retention_days = 90
    org.save()
    assert clear_old_text_task.apply().get()["episode_summaries"] == 2
