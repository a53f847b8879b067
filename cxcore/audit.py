"""The read audit: every read of a customer's data leaves one row saying who read which
customers, where, when and in which request; owners read it back.

Writing (`record_read`) is one INSERT in the request that read, with nothing looked up first:
the tenant is already resolved, the ids are already in hand. Outside a transaction (a read
writes nothing else) it is one raw statement on PostgreSQL that commits asynchronously
(synchronous_commit off for its own transaction): it does not wait for the WAL flush, and a
crash of the database server can lose only the last fraction of a second of read records,
never a change to anyone's data. Inside a transaction it rides with the caller's writes and
changes nothing of their durability. It is called by the views that
show customers (the customer page, the timeline, the till sidebar, search results, the
export), after they have read and before they answer, for web pages and the API alike.

The rows hold ids only (organization, member or key, customers), never a name or an
identifier, so an erasure leaves them in place: they prove who looked at a person's data
without saying anything about the person.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from accounts.models import ApiKey, User
from accounts.tenancy import Tenant
from cxcore.keyset import Position, keyset_page
from cxcore.models import ActorKind, ReadAction, ReadAudit

# Newest first; the read_audit_org_recent index serves it.
AUDIT_ORDER = ("-at", "-id")
AUDIT_POSITION = (datetime, int)  # the types of AUDIT_ORDER's keys, to read cursors


def request_id_of(request: Any) -> str:
    """The id `cxcore.middleware.RequestIdMiddleware` gave the request ("" outside one)."""
    return getattr(request, "request_id", "") or ""


def record_read(
    *,
    tenant: Tenant,
    action: ReadAction,
    customer_ids: Iterable[int],
    request: HttpRequest | Any | None = None,
    now: datetime | None = None,
) -> ReadAudit | None:
    """Record that `tenant` was shown `customer_ids` by `action`: one INSERT, no SELECT.

    Nothing is written when nobody was shown (an empty search) or when READ_AUDIT is off (the
    benchmark's comparison run, never production). A search writes one row holding the ids
    of the page of results shown, in their order.
    """
    if not settings.READ_AUDIT:
        return None
    ids = list(dict.fromkeys(int(pk) for pk in customer_ids))  # once each, in shown order
    if not ids:
        return None
    if tenant.api_key is not None:
        kind, actor_id = ActorKind.API_KEY, tenant.api_key.pk
    elif tenant.user is not None:
        kind, actor_id = ActorKind.USER, tenant.user.pk
    else:  # a Tenant is always a key or a member; refuse to write an anonymous read
        raise ValueError("A read is recorded for a member or an API key.")
    row = ReadAudit(
        organization_id=tenant.organization.pk,
        actor_kind=kind,
        actor_id=actor_id,
        action=action,
        customer_ids=ids,
        request_id=request_id_of(request)[:64],
        at=now or timezone.now(),
    )
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        row.save(force_insert=True)
        return row
    # One round trip, in autocommit: set_config(..., true) turns synchronous_commit off for
    # this statement's own transaction, so its commit does not wait for the WAL flush.
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {ReadAudit._meta.db_table} "
            "(organization_id, actor_kind, actor_id, action, customer_ids, request_id, at) "
            "SELECT %s, %s, %s, %s, %s::jsonb, %s, %s "
            "FROM (SELECT set_config('synchronous_commit', 'off', true)) AS async_commit "
            "RETURNING id",
            [row.organization_id, row.actor_kind, row.actor_id, row.action,
             json.dumps(row.customer_ids), row.request_id, row.at],
        )  # fmt: skip
        row.pk = cursor.fetchone()[0]
    return row


# --- reading the audit -----------------------------------------------------------------------


def reads_of(qs: QuerySet[ReadAudit], customer_id: int) -> QuerySet[ReadAudit]:
    """The rows of `qs` that read `customer_id`: JSON containment on PostgreSQL (the GIN index
    read_audit_customer_ids serves it); SQLite has no JSON containment, so it asks json_each."""
    if connection.vendor == "postgresql":
        return qs.filter(customer_ids__contains=[customer_id])
    # A constant clause; the id is a bound parameter.
    return qs.extra(
        where=[
            "EXISTS (SELECT 1 FROM json_each(cxcore_readaudit.customer_ids) AS shown "
            "WHERE shown.value = %s)"
        ],
        params=[customer_id],
    )


def read_audit_page(
    qs: QuerySet[ReadAudit],
    *,
    customer_id: int | None,
    after: Position | None,
    limit: int,
) -> tuple[list[ReadAudit], Position | None]:
    """A page of `qs` (the tenant's reads), of one customer if given, newest first, and where
    the next page starts: keyset-paged, so a deep page costs what the first one does."""
    if customer_id is not None:
        qs = reads_of(qs, customer_id)
    return keyset_page(qs, order=AUDIT_ORDER, after=after, limit=limit)


def actor_names(rows: Sequence[ReadAudit]) -> dict[tuple[str, int], str]:
    """{(actor kind, id): how an owner's page names them}, in at most two queries. A member or
    key deleted since is named by kind and id: the row outlives them on purpose."""
    user_ids = {r.actor_id for r in rows if r.actor_kind == ActorKind.USER}
    key_ids = {r.actor_id for r in rows if r.actor_kind == ActorKind.API_KEY}
    names: dict[tuple[str, int], str] = {}
    if user_ids:
        for user in User.objects.filter(pk__in=user_ids).only("pk", "name", "email"):
            names[(ActorKind.USER, user.pk)] = user.display_name
    if key_ids:
        for key in ApiKey.objects.filter(pk__in=key_ids).only("pk", "name"):
            names[(ActorKind.API_KEY, key.pk)] = f"API key “{key.name}”"
    for row in rows:
        label = "member" if row.actor_kind == ActorKind.USER else "API key"
        names.setdefault((row.actor_kind, row.actor_id), f"Deleted {label} #{row.actor_id}")
    return names
