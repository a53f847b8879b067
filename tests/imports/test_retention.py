"""What an import keeps on disk holds personal data: an unconfirmed dry run's upload goes after a
day, a batch's rejected rows once it can no longer be undone; and a batch the broker never got
(it was down) is asked for again (imports/retention.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from imports.models import UNDO_DAYS, ImportBatch, ImportStatus
from imports.retention import REQUEUE_AFTER, STALE_UPLOAD, tidy_imports
from imports.services import upload_dir

pytestmark = pytest.mark.django_db


@pytest.fixture
def uploads(settings, tmp_path):
    settings.IMPORT_UPLOAD_DIR = str(tmp_path / "imports")
    return upload_dir()


def batch(org, uploads, name: str, *, dry_run: bool, status: str, age: timedelta, **extra):
    now = timezone.now()
    upload = uploads / f"{name}.csv"
    upload.write_text("First Name\nAda\n")
    rejected = uploads / f"{name}.csv.rejected.csv"
    rejected.write_text("Line,Reason\n2,bad phone\n")
    return ImportBatch.objects.create(
        organization=org,
        kind="customers",
        format="square",
        file_name=f"{name}.csv",
        dry_run=dry_run,
        status=status,
        upload_path=str(upload),
        rejected_path=str(rejected),
        created_at=now - age,
        finished_at=None if status == ImportStatus.QUEUED else now - age,
        **extra,
    )


def test_an_unconfirmed_dry_runs_upload_goes_after_a_day(org, uploads):
    old = batch(org, uploads, "old", dry_run=True, status="done", age=STALE_UPLOAD * 2)
    fresh = batch(org, uploads, "fresh", dry_run=True, status="done", age=timedelta(hours=1))
    tidy_imports()
    old.refresh_from_db()
    fresh.refresh_from_db()
    assert old.upload_path == "" and not (uploads / "old.csv").exists()
    assert (uploads / "fresh.csv").exists() and fresh.upload_path
    # its rejected rows stay downloadable while the batch page lasts
    assert (uploads / "old.csv.rejected.csv").exists()


def test_an_upload_a_real_run_still_reads_is_kept(org, uploads):
    dry = batch(org, uploads, "busy", dry_run=True, status="done", age=STALE_UPLOAD * 2)
    ImportBatch.objects.create(
        organization=org, kind="customers", format="square", file_name="busy.csv",
        dry_run=False, status=ImportStatus.RUNNING, upload_path=dry.upload_path,
    )  # fmt: skip
    tidy_imports()
    assert (uploads / "busy.csv").exists()


def test_rejected_rows_go_once_the_batch_can_no_longer_be_undone(org, uploads):
    gone = batch(org, uploads, "gone", dry_run=False, status="done",
                 age=timedelta(days=UNDO_DAYS + 1))  # fmt: skip
    kept = batch(org, uploads, "kept", dry_run=False, status="done",
                 age=timedelta(days=UNDO_DAYS - 1))  # fmt: skip
    tidy_imports()
    gone.refresh_from_db()
    assert gone.rejected_path == "" and not (uploads / "gone.csv.rejected.csv").exists()
    assert (uploads / "kept.csv.rejected.csv").exists()
    kept.refresh_from_db()
    assert kept.rejected_path


def test_a_file_outside_the_upload_directory_is_never_deleted(org, uploads, tmp_path):
    """The command imports a file the operator gave it: theirs, not ours to delete."""
    theirs = tmp_path / "export.csv"
    theirs.write_text("First Name\nAda\n")
    old = batch(org, uploads, "cmd", dry_run=True, status="done", age=STALE_UPLOAD * 2)
    ImportBatch.objects.filter(pk=old.pk).update(upload_path=str(theirs))
    tidy_imports()
    assert theirs.exists()


def test_a_batch_left_queued_is_asked_for_again(org, uploads):
    stuck = batch(org, uploads, "stuck", dry_run=True, status="queued", age=REQUEUE_AFTER * 3)
    batch(org, uploads, "new", dry_run=True, status="queued", age=timedelta(seconds=5))
    batch(org, uploads, "done", dry_run=True, status="done", age=REQUEUE_AFTER * 3)
    assert tidy_imports()["requeued"] == [stuck.pk]


def test_an_upload_no_batch_names_goes_after_a_day(org, uploads):
    """The owner uploaded a generic CSV and left at the column-mapping step."""
    import os

    left = uploads / "upload-left.csv"
    left.write_text("Name,Mobile\nAda,07400 111222\n")
    recent = uploads / "upload-recent.csv"
    recent.write_text("Name,Mobile\nBo,07400 111223\n")
    named = batch(org, uploads, "upload-named", dry_run=True, status="done", age=timedelta(0))
    an_old_time = (timezone.now() - STALE_UPLOAD * 2).timestamp()
    for file in (left, uploads / "upload-named.csv"):
        os.utime(file, (an_old_time, an_old_time))
    assert len(tidy_imports()["orphans"]) == 1
    assert not left.exists() and recent.exists() and os.path.exists(named.upload_path)
