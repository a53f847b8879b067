"""The owners' import page (/settings/import/): upload a file (customers, or Square's
transactions or item-details export for the history), map a generic file's columns, see the
dry run, import for real, watch the progress, download the rejected rows, undo.

Owners only: an import can create or change every customer of the organization at once (and
undo removes them again), which is the owner's call, like webhooks and API keys.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core import signing
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.views import View

from accounts.errors import InvalidInput
from accounts.models import Location, Organization, Role, User
from accounts.tenancy import TenantPageMixin
from cxcore.spreadsheets import spreadsheet_safe
from imports.commands import HISTORY_SUMMARY
from imports.forms import MappingForm, UploadForm
from imports.history import create_history_batch
from imports.history_formats import HISTORY_FORMATS
from imports.locks import ImportRunning
from imports.models import ImportBatch, ImportFormat, ImportKind, ImportStatus
from imports.services import create_customer_batch, read_headers, rejected_rows_path, upload_dir
from imports.tasks import enqueue_import
from imports.undo import UndoRefused, undo_import

UPLOAD_SALT = "imports.upload"
UPLOAD_MAX_AGE = 24 * 3600
BATCHES_SHOWN = 20


class ImportPageMixin(TenantPageMixin):
    required_roles = (Role.OWNER,)

    def batch(self, pk: int) -> ImportBatch:
        batch = (
            ImportBatch.objects.for_tenant(self.tenant)
            .filter(pk=pk)
            .select_related("created_by", "undone_by", "location")
            .first()
        )
        if batch is None:
            raise Http404("No such import.")
        return batch

    def upload_form(self, *args: Any) -> UploadForm:
        return UploadForm(*args, locations=self.tenant.locations().order_by("name"))


def _store_upload(upload: Any) -> Path:
    """The upload under IMPORT_UPLOAD_DIR: moved from Django's temporary file when it is on
    disk (anything above FILE_UPLOAD_MAX_MEMORY_SIZE), so a large file is never in memory."""
    path = upload_dir() / f"upload-{uuid.uuid4().hex}.csv"
    temporary = getattr(upload, "temporary_file_path", None)
    if temporary is not None:
        shutil.move(temporary(), path)
        upload.close()  # Django's temporary file: already gone, which its close() allows
    else:
        with open(path, "wb") as handle:
            for block in upload.chunks():
                handle.write(block)
    return path


def _upload_token(organization_id: int, path: Path, file_name: str) -> str:
    return signing.dumps({"o": organization_id, "n": path.name, "f": file_name}, salt=UPLOAD_SALT)


def _upload_from_token(token: str, organization_id: int) -> tuple[Path, str] | None:
    try:
        data = signing.loads(token, salt=UPLOAD_SALT, max_age=UPLOAD_MAX_AGE)
    except signing.BadSignature:
        return None
    if data.get("o") != organization_id:
        return None
    path = upload_dir() / Path(str(data.get("n", ""))).name
    return (path, str(data.get("f", ""))) if path.is_file() else None


class ImportView(ImportPageMixin, View):
    """The upload form, the mapping step for a generic file, and the batches so far."""

    def _render(self, request: HttpRequest, *, status: int = 200, **context: Any) -> HttpResponse:
        context.setdefault("form", self.upload_form())
        context.update(
            settings_section="import",
            batches=ImportBatch.objects.for_tenant(self.tenant).select_related("created_by")[
                :BATCHES_SHOWN
            ],
            max_upload_mb=settings.IMPORT_MAX_UPLOAD_MB,
        )
        response = render(request, "imports/import.html", context, status=status)
        add_never_cache_headers(response)
        return response

    def get(self, request: HttpRequest) -> HttpResponse:
        return self._render(request)

    def post(self, request: HttpRequest) -> HttpResponse:
        if "upload" in request.POST:
            return self._map(request)
        limit = settings.IMPORT_MAX_UPLOAD_MB * 1024 * 1024
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > limit + 64 * 1024:  # refused before the body is read
            form = self.upload_form()
            form.errors["file"] = form.error_class(
                [f"The file is larger than {settings.IMPORT_MAX_UPLOAD_MB} MB."]
            )
            return self._render(request, form=form, status=413)
        form = self.upload_form(request.POST, request.FILES)
        if not form.is_valid():
            return self._render(request, form=form, status=400)
        upload = form.cleaned_data["file"]
        file_name = os.path.basename(upload.name or "upload.csv")
        path = _store_upload(upload)
        if form.cleaned_data["format"] == ImportFormat.GENERIC:
            try:
                headers = read_headers(path)
            except InvalidInput as exc:
                path.unlink(missing_ok=True)
                form.add_error("file", exc.message)
                return self._render(request, form=form, status=400)
            mapping = MappingForm(
                initial={"upload": _upload_token(self.tenant.organization.pk, path, file_name)},
                headers=headers,
            )
            return self._render(request, mapping=mapping, file_name=file_name)
        fmt = form.cleaned_data["format"]
        location = form.cleaned_data["location"] if fmt in HISTORY_FORMATS else None
        return self._start(
            request, form, path=path, file_name=file_name, format=fmt, location=location
        )

    def _map(self, request: HttpRequest) -> HttpResponse:
        stored = _upload_from_token(request.POST.get("upload", ""), self.tenant.organization.pk)
        if stored is None:
            form = self.upload_form()
            form.errors["file"] = form.error_class(["The upload has expired: upload it again."])
            return self._render(request, form=form, status=400)
        path, file_name = stored
        mapping = MappingForm(request.POST, headers=read_headers(path))
        if not mapping.is_valid():
            return self._render(request, mapping=mapping, file_name=file_name, status=400)
        return self._start(
            request,
            self.upload_form(),
            path=path,
            file_name=file_name,
            format="generic",
            column_map=mapping.cleaned_data["column_map"],
        )

    def _start(
        self,
        request: HttpRequest,
        form: UploadForm,
        *,
        path: Path,
        file_name: str,
        format: str,
        column_map: dict[str, str] | None = None,
        location: Location | None = None,
    ) -> HttpResponse:
        try:
            batch = _new_batch(
                organization=self.tenant.organization,
                path=path,
                file_name=file_name,
                format=format,
                column_map=column_map,
                location=location,
                dry_run=True,
                created_by=request.user,  # type: ignore[arg-type]
            )
        except InvalidInput as exc:
            path.unlink(missing_ok=True)
            form.add_error("format" if exc.field == "format" else "file", exc.message)
            return self._render(request, form=form, status=400)
        enqueue_import(batch.pk)
        return redirect("import-batch", pk=batch.pk)


class ImportBatchView(ImportPageMixin, View):
    """One batch: progress while it runs (htmx polls this page's `#batch` section), then the
    summary, the first rejections, and what can be done next."""

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        batch = self.batch(pk)
        now = timezone.now()
        context = {
            "batch": batch,
            "progress": batch.progress(now),
            "can_undo": batch.can_undo(now),
            "can_confirm": _can_confirm(batch),
            "has_rejected_file": bool(rejected_rows_path(batch)),
            "history_counts": _history_counts(batch),
            "settings_section": "import",
        }
        template = (
            "imports/_batch.html" if request.headers.get("HX-Request") else "imports/batch.html"
        )
        response = render(request, template, context)
        add_never_cache_headers(response)
        return response


def _new_batch(
    *,
    organization: Organization,
    path: str | Path,
    file_name: str,
    format: str,
    column_map: dict[str, str] | None,
    location: Location | None,
    dry_run: bool,
    created_by: User,
) -> ImportBatch:
    """A queued batch of either kind: the history formats go to imports.history."""
    if format in HISTORY_FORMATS:
        return create_history_batch(
            organization=organization,
            path=path,
            file_name=file_name,
            fmt=format,
            location=location,
            dry_run=dry_run,
            created_by=created_by,
        )
    return create_customer_batch(
        organization=organization,
        path=path,
        file_name=file_name,
        format=format,
        column_map=column_map,
        location=location,
        dry_run=dry_run,
        created_by=created_by,
    )


def _history_counts(batch: ImportBatch) -> list[tuple[str, int]]:
    """A history batch's summary lines, with the command's labels (rows and rejected are
    shown for every batch)."""
    if batch.kind != ImportKind.HISTORY:
        return []
    return [
        (label[:1].upper() + label[1:], batch.counts[key])
        for key, label in HISTORY_SUMMARY
        if key not in ("rows", "rejected") and batch.counts.get(key)
    ]


def _can_confirm(batch: ImportBatch) -> bool:
    return (
        batch.dry_run
        and batch.status == ImportStatus.DONE
        and bool(batch.upload_path)
        and os.path.isfile(batch.upload_path)
    )


class ImportConfirmView(ImportPageMixin, View):
    """After a dry run: the same file, for real."""

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        dry = self.batch(pk)
        if not _can_confirm(dry):
            messages.error(
                request, "This dry run cannot be imported any more: upload the file again."
            )
            return redirect("import-batch", pk=dry.pk)
        # A second click finds the import the first one started.
        already = (
            ImportBatch.objects.for_tenant(self.tenant)
            .filter(dry_run=False, upload_path=dry.upload_path, file_sha256=dry.file_sha256)
            .first()
        )
        if already is not None:
            return redirect("import-batch", pk=already.pk)
        try:
            batch = _new_batch(
                organization=self.tenant.organization,
                path=dry.upload_path,
                file_name=dry.file_name,
                format=dry.format,
                column_map=dry.column_map,
                location=dry.location,
                dry_run=False,
                created_by=request.user,  # type: ignore[arg-type]
            )
        except InvalidInput as exc:
            messages.error(request, exc.message)
            return redirect("import-batch", pk=dry.pk)
        enqueue_import(batch.pk)
        return redirect("import-batch", pk=batch.pk)


class ImportUndoView(ImportPageMixin, View):
    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        batch = self.batch(pk)
        try:
            outcome = undo_import(batch=batch, by_user=request.user)  # type: ignore[arg-type]
        except (UndoRefused, ImportRunning) as exc:
            messages.error(request, exc.message)
            return redirect("import-batch", pk=batch.pk)
        if batch.kind == ImportKind.HISTORY:
            parts = [f"{outcome.episodes_removed} episodes removed"]
            if outcome.items_restored:
                parts.append(f"{outcome.items_restored} episodes given their items back")
        else:
            parts = [f"{outcome.customers_removed} customers removed"]
            if outcome.customers_kept:
                parts.append(f"{outcome.customers_kept} kept (used since)")
            if outcome.episodes_removed:
                parts.append(f"{outcome.episodes_removed} episodes removed")
        messages.success(request, f"Undone: {', '.join(parts)}.")
        return redirect("import-batch", pk=batch.pk)


class ImportRejectedView(ImportPageMixin, View):
    """The rejected rows as CSV, streamed, each cell safe to open in a spreadsheet."""

    def get(self, request: HttpRequest, pk: int) -> HttpResponseBase:
        batch = self.batch(pk)
        path = rejected_rows_path(batch)
        if not path:
            raise Http404("This import rejected no rows.")

        def rows() -> Iterator[str]:
            writer = csv.writer(_Echo())
            with open(path, encoding="utf-8", newline="") as handle:
                for row in csv.reader(handle):
                    yield writer.writerow([spreadsheet_safe(cell) for cell in row])

        response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(batch.file_name).stem) or "import"
        response["Content-Disposition"] = f'attachment; filename="{stem}-rejected.csv"'
        return response


class _Echo:
    def write(self, value: str) -> str:
        return value
