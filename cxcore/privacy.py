"""The customer's data rights: everything held about a person, exported; or erased.

Export: one JSON document, streamed a page at a time from one read-only snapshot, so a customer
with ten thousand episodes costs a page of memory and the sections agree with each other.

Erase: the person's data goes from every table, and what the business learnt stays. The
identifiers are deleted (a later episode with the same phone creates a new customer), the
customer row stays anonymised (foreign keys and counts hold), every episode stays with its
kind, time, place, experience and touchpoints but loses its text, item names and POS id (so
counts and insights do not change), the card's edit history keeps who changed which fields
when but loses the values, and the erasure is recorded without personal data.

The read audit (cxcore.audit) is kept whole: its rows hold ids only (who read, which
customers, where, when), nothing of the person, and they are the proof of who looked at the
data before it was erased. An export lists them under `read_audit`.

Other apps hold data about customers too (recovery: cases, their actions and history). They
register an export section and an erase step here from their AppConfig.ready(), so this module
never imports them (accounts ← cxcore ← recovery).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import connections, router, transaction
from django.db.models import Model, Q, QuerySet, TextField
from django.db.models.functions import Cast
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.utils.encoders import JSONEncoder

from accounts.errors import InvalidInput, NotFoundError
from accounts.models import ApiKey, Membership, User
from cxcore.api.serializers import EpisodeSerializer  # episodes read as the API shows them
from cxcore.audit import reads_of
from cxcore.db_router import replica_reads
from cxcore.keyset import keyset_page
from cxcore.models import (
    ActorKind,
    Customer,
    CustomerEdit,
    Episode,
    Erasure,
    ExperienceCorrection,
    IdempotencyRecord,
    Identifier,
    ReadAudit,
)
from cxcore.outbound import emit_customer_erased
from cxcore.rules import NarrativeState
from cxcore.selectors import TIMELINE_ORDER
from cxcore.services import lock_customers, narrative_from_episodes, save_narrative

M = TypeVar("M", bound=Model)

# What replaces free text that keeps a value (a case action still says an action was there).
ERASED = "[erased]"
# The reason the cases an erasure closes are dismissed with.
ERASED_REASON = "erased"
EXPORT_FORMAT = "comeback.customer-export.v1"
# Rows per query and per streamed chunk: the export's memory is one page, not the history.
PAGE_SIZE = 500
REASON_MAX_LENGTH = 500
REASON_HELP = (
    "Why the data is erased, e.g. “asked by email on 3 May, ticket 512”. This text is kept "
    "with the record of the erasure: do not put the customer's name, contact details or "
    "anything else personal in it."
)


def paged(qs: QuerySet[M], *, order: Sequence[str] = ("id",), size: int = PAGE_SIZE) -> Iterator[M]:
    """Every row of `qs`, a keyset page at a time: one page in memory, and a deep page costs
    what the first one does (no OFFSET, no server-side cursor to keep open)."""
    after = None
    while True:
        rows, after = keyset_page(qs, order=order, after=after, limit=size)
        yield from rows
        if after is None:
            return


def rewrite(
    qs: QuerySet[M],
    field: str,
    change: Callable[[Any], Any],
    *,
    order: Sequence[str] = ("id",),
    size: int = PAGE_SIZE,
) -> int:
    """Pass `field` of every row of `qs` through `change` and save the rows it changed, a page
    of `size` at a time in `order` (bounded memory however long the history; each save is
    its own transaction when not inside one); how many rows changed."""
    model = qs.model
    keys = [name.removeprefix("-") for name in order]
    written, changed = 0, []
    for row in paged(qs.only("id", field, *keys), order=order, size=size):
        value = getattr(row, field)
        new = change(value)
        if new != value:
            setattr(row, field, new)
            changed.append(row)
        if len(changed) == size:
            written += model._default_manager.bulk_update(changed, [field])
            changed = []
    if changed:
        written += model._default_manager.bulk_update(changed, [field])
    return written


# --- the registry ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportSection:
    """A list in the export: the rows about a customer, shaped by `serializer` (which also
    documents the section in the OpenAPI schema, so the two cannot drift)."""

    name: str
    rows: Callable[[Customer], Iterable[Any]]
    serializer: type[serializers.Serializer]
    description: str


@dataclass(frozen=True)
class ErasureContext:
    """What an erase step is told: whose data, by whom, when. The customer row is locked."""

    customer_id: int
    organization_id: int
    by_user: User | None
    by_api_key: ApiKey | None
    now: datetime


# An erase step clears what its app holds about the customer and says how many rows it
# changed, by kind ({"case_actions": 3}); it runs inside the erasure's transaction.
EraseStep = Callable[[ErasureContext], dict[str, int]]

_sections: dict[str, ExportSection] = {}
_erase_steps: dict[str, EraseStep] = {}


def register_export_section(section: ExportSection) -> None:
    """Add a section to every export (again under the same name: replaced, not doubled)."""
    if section.name in HEAD_FIELDS or any(core.name == section.name for core in CORE_SECTIONS):
        raise ValueError(f"The export already has a {section.name!r} section.")
    _sections[section.name] = section


def register_erase_step(name: str, step: EraseStep) -> None:
    """Run `step` in every erasure, before cxcore clears the narrative and seals the row."""
    _erase_steps[name] = step


def export_sections() -> list[ExportSection]:
    """The export's lists, in document order: cxcore's, then those the apps registered."""
    return [*CORE_SECTIONS, *_sections.values()]


# --- what the export says --------------------------------------------------------------------


# The narrative state's fields, from its one definition (the last experience's episode by id).
NARRATIVE_FIELDS = [
    name.removesuffix("_id") if name.endswith("_episode_id") else name
    for name in NarrativeState.field_names()
]


class CustomerExportSerializer(serializers.ModelSerializer):
    """The customer row: who they are to the business, and their narrative state."""

    class Meta:
        model = Customer
        fields = ["id", "name", "notes", "created_at", "updated_at", *NARRATIVE_FIELDS]
        read_only_fields = fields


class OrganizationExportSerializer(serializers.Serializer):
    name = serializers.CharField()
    slug = serializers.CharField()


class ExportHeadSerializer(serializers.Serializer):
    """The document's opening: what it is, when, whose record at which business."""

    format = serializers.CharField(help_text=f"Always {EXPORT_FORMAT!r}.")
    exported_at = serializers.DateTimeField()
    organization = OrganizationExportSerializer()
    customer = CustomerExportSerializer()


HEAD_FIELDS = tuple(ExportHeadSerializer._declared_fields)


class IdentifierExportSerializer(serializers.ModelSerializer):
    class Meta:
        model = Identifier
        fields = ["kind", "value", "created_at"]
        read_only_fields = fields


class CorrectionExportSerializer(serializers.ModelSerializer):
    class Meta:
        model = ExperienceCorrection
        fields = [
            "episode",
            "previous_experience",
            "previous_source",
            "experience",
            "reason",
            "corrected_at",
        ]
        read_only_fields = fields


class ConsentExportSerializer(serializers.Serializer):
    """No consents are recorded yet: the section is always empty."""


# Who acted, by kind (as the cases' history says it, recovery.privacy): the staff member's
# identity is theirs, not the customer's.
EXPORT_ACTOR = serializers.ChoiceField(choices=["staff", "api_key", "system"])


class ReadAuditExportSerializer(serializers.ModelSerializer):
    """A read of the customer's data: when, where (the screen or endpoint), by what kind of
    actor, in which request. The other customers a search showed alongside are not listed."""

    actor = serializers.SerializerMethodField()

    class Meta:
        model = ReadAudit
        fields = ["at", "action", "actor", "request_id"]
        read_only_fields = fields

    @extend_schema_field(EXPORT_ACTOR)
    def get_actor(self, row: ReadAudit) -> str:
        return "staff" if row.actor_kind == ActorKind.USER else "api_key"


class CustomerEditExportSerializer(serializers.ModelSerializer):
    """A change to the customer's card: which fields, their values before and after (empty
    after an erasure or past the organization's retention), when, by what kind of actor."""

    actor = serializers.SerializerMethodField()

    class Meta:
        model = CustomerEdit
        fields = ["at", "kind", "actor", "fields", "changes"]
        read_only_fields = fields

    @extend_schema_field(EXPORT_ACTOR)
    def get_actor(self, edit: CustomerEdit) -> str:
        if edit.by_user_id is not None:
            return "staff"
        return "api_key" if edit.by_api_key_id is not None else "system"


class ErasureExportSerializer(serializers.ModelSerializer):
    class Meta:
        model = Erasure
        fields = ["erased_at", "reason"]
        read_only_fields = fields


CORE_SECTIONS = [
    ExportSection(
        "identifiers",
        lambda c: paged(Identifier.objects.filter(customer=c)),
        IdentifierExportSerializer,
        "Phone (E.164), email, loyalty card and POS customer ids.",
    ),
    ExportSection(
        "customer_edits",
        lambda c: paged(CustomerEdit.objects.filter(customer=c), order=("at", "id")),
        CustomerEditExportSerializer,
        "Changes to the customer's card (name, notes, identifiers), oldest first.",
    ),
    ExportSection(
        "episodes",
        lambda c: paged(
            Episode.objects.filter(customer=c).select_related("location"), order=TIMELINE_ORDER
        ),
        EpisodeSerializer,
        "Every episode of the narrative, newest first.",
    ),
    ExportSection(
        "experience_corrections",
        lambda c: paged(ExperienceCorrection.objects.filter(episode__customer=c)),
        CorrectionExportSerializer,
        "Staff corrections of an episode's experience.",
    ),
    ExportSection("consents", lambda c: (), ConsentExportSerializer, "Always empty for now."),
    ExportSection(
        "read_audit",
        lambda c: paged(
            reads_of(ReadAudit.objects.for_org(c.organization_id), c.pk), order=("at", "id")
        ),
        ReadAuditExportSerializer,
        "Every read of the customer's data (page, timeline, sidebar, search, export), oldest "
        "first, this export included.",
    ),
    ExportSection(
        "erasures",
        lambda c: paged(
            Erasure.objects.for_org(c.organization_id).filter(customer_id=c.pk),
            order=("erased_at", "id"),
        ),
        ErasureExportSerializer,
        "Earlier erasures of this customer's data.",
    ),
]


def export_document_fields() -> dict[str, serializers.Field]:
    """The fields of the whole document, for its schema: the head, then every section."""
    fields: dict[str, serializers.Field] = copy.deepcopy(ExportHeadSerializer._declared_fields)
    for section in export_sections():
        if section.serializer().fields:
            fields[section.name] = section.serializer(many=True, help_text=section.description)
        else:
            # Nothing recorded yet (consents): an empty list, said as such, since the
            # schema generator drops a component without properties.
            fields[section.name] = serializers.ListField(
                child=serializers.DictField(), max_length=0, help_text=section.description
            )
    return fields


# --- export ----------------------------------------------------------------------------------


def _dumps(value: Any) -> str:
    return json.dumps(value, cls=JSONEncoder, ensure_ascii=False, separators=(",", ":"))


@contextmanager
def _snapshot() -> Iterator[None]:
    """One transaction that sees one state of the database (REPEATABLE READ on PostgreSQL),
    read-only, so the sections of an export agree even while episodes arrive. It is opened
    where the export's reads go: a replica inside `replica_reads()`, unless this request wrote
    (its read-audit row, say), when read-your-writes keeps it on the primary."""
    alias = router.db_for_read(Customer)
    connection = connections[alias]
    outermost = not connection.in_atomic_block
    with transaction.atomic(using=alias):
        if outermost and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield


def export_customer(*, customer: Customer, now: datetime | None = None) -> Iterator[bytes]:
    """The whole record of one customer as one JSON document, in chunks of about a page.

    The caller has scoped and authorized `customer`; nothing is read until the first chunk is
    asked for (a streaming response asks as it sends).
    """
    now = now or timezone.now()
    with replica_reads(), _snapshot():
        row = Customer.objects.select_related("organization").filter(pk=customer.pk).first()
        if row is None:
            raise NotFoundError("No such customer.", field="customer.id")
        head = ExportHeadSerializer(
            {
                "format": EXPORT_FORMAT,
                "exported_at": now,
                "organization": row.organization,
                "customer": row,
            }
        ).data
        yield _dumps(head)[:-1].encode()
        for section in export_sections():
            shape = section.serializer()
            yield f",{_dumps(section.name)}:[".encode()
            batch: list[str] = []
            separator = ""
            for obj in section.rows(row):
                batch.append(_dumps(shape.to_representation(obj)))
                if len(batch) == PAGE_SIZE:
                    yield (separator + ",".join(batch)).encode()
                    batch, separator = [], ","
            yield (separator + ",".join(batch) + "]").encode()
        yield b"}"


# --- erase -----------------------------------------------------------------------------------


def erase_customer(
    *,
    customer: Customer,
    reason: str,
    by_user: User | None = None,
    by_api_key: ApiKey | None = None,
    now: datetime | None = None,
) -> Erasure:
    """Erase what is held about `customer` in one transaction and record that it was done.

    Safe to repeat. The customer row is locked first, as by every change of a customer, so a
    concurrent write waits for the erasure and sees its result.
    """
    reason = reason.strip()
    if not reason:
        raise InvalidInput(
            "Say why the data is erased (no personal data).", field="reason", code="required"
        )
    if len(reason) > REASON_MAX_LENGTH:
        raise InvalidInput(
            f"At most {REASON_MAX_LENGTH} characters.", field="reason", code="max_length"
        )
    now = now or timezone.now()
    with transaction.atomic():
        if not lock_customers([customer.pk]):
            raise NotFoundError("No such customer.", field="customer.id")
        context = ErasureContext(
            customer_id=customer.pk,
            organization_id=customer.organization_id,
            by_user=by_user,
            by_api_key=by_api_key,
            now=now,
        )
        cleared: dict[str, int] = {}
        for step in _erase_steps.values():
            cleared.update(step(context))
        cleared.update(_erase_narrative(context))
        _seal(context)
        emit_customer_erased(
            organization_id=context.organization_id, customer_id=context.customer_id, at=now
        )
        return Erasure.objects.create(
            organization_id=context.organization_id,
            customer_id=context.customer_id,
            erased_at=now,
            by_user=by_user,
            by_api_key=by_api_key,
            reason=reason,
            cleared=cleared,
        )


# What an item keeps: what cxcore.rules.spend_of reads, so the total spend stays true. The
# name goes: it makes the "usual order" (and a usual order can identify a person).
ITEM_KEYS_KEPT = ("quantity", "price")


def strip_items(items: list[Any]) -> list[dict[str, Any]]:
    return [
        {key: item[key] for key in ITEM_KEYS_KEPT if key in item}
        for item in items
        if isinstance(item, dict)
    ]


def _erase_narrative(context: ErasureContext) -> dict[str, int]:
    customer_id = context.customer_id
    identifiers = list(
        Identifier.objects.filter(customer_id=customer_id).values_list("pk", "value")
    )
    idempotency = _delete_idempotency_records(
        organization_id=context.organization_id,
        customer_id=customer_id,
        values=[value for _, value in identifiers],
    )
    admin_log = scrub_admin_log(Customer, [customer_id], repr_=f"Customer #{customer_id}")
    admin_log += scrub_admin_log(Identifier, [pk for pk, _ in identifiers])
    Identifier.objects.filter(customer_id=customer_id).delete()
    Customer.objects.filter(pk=customer_id).update(
        name="", notes="", usual_order="", updated_at=context.now
    )

    episodes = Episode.objects.filter(customer_id=customer_id)
    texts = episodes.filter(~Q(summary="") | ~Q(external_id="")).update(summary="", external_id="")
    items = rewrite(episodes.exclude(items=[]), "items", strip_items)
    corrections = (
        ExperienceCorrection.objects.filter(episode__customer_id=customer_id)
        .exclude(reason="")
        .update(reason="")
    )
    # Who changed which fields, when, stays; what the fields said goes.
    edits = (
        CustomerEdit.objects.filter(customer_id=customer_id).exclude(changes={}).update(changes={})
    )
    return {
        "identifiers": len(identifiers),
        "episode_texts": texts,
        "episode_items": items,
        "experience_corrections": corrections,
        "customer_edit_values": edits,
        "idempotency_records": idempotency,
        "admin_log_entries": admin_log,
    }


def _seal(context: ErasureContext) -> None:
    """Fold the stripped episodes again (the usual order is gone with the item names) and mark
    everything the customer's episodes hold as handled, so no sweep opens a case for a person
    nobody can name; the daily reconcile keeps the marks, so it stays that way."""
    customer_id = context.customer_id
    locked = lock_customers([customer_id])[customer_id]
    locked.state = narrative_from_episodes(customer_id)
    state, marks = locked.state, locked.marks
    save_narrative(
        customer_id,
        locked,
        now=context.now,
        recovery_handled_until=_latest(marks.recovery_handled_until, state.last_negative_at),
        care_handled_until=_latest(marks.care_handled_until, state.last_visit_at),
        # A feedback after the last visit would otherwise make them due for a drift look.
        drift_checked_until=_latest(marks.drift_checked_until, state.last_experience_at),
    )


def _latest(*times: datetime | None) -> datetime | None:
    present = [t for t in times if t is not None]
    return max(present) if present else None


def scrub_admin_log(model: type[Model], object_ids: Sequence[int], *, repr_: str = ERASED) -> int:
    """The admin's history names the objects it changed (a customer by name, an identifier by
    its value): keep that something changed, not what it said."""
    if not object_ids:
        return 0
    content_type = ContentType.objects.get_for_model(model)
    changed = 0
    for start in range(0, len(object_ids), PAGE_SIZE):
        ids = [str(pk) for pk in object_ids[start : start + PAGE_SIZE]]
        entries = LogEntry.objects.filter(content_type=content_type, object_id__in=ids)
        changed += entries.filter(~Q(object_repr=repr_) | ~Q(change_message="")).update(
            object_repr=repr_, change_message=""
        )
    return changed


def _delete_idempotency_records(
    *, organization_id: int, customer_id: int, values: Sequence[str]
) -> int:
    """Delete the stored responses that mention the customer: by id (an episode's `customer`,
    a sidebar's `customer.id`) or by any identifier's value (a message that echoed it).

    Records have no organization; their scopes name the organization's keys and members. The
    database narrows them to bodies whose text contains the id or a value (a superset), and
    `mentions_customer` decides. A retry of a deleted write runs again, as a new customer.
    """
    scopes = [
        *(
            f"key:{pk}"
            for pk in ApiKey.objects.filter(organization_id=organization_id).values_list(
                "pk", flat=True
            )
        ),
        *(
            f"user:{pk}"
            for pk in Membership.objects.filter(organization_id=organization_id).values_list(
                "user_id", flat=True
            )
        ),
    ]
    needles = {str(customer_id), *values, *(json.dumps(v)[1:-1] for v in values)}
    rough = Q()
    for needle in needles:
        rough |= Q(body_text__contains=needle)
    candidates = (
        IdempotencyRecord.objects.filter(scope__in=scopes, response_body__isnull=False)
        .alias(body_text=Cast("response_body", TextField()))
        .filter(rough)
        .only("id", "response_body")
    )
    doomed = [
        record.pk
        for record in paged(candidates)
        if mentions_customer(record.response_body, customer_id=customer_id, values=values)
    ]
    deleted = 0
    for start in range(0, len(doomed), PAGE_SIZE):
        deleted += IdempotencyRecord.objects.filter(
            pk__in=doomed[start : start + PAGE_SIZE]
        ).delete()[0]
    return deleted


def mentions_customer(body: Any, *, customer_id: int, values: Sequence[str]) -> bool:
    """Does a stored response name this customer: `"customer": id`, `"customer": {"id": id}`,
    or any string holding one of their identifiers?"""
    if isinstance(body, dict):
        ref = body.get("customer")
        if ref == customer_id or (isinstance(ref, dict) and ref.get("id") == customer_id):
            return True
        return any(
            mentions_customer(v, customer_id=customer_id, values=values) for v in body.values()
        )
    if isinstance(body, list):
        return any(mentions_customer(v, customer_id=customer_id, values=values) for v in body)
    if isinstance(body, str):
        return any(value and value in body for value in values)
    return False
