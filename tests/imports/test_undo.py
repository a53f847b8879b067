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
