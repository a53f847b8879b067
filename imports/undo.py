"""Undoing an import batch, within UNDO_DAYS of it finishing: what it created and nobody has
touched since is removed, what it added to known customers is taken back (imports.models)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.errors import InvalidInput
from accounts.models import TeamAction, User
from accounts.services import record_team_event
from cxcore.models import (
    Customer,
    CustomerEdit,
    EditKind,
    Episode,
    ExperienceCorrection,
    Identifier,
    Source,
)
from cxcore.services.episodes import _rebuild_batch
from imports.locks import refuse_while_importing
from imports.models import (
    ImportBatch,
    ImportedKind,
    ImportedObject,
    ImportStatus,
    customers_created,
)
from recovery.models import CaseTrigger


class UndoRefused(InvalidInput):
    default_code = "undo_refused"


@dataclass
class UndoOutcome:
    customers_removed: int = 0
    customers_kept: int = 0
    episodes_removed: int = 0
    identifiers_removed: int = 0
    notes_taken_back: int = 0
    consents_restored: int = 0
    names_cleared: int = 0
    items_restored: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def undo_import(
    *, batch: ImportBatch, by_user: User | None, now: datetime | None = None
) -> UndoOutcome:
    """Take back what a batch did, within UNDO_DAYS of it finishing, in one transaction.

    Removed: the customers it created that nothing else has touched since (no episode, case,
    card edit or identifier but the batch's own, no other batch's record) and the episodes it
    created. Taken back on the customers it did not create: the identifiers, names, memos and
    consent it added, where they are still what it left. The narratives it changed are
    rebuilt. The team history records it.
    """
    now = now or timezone.now()
    with transaction.atomic():
        refuse_while_importing(batch.organization_id, doing="undo", alone=True)
        locked = ImportBatch.objects.select_for_update(no_key=True).get(pk=batch.pk)
        if not locked.can_undo(now):
            raise UndoRefused(
                "This import can no longer be undone."
                if locked.status == ImportStatus.DONE
                else "Only a finished import can be undone.",
                field="batch",
            )
        outcome = UndoOutcome()
        rows = ImportedObject.objects.filter(batch=locked)
        touched_customers = _undo_episodes(locked, rows, outcome)
        _undo_changes(locked, rows, outcome)
        _undo_customers(locked, outcome)
        if touched_customers:
            _rebuild(touched_customers)
        locked.status = ImportStatus.UNDONE
        locked.undone_at = now
        locked.undone_by = by_user
        locked.save(update_fields=["status", "undone_at", "undone_by"])
        record_team_event(
            organization=locked.organization,
            actor=by_user,
            action=TeamAction.IMPORT_UNDONE,
            subject_label=locked.file_name,
            batch=locked.pk,
            kind=locked.kind,
            outcome=outcome.as_dict(),
        )
    batch.refresh_from_db()
    return outcome


# H5's history import records the items it gave an episode it did not create under this kind,
# with {"items": [...]} as they were before (imports.history.ITEMS_SET).
ITEMS_SET = "items_set"
DELETE_BATCH = 10_000


def _undo_episodes(batch: ImportBatch, rows: Any, outcome: UndoOutcome) -> set[int]:
    """Remove the episodes the batch created unless someone has acted on them since (a
    corrected experience, a case they triggered), and give back the items it set on others.
    Returns the customers whose narratives changed."""
    org = batch.organization_id
    created = Episode.objects.for_org(org).filter(_created_by(rows))
    untouched = created.exclude(pk__in=ExperienceCorrection.objects.values("episode_id")).exclude(
        pk__in=CaseTrigger.objects.values("episode_id")
    )
    ids = list(untouched.values_list("pk", "customer_id"))
    customers = {customer_id for _, customer_id in ids}
    for start in range(0, len(ids), DELETE_BATCH):
        chunk = [pk for pk, _ in ids[start : start + DELETE_BATCH]]
        Episode.objects.for_org(org).filter(pk__in=chunk).delete()
    outcome.episodes_removed = len(ids)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE cxcore_episode e SET items = o.previous -> 'items'
            FROM imports_importedobject o
            WHERE o.batch_id = %s AND o.kind = %s AND e.id = o.object_id
              AND e.organization_id = %s AND o.previous ? 'items'
            RETURNING e.customer_id
            """
            if connection.vendor == "postgresql"
            else """
            UPDATE cxcore_episode SET items = (
                SELECT json_extract(o.previous, '$.items') FROM imports_importedobject o
                WHERE o.batch_id = %s AND o.kind = %s AND o.object_id = cxcore_episode.id)
            WHERE organization_id = %s AND id IN (
                SELECT object_id FROM imports_importedobject WHERE batch_id = %s AND kind = %s)
            RETURNING customer_id
            """,
            [batch.pk, ITEMS_SET, org]
            if connection.vendor == "postgresql"
            else [batch.pk, ITEMS_SET, org, batch.pk, ITEMS_SET],
        )
        restored = [row[0] for row in cursor.fetchall()]
    outcome.items_restored = len(restored)
    return customers | set(restored)


def _created_by(rows: Any) -> Q:
    """The episodes a batch created: its id ranges (of its own source, and on PostgreSQL of its
    own recording time), or one row per episode for batches written before the ranges."""
    created = Q(pk__in=rows.filter(kind=ImportedKind.EPISODE_CREATED).values("object_id"))
    for previous in rows.filter(kind=ImportedKind.EPISODE_RANGE).values_list("previous", flat=True):
        span = Q(source=Source.IMPORT, pk__gte=previous["first"], pk__lte=previous["last"])
        if "recorded_at" in previous:
            span &= Q(recorded_at=datetime.fromisoformat(previous["recorded_at"]))
        created |= span
    return created


def _undo_changes(batch: ImportBatch, rows: Any, outcome: UndoOutcome) -> None:
    org = batch.organization_id
    identifier_ids = rows.filter(kind=ImportedKind.IDENTIFIER_ADDED).values("object_id")
    outcome.identifiers_removed, _ = (
        Identifier.objects.for_org(org).filter(pk__in=identifier_ids).delete()
    )
    reverted: dict[int, dict[str, dict[str, Any]]] = {}
    for row in rows.filter(
        kind__in=[ImportedKind.NAME_SET, ImportedKind.NOTE_APPENDED, ImportedKind.CONSENT_SET]
    ).order_by("-id"):
        customer = (
            Customer.objects.for_org(org).select_for_update(no_key=True).filter(pk=row.customer_id)
        )
        current = customer.values(
            "name",
            "notes",
            "marketing_email_consent",
            "marketing_email_consent_source",
            "marketing_email_consent_at",
        ).first()
        if current is None:
            continue
        previous = row.previous or {}
        if row.kind == ImportedKind.NOTE_APPENDED:
            notes = _without(current["notes"], previous.get("appended", ""))
            if notes != current["notes"]:
                customer.update(notes=notes, updated_at=timezone.now())
                reverted.setdefault(row.customer_id, {})["notes"] = {
                    "old": current["notes"],
                    "new": notes,
                }
                outcome.notes_taken_back += 1
        elif row.kind == ImportedKind.NAME_SET:
            # Only a name no one has changed since: the one the import set from blank.
            if current["name"] and current["name"] == previous.get("set"):
                customer.update(name="", updated_at=timezone.now())
                reverted.setdefault(row.customer_id, {})["name"] = {
                    "old": current["name"],
                    "new": "",
                }
                outcome.names_cleared += 1
        elif (
            row.kind == ImportedKind.CONSENT_SET
            and current["marketing_email_consent_source"] == "import"
            # still what this batch left (its chunks stamp the batch's start), not a later
            # import's answer
            and current["marketing_email_consent_at"] == batch.started_at
        ):
            at = previous.get("at")
            customer.update(
                marketing_email_consent=previous.get("consent") or "unknown",
                marketing_email_consent_source=previous.get("source") or "",
                marketing_email_consent_at=at,
                updated_at=timezone.now(),
            )
            reverted.setdefault(row.customer_id, {})["marketing_email_consent"] = {
                "old": current["marketing_email_consent"],
                "new": previous.get("consent") or "unknown",
            }
            outcome.consents_restored += 1
    CustomerEdit.objects.bulk_create(
        CustomerEdit(
            organization_id=org,
            customer_id=customer_id,
            kind=EditKind.IMPORT,
            at=timezone.now(),
            by_user=batch.undone_by,
            fields=sorted(changes),
            changes=changes,
        )
        for customer_id, changes in sorted(reverted.items())
    )


def _without(notes: str, appended: str) -> str:
    """The notes without a memo the import appended (at the end, or wherever it is now)."""
    if not appended:
        return notes
    if notes == appended:
        return ""
    for candidate in (f"\n{appended}", f"{appended}\n", appended):
        if candidate in notes:
            return notes.replace(candidate, "", 1)
    return notes


def _undo_customers(batch: ImportBatch, outcome: UndoOutcome) -> None:
    """Remove the created customers no one has touched, set-based."""
    finished = batch.finished_at
    # The ids of a customer_list row, in each database's own JSON functions.
    if connection.vendor == "postgresql":
        listed = "SELECT (jsonb_array_elements_text(l.previous->'ids'))::bigint"
        listed += " FROM imports_importedobject l"
    else:
        listed = "SELECT j.value FROM imports_importedobject l, json_each(l.previous, '$.ids') j"
    total = customers_created(batch)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH created (id) AS (
                SELECT customer_id FROM imports_importedobject
                WHERE batch_id = %s AND kind = 'customer_created'
                UNION ALL
                {listed} WHERE l.batch_id = %s AND l.kind = 'customer_list'
            )
            SELECT c.id FROM created o
            JOIN cxcore_customer c ON c.id = o.id AND c.organization_id = %s
            WHERE NOT EXISTS (SELECT 1 FROM cxcore_episode e WHERE e.customer_id = c.id)
              AND NOT EXISTS (SELECT 1 FROM recovery_recoverycase r WHERE r.customer_id = c.id)
              -- an edit is a touch, but not an import's: this batch's own (a person it
              -- created in one chunk and met again in a later one, and this undo's taking
              -- back) are not, and another batch's is its imports_importedobject row, below
              AND NOT EXISTS (SELECT 1 FROM cxcore_customeredit d
                              WHERE d.customer_id = c.id AND d.kind <> 'import')
              AND NOT EXISTS (SELECT 1 FROM cxcore_identifier i
                              WHERE i.customer_id = c.id AND i.created_at > %s)
              AND NOT EXISTS (SELECT 1 FROM imports_importedobject other
                              WHERE other.customer_id = c.id AND other.batch_id <> %s)
            """,
            [batch.pk, batch.pk, batch.organization_id, finished, batch.pk],
        )
        untouched = [row[0] for row in cursor.fetchall()]
    removed = 0
    for start in range(0, len(untouched), 10_000):
        ids = untouched[start : start + 10_000]
        removed += Customer.objects.for_org(batch.organization_id).filter(pk__in=ids).count()
        Customer.objects.for_org(batch.organization_id).filter(pk__in=ids).delete()
    outcome.customers_removed = removed
    outcome.customers_kept = total - removed


def _rebuild(customer_ids: set[int]) -> None:
    """Recompute the state and due times of the customers whose episodes changed, in bounded
    batches (cxcore's own rebuild, which locks them in primary-key order)."""
    remaining = sorted(Customer.objects.filter(pk__in=customer_ids).values_list("pk", flat=True))
    for start in range(0, len(remaining), 2000):
        _rebuild_batch(remaining[start : start + 2000])
