"""imports.undo: what counts as touched since an import, and a history batch's episodes."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from cxcore.models import Customer, CustomerEdit, Episode
from cxcore.services.customers import update_customer
from cxcore.services.episodes import (
    EpisodeInput,
    correct_experience,
    rebuild_narrative,
    record_episode,
)
from imports.models import ImportBatch, ImportedObject, ImportStatus
from imports.services import create_customer_batch, import_customers
from imports.undo import undo_import
from tests.factories import IdentifierFactory

SQUARE = Path(__file__).parent / "data" / "square-customers-bom-crlf.csv"


@pytest.fixture(autouse=True)
def _upload_dir(settings, tmp_path):
    settings.IMPORT_UPLOAD_DIR = tmp_path / "imports"


def imported(org):
    return import_customers(
        batch=create_customer_batch(organization=org, path=SQUARE, file_name="x", format="square")
    )


def test_a_card_edit_or_a_later_identifier_keeps_an_imported_customer(org):
    batch = imported(org)
    zoe = Customer.objects.get(identifiers__value="zoe@example.com")
    priya = Customer.objects.get(identifiers__value="priya@example.com")
    update_customer(customer=zoe, notes="Allergic to nuts — always ask. Birthday in May.")
    IdentifierFactory.create(customer=priya, kind="card", value="LOYAL-9")

    outcome = undo_import(batch=batch, by_user=None)

    assert outcome.customers_kept == 2
    assert outcome.customers_removed == 3
    assert set(Customer.objects.for_org(org)) == {zoe, priya}


def test_a_later_batch_that_met_a_customer_keeps_them(org, tmp_path):
    first = imported(org)
    path = tmp_path / "later.csv"
    path.write_text("Phone Number,Memo\n07400 200456,Likes the window seat\n", encoding="utf-8")
    import_customers(
        batch=create_customer_batch(organization=org, path=path, file_name="l", format="square")
    )
    outcome = undo_import(batch=first, by_user=None)
    dan = Customer.objects.get(identifiers__value="+447400200456")
    assert outcome.customers_kept == 1
    assert dan.notes == "Likes the window seat"


@pytest.mark.parametrize("recorded", ["a row each (batches before customer_list)", "a list"])
def test_undo_removes_the_created_customers_however_they_were_recorded(org, recorded):
    now = timezone.now()
    kept, *removed = (Customer.objects.create(organization=org, name=f"C{n}") for n in range(3))
    record_episode(
        organization=org, data=EpisodeInput(kind="visit", customer_id=kept.pk, source="pos")
    )
    batch = ImportBatch.objects.create(
        organization=org, kind="customers", format="square", file_name="c.csv",
        status=ImportStatus.DONE, finished_at=now,
    )  # fmt: skip
    ids = [kept.pk] + [c.pk for c in removed]
    if recorded == "a list":
        records = [ImportedObject(batch=batch, kind="customer_list", customer_id=0,
                                  previous={"ids": ids})]  # fmt: skip
    else:
        records = [ImportedObject(batch=batch, kind="customer_created", customer_id=i,
                                  object_id=i) for i in ids]  # fmt: skip
    ImportedObject.objects.bulk_create(records)

    outcome = undo_import(batch=batch, by_user=None)

    assert (outcome.customers_removed, outcome.customers_kept) == (2, 1)
    assert list(Customer.objects.for_org(org)) == [kept]


def test_undoing_a_history_batch_removes_its_untouched_episodes_and_gives_items_back(org):
    now = timezone.now()
    first = record_episode(
        organization=org,
        data=EpisodeInput(kind="visit", identifiers={"pos_id": "SQ-1"}, source="import",
                          external_id="T1", occurred_at=now - timedelta(days=3)),
    ).episode  # fmt: skip
    corrected = record_episode(
        organization=org,
        data=EpisodeInput(kind="visit", customer_id=first.customer_id, source="import",
                          external_id="T2", occurred_at=now - timedelta(days=2)),
    ).episode  # fmt: skip
    theirs = record_episode(
        organization=org,
        data=EpisodeInput(kind="visit", customer_id=first.customer_id, source="pos",
                          occurred_at=now - timedelta(days=1),
                          items=[{"name": "Latte", "quantity": 1}]),
    ).episode  # fmt: skip
    correct_experience(episode=corrected, experience=-1, reason="He told us")
    batch = ImportBatch.objects.create(
        organization=org, kind="history", format="square-transactions", file_name="t.csv",
        status=ImportStatus.DONE, finished_at=now,
    )  # fmt: skip
    ImportedObject.objects.bulk_create(
        [
            ImportedObject(batch=batch, kind="episode_created", customer_id=first.customer_id,
                           object_id=first.pk),
            ImportedObject(batch=batch, kind="episode_created", customer_id=first.customer_id,
                           object_id=corrected.pk),
            ImportedObject(batch=batch, kind="items_set", customer_id=first.customer_id,
                           object_id=theirs.pk, previous={"items": []}),
        ]
    )  # fmt: skip

    outcome = undo_import(batch=batch, by_user=None)

    assert outcome.episodes_removed == 1
    assert outcome.items_restored == 1
    assert set(Episode.objects.filter(customer_id=first.customer_id)) == {corrected, theirs}
    theirs.refresh_from_db()
    assert theirs.items == []
    assert not rebuild_narrative(customer_id=first.customer_id)
    assert not CustomerEdit.objects.filter(kind="import").exists()


def test_a_person_met_again_in_a_later_chunk_is_still_the_batchs_to_remove(
    org, monkeypatch, tmp_path
):
    """Created in the first chunk, learnt a memo and an email in the second: the batch's own
    changes to its own customer do not count as touched since (review finding)."""
    from imports import services

    monkeypatch.setattr(services, "CHUNK_ROWS", 2)
    path = tmp_path / "again.csv"
    path.write_text(
        "Phone Number,Email Address,Memo\n"
        "07400200111,,\n"
        "07400200222,,\n"
        "+447400200111,kim@example.com,Oat milk\n",
        encoding="utf-8",
    )
    batch = import_customers(
        batch=create_customer_batch(organization=org, path=path, file_name="a", format="square")
    )
    kim = Customer.objects.get(identifiers__value="kim@example.com")
    assert kim.notes == "Oat milk"
    outcome = undo_import(batch=batch, by_user=None)
    assert (outcome.customers_removed, outcome.customers_kept) == (2, 0)
    assert not Customer.objects.for_org(org).exists()


def consent_file(tmp_path, name: str, status: str) -> Path:
    path = tmp_path / name
    path.write_text(
        f"Email Address,Email Subscription Status\nana@example.com,{status}\n", encoding="utf-8"
    )
    return path


def test_undo_takes_back_the_consent_it_set_but_not_a_later_imports(org, tmp_path):
    ana = record_episode(
        organization=org, data=EpisodeInput(kind="visit", identifiers={"email": "ana@example.com"})
    ).episode.customer

    def run(name: str, status: str) -> ImportBatch:
        path = consent_file(tmp_path, name, status)
        return import_customers(
            batch=create_customer_batch(
                organization=org, path=path, file_name=name, format="square"
            )
        )

    first = run("a.csv", "subscribed")
    ana.refresh_from_db()
    assert (ana.marketing_email_consent, ana.marketing_email_consent_source) == ("yes", "import")
    undo_import(batch=first, by_user=None)
    ana.refresh_from_db()
    assert ana.marketing_email_consent == "unknown"  # as it was

    second = run("b.csv", "subscribed")
    run("c.csv", "unsubscribed")  # a later import's answer
    undo_import(batch=second, by_user=None)
    ana.refresh_from_db()
    assert ana.marketing_email_consent == "no"


@pytest.mark.django_db(transaction=True)
def test_undo_is_refused_while_a_customers_import_of_the_organization_runs(org):
    """Undoing while a customers import runs would delete customers its next chunk has just
    matched: the owner is told to undo once it has finished."""
    import threading

    from django.db import connection

    from imports.locks import ImportRunning
    from imports.services import _import_lock

    batch = imported(org)
    holding, release = threading.Event(), threading.Event()

    def running_import() -> None:
        with _import_lock(org.pk):
            holding.set()
            release.wait(10)
        connection.close()

    other = threading.Thread(target=running_import)
    other.start()
    try:
        assert holding.wait(10)
        with pytest.raises(ImportRunning, match="running"):
            undo_import(batch=batch, by_user=None)
        assert Customer.objects.for_org(org).count() == 5
    finally:
        release.set()
        other.join()
    assert undo_import(batch=batch, by_user=None).customers_removed == 5


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("held_by", ["a history import", "another undo"])
def test_undo_is_refused_while_a_history_import_or_another_undo_runs(org, held_by):
    """A history import's write holds HISTORY_LOCK for its transaction, an undo IMPORT_LOCK:
    another connection holding the one it takes (as imports.history and imports.undo do)
    refuses this undo at once, and once it commits the undo goes through."""
    from django.db import connections

    from imports.locks import ImportRunning
    from imports.models import HISTORY_LOCK, IMPORT_LOCK

    batch = imported(org)
    lock = HISTORY_LOCK if held_by == "a history import" else IMPORT_LOCK
    other = connections.create_connection("default")
    try:
        other.set_autocommit(False)
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [lock, org.pk])
        with pytest.raises(ImportRunning, match="running") as refused:
            undo_import(batch=batch, by_user=None)
        assert refused.value.code == "import_running"
        assert refused.value.status_code == 409
        assert Customer.objects.for_org(org).count() == 5
        other.commit()
    finally:
        other.close()
    assert undo_import(batch=batch, by_user=None).customers_removed == 5
