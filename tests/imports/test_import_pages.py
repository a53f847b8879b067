"""The import page (/settings/import/): upload, the generic mapping step, dry run then for
real, progress, rejected rows, undo; a 50 MB file streamed through it; owners only, another
organization's batches a 404. One test runs the batch on a real Celery worker."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from cxcore.models import Customer
from imports import views
from imports.models import ImportBatch, ImportStatus
from imports.services import create_customer_batch, import_customers
from imports.tasks import run_import_batch_task
from tests.recovery.test_worker import wait_until

DATA = Path(__file__).parent / "data"
SQUARE = DATA / "square-customers-bom-crlf.csv"


@pytest.fixture(autouse=True)
def _upload_dir(settings, tmp_path):
    settings.IMPORT_UPLOAD_DIR = tmp_path / "imports"


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def upload(client: Client, content: bytes, *, name="export-20261201-101500.csv", fmt="square"):
    return client.post(
        "/settings/import/",
        {"file": SimpleUploadedFile(name, content, content_type="text/csv"), "format": fmt},
    )


def latest_batch() -> ImportBatch:
    return ImportBatch.objects.latest("pk")


def test_owner_dry_runs_a_square_export_then_imports_it_then_undoes_it(org, owner):
    client = logged_in(owner)
    assert client.get("/settings/import/").status_code == 200

    response = upload(client, SQUARE.read_bytes())
    dry = latest_batch()
    assert response.status_code == 302
    assert response["Location"] == f"/settings/import/{dry.pk}/"
    assert dry.dry_run and dry.status == ImportStatus.QUEUED
    assert dry.created_by == owner
    page = client.get(f"/settings/import/{dry.pk}/").content.decode()
    assert "Waiting for a worker" in page
    assert 'hx-trigger="every 1s"' in page

    run_import_batch_task(dry.pk)
    page = client.get(f"/settings/import/{dry.pk}/").content.decode()
    assert "Dry run finished: nothing was written" in page
    assert "hx-trigger" not in page  # finished: the polling stops
    assert "<dt>New customers</dt><dd>5</dd>" in page
    assert "<td>7</td>" in page and "<td>12</td>" in page
    assert not Customer.objects.exists()
    assert "Undo this import" not in page

    response = client.post(f"/settings/import/{dry.pk}/confirm/")
    real = latest_batch()
    assert real.pk != dry.pk and not real.dry_run
    assert response["Location"] == f"/settings/import/{real.pk}/"
    # A second click finds the import the first one started.
    assert client.post(f"/settings/import/{dry.pk}/confirm/")["Location"] == response["Location"]
    run_import_batch_task(real.pk)
    assert Customer.objects.for_org(org).count() == 5
    assert not Path(real.upload_path).exists()  # the stored copy goes once it is imported
    page = client.get(f"/settings/import/{real.pk}/").content.decode()
    assert "<h2>Imported</h2>" in page
    assert "Undo this import" in page

    rejected = client.get(f"/settings/import/{real.pk}/rejected.csv")
    assert rejected.status_code == 200
    assert rejected["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(rejected.getvalue().decode())))
    assert rows[0][-2:] == ["Line", "Reason"]
    assert [row[-2] for row in rows[1:]] == ["7", "8", "12"]

    listing = client.get("/settings/import/").content.decode()
    assert listing.count("export-20261201-101500.csv") == 2

    response = client.post(f"/settings/import/{real.pk}/undo/", follow=True)
    assert "Undone: 5 customers removed" in response.content.decode()
    assert not Customer.objects.exists()
    real.refresh_from_db()
    assert real.status == ImportStatus.UNDONE
    page = client.get(f"/settings/import/{real.pk}/").content.decode()
    assert "Undo this import" not in page


def test_the_rejected_rows_download_is_safe_in_a_spreadsheet_and_imports_again(
    org, owner, tmp_path
):
    client = logged_in(owner)
    upload(client, b"Phone Number,First Name,Memo\n=1+2,=HYPERLINK(1),hi\n+44 7400 200555,Al,x\n")
    batch = latest_batch()
    run_import_batch_task(batch.pk)
    body = client.get(f"/settings/import/{batch.pk}/rejected.csv").getvalue()
    rows = list(csv.reader(io.StringIO(body.decode())))
    assert rows[1][:2] == ["'=1+2", "'=HYPERLINK(1)"]


def test_a_generic_file_goes_through_the_mapping_step(org, owner):
    client = logged_in(owner)
    content = b"Who,Mobile,Mail\nAna,07400 200321,ana@example.com\n"
    response = upload(client, content, name="list.csv", fmt="generic")
    page = response.content.decode()
    assert response.status_code == 200
    assert '<label for="id_column_0">Who</label>' in page
    assert '<label for="id_column_1">Mobile</label>' in page
    token = response.context["mapping"].initial["upload"]
    assert not ImportBatch.objects.exists()

    refused = client.post("/settings/import/", {"upload": token, "column_0": "name"})
    assert refused.status_code == 400
    assert "Choose the column with the phone" in refused.content.decode()

    response = client.post(
        "/settings/import/",
        {"upload": token, "column_0": "name", "column_1": "phone", "column_2": "email"},
    )
    batch = latest_batch()
    assert response.status_code == 302
    assert batch.format == "generic"
    assert batch.column_map == {"Who": "name", "Mobile": "phone", "Mail": "email"}
    run_import_batch_task(batch.pk)
    batch.refresh_from_db()
    assert batch.counts["new"] == 1


def test_a_forged_upload_token_is_refused(org, owner):
    response = logged_in(owner).post(
        "/settings/import/", {"upload": "not-a-token", "column_0": "phone"}
    )
    assert response.status_code == 400
    assert "upload it again" in response.content.decode()


def test_bad_uploads_are_refused_naming_the_file(org, owner, settings):
    client = logged_in(owner)
    response = upload(client, b"")
    assert response.status_code == 400
    assert "empty" in response.content.decode()
    response = upload(client, b"Name,City\nAna,Leeds\n")
    assert response.status_code == 400
    assert 'id="file-error"' in response.content.decode()
    assert "Phone Number, Email Address or Square Customer ID" in response.content.decode()
    response = upload(client, "Phone Number\n07400200321\xe9\n".encode("latin-1"))
    assert response.status_code == 400
    assert "not UTF-8" in response.content.decode()
    settings.IMPORT_MAX_UPLOAD_MB = 1
    response = upload(client, b"Phone Number\n" + b"07400200321\n" * 200_000)
    assert response.status_code == 413
    assert "larger than 1 MB" in response.content.decode()
    assert not ImportBatch.objects.exists()
    assert not list((Path(settings.IMPORT_UPLOAD_DIR)).glob("upload-*"))


def test_a_50_mb_file_streams_through_the_page_to_disk(org, owner, tmp_path, monkeypatch):
    big = tmp_path / "export-20261201-120000.csv"
    memo = "Oat flat white, extra hot, table by the window; " * 6
    with open(big, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(["First Name", "Phone Number", "Square Customer ID", "Memo"])
        n = 0
        while handle.tell() < 50 * 1024 * 1024:
            writer.writerow([f"Guest {n}", f"07400{n % 1_000_000:06d}", f"SQ-{n}", memo])
            n += 1
    stored: list[bool] = []
    store = views._store_upload

    def watching(upload):  # on disk already: Django wrote it to a temporary file
        stored.append(hasattr(upload, "temporary_file_path"))
        return store(upload)

    monkeypatch.setattr(views, "_store_upload", watching)
    client = logged_in(owner)
    with open(big, "rb") as binary:
        response = client.post("/settings/import/", {"file": binary, "format": "square"})
    assert response.status_code == 302
    assert stored == [True]
    batch = latest_batch()
    assert batch.file_size == big.stat().st_size
    run_import_batch_task(batch.pk)
    batch.refresh_from_db()
    assert batch.status == ImportStatus.DONE, batch.error
    assert batch.counts["rows"] == n
    assert batch.counts["new"] == n
    assert not Customer.objects.exists()  # a dry run


def test_the_progress_fragment_polls_while_running(org, owner):
    batch = create_customer_batch(organization=org, path=SQUARE, file_name="x.csv", format="square")
    client = logged_in(owner)
    fragment = client.get(f"/settings/import/{batch.pk}/", HTTP_HX_REQUEST="true")
    text = fragment.content.decode()
    assert text.lstrip().startswith('<section id="batch"')
    assert 'hx-trigger="every 1s"' in text
    assert "<progress" in text
    import_customers(batch=batch)
    text = client.get(f"/settings/import/{batch.pk}/", HTTP_HX_REQUEST="true").content.decode()
    assert "hx-trigger" not in text
    assert "rows/s" in text


# --- tenancy ---------------------------------------------------------------------------------


@pytest.fixture
def their_batch(other_org):
    batch = create_customer_batch(
        organization=other_org, path=SQUARE, file_name="rival-secret.csv", format="square"
    )
    return import_customers(batch=batch)


def test_another_organizations_batch_is_404_everywhere(org, owner, their_batch):
    client = logged_in(owner)
    pk = their_batch.pk
    assert client.get(f"/settings/import/{pk}/").status_code == 404
    assert client.get(f"/settings/import/{pk}/rejected.csv").status_code == 404
    assert client.post(f"/settings/import/{pk}/undo/").status_code == 404
    assert client.post(f"/settings/import/{pk}/confirm/").status_code == 404
    assert "rival-secret" not in client.get("/settings/import/").content.decode()
    their_batch.refresh_from_db()
    assert their_batch.status == ImportStatus.DONE
    assert Customer.objects.for_org(their_batch.organization).count() == their_batch.counts["new"]


@pytest.mark.parametrize("who", ["manager", "staff"])
def test_members_who_are_not_owners_get_the_403_page(request, org, who):
    client = logged_in(request.getfixturevalue(who))
    batch = import_customers(
        batch=create_customer_batch(
            organization=org, path=SQUARE, file_name="x.csv", format="square"
        )
    )
    for method, url in [
        ("get", "/settings/import/"),
        ("post", "/settings/import/"),
        ("get", f"/settings/import/{batch.pk}/"),
        ("post", f"/settings/import/{batch.pk}/confirm/"),
        ("post", f"/settings/import/{batch.pk}/undo/"),
        ("get", f"/settings/import/{batch.pk}/rejected.csv"),
    ]:
        response = getattr(client, method)(url)
        assert response.status_code == 403, (method, url)
        assert "This page is for owners." in response.content.decode()
    batch.refresh_from_db()
    assert batch.status == ImportStatus.DONE


# --- a real worker ---------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_runs_the_uploaded_batch(org, owner, redis, worker, publish_to):
    publish_to(redis.url)
    worker(redis.url, beat=False)
    client = logged_in(owner)
    assert upload(client, SQUARE.read_bytes()).status_code == 302
    batch = latest_batch()

    def finished() -> bool:
        batch.refresh_from_db()
        return batch.is_finished

    wait_until(finished, 60, "the worker to run the dry run")
    assert batch.status == ImportStatus.DONE, batch.error
    assert batch.counts["new"] == 5
    client.post(f"/settings/import/{batch.pk}/confirm/")
    wait_until(lambda: Customer.objects.for_org(org).count() == 5, 60, "the real import")
