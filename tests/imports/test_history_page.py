"""History on the import page (/settings/import/): Square's transactions and item-details
exports through the same upload → dry run → for real → summary → rejected rows → undo flow as
customers, with the location chosen when the file has no Location column. The routes are the
customers import's (their tenancy is in tests/cxcore/test_tenancy.py's ROUTES); here, another
organization's history batch is a 404 and a manager gets the 403 page."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from accounts.models import TeamAction, TeamEvent
from cxcore.models import Episode
from imports.history import create_history_batch, run_history_batch
from imports.models import ImportBatch, ImportKind, ImportStatus
from imports.tasks import run_import_batch_task
from tests.factories import CustomerFactory, IdentifierFactory

DATA = Path(__file__).parent / "data"
TRANSACTIONS = DATA / "history-transactions.csv"
ITEMS = DATA / "history-items.csv"
NO_LOCATION = (
    b"Date,Time,Time Zone,Total Collected,Transaction ID,Customer ID\r\n"
    b"2026-03-02,08:15:00,London,\xc2\xa33.40,TX-9001,SQ-ANN\r\n"
    b"2026-03-09,08:20:00,London,\xc2\xa33.60,TX-9002,SQ-ANN\r\n"
)


@pytest.fixture(autouse=True)
def _upload_dir(settings, tmp_path):
    settings.IMPORT_UPLOAD_DIR = tmp_path / "imports"


@pytest.fixture
def ann(org):
    customer = CustomerFactory.create(organization=org, name="Ann Lee")
    IdentifierFactory.create(customer=customer, kind="pos_id", value="SQ-ANN")
    return customer


@pytest.fixture
def ben(org):
    customer = CustomerFactory.create(organization=org, name="Ben")
    IdentifierFactory.create(customer=customer, kind="pos_id", value="SQ-BEN")
    return customer


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def upload(client: Client, content: bytes, *, fmt: str, location=None, name="transactions.csv"):
    data = {"file": SimpleUploadedFile(name, content, content_type="text/csv"), "format": fmt}
    if location is not None:
        data["location"] = str(location.pk)
    return client.post("/settings/import/", data)


def latest_batch() -> ImportBatch:
    return ImportBatch.objects.latest("pk")


def test_the_upload_page_offers_the_history_formats_and_a_location(org, owner):
    page = logged_in(owner).get("/settings/import/").content.decode()
    assert '<option value="square-transactions">Square transactions export</option>' in page
    assert '<option value="square-items">Square item details export</option>' in page
    assert '<label for="id_location">Location (history files)</label>' in page
    assert "The file&#x27;s Location column" in page
    assert ">Harbour Rd</option>" in page and ">Main St</option>" in page


def test_owner_dry_runs_a_transactions_export_imports_it_and_undoes_it(
    org, owner, main_st, harbour, ann, ben
):
    client = logged_in(owner)
    response = upload(client, TRANSACTIONS.read_bytes(), fmt="square-transactions")
    dry = latest_batch()
    assert response.status_code == 302
    assert response["Location"] == f"/settings/import/{dry.pk}/"
    assert (dry.kind, dry.format, dry.dry_run) == (ImportKind.HISTORY, "square-transactions", True)
    assert dry.created_by == owner and dry.status == ImportStatus.QUEUED
    assert "Waiting for a worker" in client.get(f"/settings/import/{dry.pk}/").content.decode()

    run_import_batch_task(dry.pk)
    page = client.get(f"/settings/import/{dry.pk}/").content.decode()
    assert "Dry run finished: nothing was written" in page
    assert "<dt>Episodes created</dt><dd>4</dd>" in page
    assert "<dt>Of them refunds (candidate incidents)</dt><dd>1</dd>" in page
    assert "<dt>Without a customer (skipped)</dt><dd>1</dd>" in page
    assert "<dt>Rejected</dt><dd>5</dd>" in page
    assert "candidate incidents: they open no case" in page
    assert "<td>7</td>" in page and "SQ-NOBODY" in page
    assert not Episode.objects.exists()
    assert "Undo this import" not in page

    response = client.post(f"/settings/import/{dry.pk}/confirm/")
    real = latest_batch()
    assert real.pk != dry.pk and not real.dry_run and real.kind == ImportKind.HISTORY
    assert response["Location"] == f"/settings/import/{real.pk}/"
    # A second click finds the import the first one started.
    assert client.post(f"/settings/import/{dry.pk}/confirm/")["Location"] == response["Location"]
    run_import_batch_task(real.pk)
    assert Episode.objects.filter(source="import").count() == 4
    ann.refresh_from_db()
    assert ann.visit_count == 2
    page = client.get(f"/settings/import/{real.pk}/").content.decode()
    assert "<h2>Imported</h2>" in page
    assert "<dt>Episodes created</dt><dd>4</dd>" in page
    assert "Undo removes the episodes this import created" in page
    event = TeamEvent.objects.get(organization=org, action=TeamAction.IMPORTED)
    assert event.detail["batch"] == real.pk

    rejected = client.get(f"/settings/import/{real.pk}/rejected.csv")
    assert rejected.status_code == 200
    rows = list(csv.reader(io.StringIO(rejected.getvalue().decode())))
    assert rows[0][:3] == ["Line", "Reason", "Date"]
    assert [row[0] for row in rows[1:]] == ["7", "8", "9", "12", "13"]

    listing = client.get("/settings/import/").content.decode()
    assert listing.count("<td>Square transactions export · dry run</td>") == 1
    assert listing.count("<td>Square transactions export</td>") == 1

    response = client.post(f"/settings/import/{real.pk}/undo/", follow=True)
    assert "Undone: 4 episodes removed." in response.content.decode()
    assert not Episode.objects.exists()
    ann.refresh_from_db()
    assert ann.visit_count == 0
    real.refresh_from_db()
    assert real.status == ImportStatus.UNDONE
    assert TeamEvent.objects.filter(organization=org, action=TeamAction.IMPORT_UNDONE).exists()


def test_an_items_export_after_the_transactions_gives_the_visits_their_items(
    org, owner, main_st, harbour, ann, ben
):
    client = logged_in(owner)
    for content, fmt in ((TRANSACTIONS, "square-transactions"), (ITEMS, "square-items")):
        upload(client, content.read_bytes(), fmt=fmt, name=content.name)
        run_import_batch_task(latest_batch().pk)
        client.post(f"/settings/import/{latest_batch().pk}/confirm/")
        run_import_batch_task(latest_batch().pk)
    items = latest_batch()
    assert (items.format, items.dry_run, items.status) == ("square-items", False, "done")
    page = client.get(f"/settings/import/{items.pk}/").content.decode()
    assert "<dt>Episodes given their items</dt>" in page
    first = Episode.objects.get(external_id="TX-1001")
    assert first.items[0]["name"] == "Almond-milk latte"

    response = client.post(f"/settings/import/{items.pk}/undo/", follow=True)
    assert "episodes given their items back" in response.content.decode()
    first.refresh_from_db()
    assert first.items == [{"name": "", "quantity": 1, "price": "3.40"}]


def test_a_file_without_a_location_column_needs_the_location_chosen(
    org, owner, main_st, harbour, ann
):
    client = logged_in(owner)
    response = upload(client, NO_LOCATION, fmt="square-transactions")
    assert response.status_code == 400
    assert "This file has no Location column: choose where its rows happened." in (
        response.content.decode()
    )
    assert not ImportBatch.objects.exists()

    assert upload(client, NO_LOCATION, fmt="square-transactions", location=harbour).status_code
    dry = latest_batch()
    assert dry.location == harbour
    run_import_batch_task(dry.pk)
    client.post(f"/settings/import/{dry.pk}/confirm/")
    real = latest_batch()
    assert real.location == harbour and not real.dry_run
    run_import_batch_task(real.pk)
    assert set(Episode.objects.values_list("location_id", flat=True)) == {harbour.pk}


def test_the_chosen_location_takes_every_row_of_a_file_that_names_others(
    org, owner, main_st, harbour, ann, ben
):
    client = logged_in(owner)
    upload(client, TRANSACTIONS.read_bytes(), fmt="square-transactions", location=main_st)
    run_import_batch_task(latest_batch().pk)
    client.post(f"/settings/import/{latest_batch().pk}/confirm/")
    run_import_batch_task(latest_batch().pk)
    assert set(Episode.objects.values_list("location_id", flat=True)) == {main_st.pk}


def test_a_history_upload_that_is_not_the_format_is_refused_naming_the_file(
    org, owner, main_st, harbour, settings
):
    client = logged_in(owner)
    response = upload(
        client, b"First Name,Email Address\nAnn,ann@example.com\n", fmt="square-items"
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert 'id="file-error"' in page
    assert "Not a Square item details export" in page
    response = upload(client, "Date,Time\n\xe9\n".encode("latin-1"), fmt="square-transactions")
    assert response.status_code == 400
    assert 'id="file-error"' in response.content.decode()
    assert not ImportBatch.objects.exists()
    assert not list(Path(settings.IMPORT_UPLOAD_DIR).glob("upload-*"))


def test_a_location_of_another_organization_is_refused(org, owner, main_st, other_location):
    response = upload(
        logged_in(owner),
        TRANSACTIONS.read_bytes(),
        fmt="square-transactions",
        location=other_location,
    )
    assert response.status_code == 400
    assert 'id="location-error"' in response.content.decode()
    assert not ImportBatch.objects.exists()


def test_the_progress_fragment_polls_a_history_batch_while_it_runs(org, owner, main_st, tmp_path):
    path = tmp_path / "export.csv"
    path.write_bytes(TRANSACTIONS.read_bytes())
    batch = create_history_batch(
        organization=org, path=path, file_name=path.name, fmt="square-transactions"
    )
    client = logged_in(owner)
    text = client.get(f"/settings/import/{batch.pk}/", HTTP_HX_REQUEST="true").content.decode()
    assert 'hx-trigger="every 1s"' in text and "<progress" in text
    run_history_batch(batch=batch)
    text = client.get(f"/settings/import/{batch.pk}/", HTTP_HX_REQUEST="true").content.decode()
    assert "hx-trigger" not in text
    assert "<dt>Rows read</dt><dd>12</dd>" in text


def test_another_organizations_history_batch_is_404_and_a_manager_gets_403(
    org, owner, manager, other_org, tmp_path
):
    path = tmp_path / "rival.csv"
    path.write_bytes(TRANSACTIONS.read_bytes())
    theirs = create_history_batch(
        organization=other_org, path=path, file_name="rival-secret.csv", fmt="square-transactions"
    )
    client = logged_in(owner)
    for method, url in [
        ("get", f"/settings/import/{theirs.pk}/"),
        ("post", f"/settings/import/{theirs.pk}/confirm/"),
        ("post", f"/settings/import/{theirs.pk}/undo/"),
        ("get", f"/settings/import/{theirs.pk}/rejected.csv"),
    ]:
        assert getattr(client, method)(url).status_code == 404, (method, url)
    response = upload(logged_in(manager), TRANSACTIONS.read_bytes(), fmt="square-transactions")
    assert response.status_code == 403
    assert "This page is for owners." in response.content.decode()
    assert ImportBatch.objects.get() == theirs
